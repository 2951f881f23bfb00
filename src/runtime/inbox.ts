/**
 * The worker's side of node_worker.call() / notify() / wake(): takes
 * messages from the shared-memory inbox when runtime.cc says some arrived,
 * runs the call handler (concurrently, async allowed) and replies, hands
 * notifications to onMessage handlers and messages() iterators, and wakes
 * ctx.sleep().
 */
import type { CallMeta, Message } from '../types';
import type { NativeBridge } from './native';
import { LOG_ERROR, LOG_WARNING } from './native';

const SQLSTATE_RE = /^[0-9A-Z]{5}$/;
/** SQLSTATE of a handler error that carries none: PL/pgSQL's RAISE EXCEPTION default. */
export const DEFAULT_CALL_ERROR_CODE = 'P0001';

type CallHandler = (payload: unknown, meta: CallMeta) => unknown;

export class Inbox {
  private callHandler: CallHandler | null = null;
  private readonly messageHandlers = new Set<(m: Message) => unknown>();
  private readonly iterators = new Set<(m: Message) => void>();
  /** notifications that arrived while nobody listened */
  private readonly backlog: Message[] = [];
  private readonly wakeWaiters = new Set<() => void>();

  constructor(
    private readonly native: NativeBridge,
    private readonly workerName: string,
  ) {}

  onCall(handler: CallHandler): () => void {
    if (typeof handler !== 'function') throw new TypeError('onCall(handler) expects a function');
    this.callHandler = handler;
    return () => {
      if (this.callHandler === handler) this.callHandler = null;
    };
  }

  onMessage(fn: (m: Message) => unknown): () => void {
    if (typeof fn !== 'function') throw new TypeError('onMessage(fn) expects a function');
    this.messageHandlers.add(fn);
    this.flushBacklog();
    return () => void this.messageHandlers.delete(fn);
  }

  /** An async iterator of notifications; ends when signal aborts. */
  messages(signal: AbortSignal): AsyncIterableIterator<Message> {
    const queue: Message[] = [];
    let wake: (() => void) | null = null;
    const push = (m: Message) => {
      queue.push(m);
      wake?.();
    };
    const onAbort = () => wake?.();
    this.iterators.add(push);
    signal.addEventListener('abort', onAbort);
    this.flushBacklog();
    const done = () => {
      this.iterators.delete(push);
      signal.removeEventListener('abort', onAbort);
    };
    const iterator: AsyncIterableIterator<Message> = {
      next: async () => {
        while (queue.length === 0) {
          if (signal.aborted) {
            done();
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
        return { value: queue.shift() as Message, done: false };
      },
      return: async () => {
        done();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** Registers a one-shot callback for the next wake(); returns its canceller. */
  onWake(fn: () => void): () => void {
    this.wakeWaiters.add(fn);
    return () => void this.wakeWaiters.delete(fn);
  }

  /** runtime.cc: the latch was set and the inbox is not empty. */
  deliver(): void {
    const [woken, messages] = this.native.takeMessages();
    if (woken) {
      const waiters = [...this.wakeWaiters];
      this.wakeWaiters.clear();
      for (const w of waiters) w();
    }
    for (const [isCall, requestId, procno, pid, role, database, payloadJson] of messages) {
      const payload = JSON.parse(payloadJson) as unknown;
      const meta: CallMeta = Object.freeze({ pid, role, database });
      if (isCall) this.serveCall(requestId, procno, payload, meta);
      else this.dispatchMessage(Object.freeze({ payload, ...meta }));
    }
  }

  private serveCall(requestId: string, procno: number, payload: unknown, meta: CallMeta): void {
    const reply = (isError: boolean, code: string | null, text: string) => {
      try {
        this.native.reply(procno, requestId, isError, code, text);
      } catch (err) {
        this.native.log(LOG_WARNING, `could not reply to a call from pid ${meta.pid}: ${(err as Error).message}`);
      }
    };
    const handler = this.callHandler;
    if (!handler) {
      reply(true, '55000', `node worker "${this.workerName}" has no call handler (ctx.onCall)`);
      return;
    }
    Promise.resolve()
      .then(() => handler(payload, meta))
      .then(
        (result) => {
          let text: string | undefined;
          try {
            text = JSON.stringify(result === undefined ? null : result);
          } catch (err) {
            reply(true, '22023', `the call handler's result cannot be sent as JSON: ${(err as Error).message}`);
            return;
          }
          reply(false, null, text ?? 'null');
        },
        (err: unknown) => {
          const e = err as { code?: unknown; message?: unknown };
          const code = typeof e?.code === 'string' && SQLSTATE_RE.test(e.code) ? e.code : DEFAULT_CALL_ERROR_CODE;
          const message = err instanceof Error ? err.message : String(err);
          reply(true, code, message || 'the call handler failed');
        },
      );
  }

  private dispatchMessage(m: Message): void {
    if (this.messageHandlers.size === 0 && this.iterators.size === 0) {
      this.backlog.push(m);
      return;
    }
    for (const it of this.iterators) it(m);
    for (const fn of this.messageHandlers) {
      try {
        const r = fn(m);
        if (r && typeof (r as Promise<unknown>).then === 'function')
          (r as Promise<unknown>).then(undefined, (err) => this.native.log(LOG_ERROR, `onMessage handler failed: ${(err as Error)?.stack ?? err}`));
      } catch (err) {
        this.native.log(LOG_ERROR, `onMessage handler failed: ${(err as Error)?.stack ?? err}`);
      }
    }
  }

  private flushBacklog(): void {
    // later, so that a handler registered before a for-await loop starts does not race it
    if (this.backlog.length === 0) return;
    queueMicrotask(() => {
      const pending = this.backlog.splice(0);
      for (const m of pending) this.dispatchMessage(m);
    });
  }
}
