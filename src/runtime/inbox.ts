/**
 * The worker's side of node_worker.call() / notify() / wake(): takes
 * messages from the shared-memory inbox when runtime_embed.cc says some arrived,
 * runs the call handler (concurrently, async allowed, each with an
 * AbortSignal for its caller's timeout or cancel) and replies, hands
 * notifications to onMessage handlers and messages() iterators, and wakes
 * ctx.sleep().
 *
 * A notification stays in the inbox (extension/messaging.c) until every
 * consumer it was given to is done with it; only then is it acknowledged.
 * So this side never holds more than the inbox does, a full inbox pushes
 * back on notify(), and a process that exits leaves what it did not finish
 * to the next process of the worker.
 */
import type { CallMeta, Message, SenderMeta } from '../types';
import type { InboxEntry, NativeBridge } from './native';
import { CALL_TIMED_OUT, CALL_WAITING, LOG_ERROR, LOG_WARNING } from './native';

const SQLSTATE_RE = /^[0-9A-Z]{5}$/;
/** SQLSTATE of a handler error that carries none: PL/pgSQL's RAISE EXCEPTION default. */
export const DEFAULT_CALL_ERROR_CODE = 'P0001';
/** Calls handled at once unless the definition says otherwise. */
export const DEFAULT_MAX_PENDING_CALLS = 1000;
/** past a call's deadline, how long the worker waits to hear from its caller before it aborts the signal itself */
const DEADLINE_SLACK_MS = 1000;

const callerTimedOut = () => new DOMException('the caller stopped waiting: its timeout_ms passed', 'TimeoutError');

type CallHandler = (payload: unknown, meta: CallMeta) => unknown;

/** A notification given to consumers; acknowledged when the last one is done with it. */
interface Delivery {
  readonly message: Message;
  readonly position: number;
  /** consumers it was given to that are not done yet */
  remaining: number;
  /** some consumer handled it (an iterator that stops without taking it did not) */
  handled: boolean;
}

interface PendingCall {
  readonly controller: AbortController;
  readonly timer: ReturnType<typeof setTimeout>;
  readonly procno: number;
  readonly requestId: string;
}

/** The worker's inbox: calls, notifications and wakes as they arrive (see the top of this file). */
export class Inbox {
  private callHandler: CallHandler | null = null;
  private readonly messageHandlers = new Set<(m: Message) => unknown>();
  private readonly iterators = new Set<(d: Delivery) => void>();
  /** notifications that arrived while nobody listened */
  private readonly backlog: Delivery[] = [];
  private readonly wakeWaiters = new Set<() => void>();
  private readonly wakeListeners: Array<() => void> = [];
  private readonly pendingCalls = new Map<string, PendingCall>();
  private acks: number[] = [];

  /**
   * @param stopping the worker's ctx.signal: a consumer that fails or stops while it is aborted
   *   was cut short by the shutdown, so its message is left to the next process.
   */
  constructor(
    private readonly native: NativeBridge,
    private readonly workerName: string,
    private readonly stopping: AbortSignal,
    private readonly maxPendingCalls = DEFAULT_MAX_PENDING_CALLS,
  ) {}

  /**
   * Whether SIGTERM came. Asked of the bridge too: ctx.signal aborts on a later turn of the
   * loop, and a handler cut short by the shutdown may fail before that (its statement
   * cancelled), which must not count as handled.
   */
  private shuttingDown(): boolean {
    return this.stopping.aborted || this.native.shutdownRequested();
  }

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

  /**
   * An async iterator of notifications; ends when signal aborts. A message counts as handled
   * by this iterator when the loop asks for the next one, or stops (break, return, throw)
   * while the worker is not shutting down.
   */
  messages(signal: AbortSignal): AsyncIterableIterator<Message> {
    const queue: Delivery[] = [];
    let current: Delivery | null = null;
    let wake: (() => void) | null = null;
    const push = (d: Delivery) => {
      queue.push(d);
      wake?.();
    };
    const onAbort = () => wake?.();
    this.iterators.add(push);
    signal.addEventListener('abort', onAbort);
    this.flushBacklog();
    const finishCurrent = (handled: boolean) => {
      if (current) this.consumed(current, handled);
      current = null;
    };
    const done = () => {
      finishCurrent(!this.shuttingDown());
      if (!this.iterators.delete(push)) return;
      signal.removeEventListener('abort', onAbort);
      // given to this loop but never taken: back to the others, or to the backlog
      for (const d of queue.splice(0)) this.consumed(d, false);
    };
    const iterator: AsyncIterableIterator<Message> = {
      next: async () => {
        finishCurrent(true);
        while (queue.length === 0) {
          if (signal.aborted) {
            done();
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
        current = queue.shift() as Delivery;
        return { value: current.message, done: false };
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

  /** Registers `fn` for every wake(), called before the one-shot onWake callbacks. */
  onEveryWake(fn: () => void): void {
    this.wakeListeners.push(fn);
  }

  /** runtime_embed.cc: the latch was set and the inbox may have something for us. */
  deliver(): void {
    const [woken, abandoned, entries] = this.native.takeMessages();
    if (woken) {
      for (const l of this.wakeListeners) l();
      const waiters = [...this.wakeWaiters];
      this.wakeWaiters.clear();
      for (const w of waiters) w();
    }
    if (abandoned) this.abortAbandonedCalls();
    for (const entry of entries) this.accept(entry);
  }

  private accept(entry: InboxEntry): void {
    const [isCall, requestId, procno, pid, role, database, payloadJson, position, timeLeftMs, redelivered] = entry;
    const sender: SenderMeta = { pid, role, database };
    let payload: unknown;
    try {
      payload = JSON.parse(payloadJson) as unknown;
    } catch (err) {
      // the server sends jsonb's text: this is a bug, not bad input; never lose the message silently
      this.native.log(LOG_ERROR, `a message from pid ${pid} is not valid JSON: ${(err as Error).message}`);
      if (isCall) this.native.reply(procno, requestId, true, 'XX000', 'the worker could not read the call payload');
      else this.queueAck(position);
      return;
    }
    if (isCall) this.serveCall(requestId, procno, payload, sender, timeLeftMs);
    else {
      const message: Message = Object.freeze({ payload, ...sender, redelivered });
      this.dispatch({ message, position, remaining: 0, handled: false });
    }
  }

  private serveCall(requestId: string, procno: number, payload: unknown, sender: SenderMeta, timeLeftMs: number): void {
    const key = `${procno}:${requestId}`;
    const reply = (isError: boolean, code: string | null, text: string) => {
      try {
        this.native.reply(procno, requestId, isError, code, text);
      } catch (err) {
        this.native.log(LOG_WARNING, `could not reply to a call from pid ${sender.pid}: ${(err as Error).message}`);
      }
    };
    const handler = this.callHandler;
    if (!handler) {
      reply(true, '55000', `node worker "${this.workerName}" has no call handler (ctx.onCall)`);
      return;
    }
    if (this.pendingCalls.size >= this.maxPendingCalls) {
      reply(
        true,
        '53400',
        `node worker "${this.workerName}" is handling ${this.pendingCalls.size} calls already, its limit (maxPendingCalls)`,
      );
      return;
    }
    const controller = new AbortController();
    // the caller says when it gives up (abortAbandonedCalls); this is for one that could not
    const timer = setTimeout(() => controller.abort(callerTimedOut()), Math.max(0, timeLeftMs) + DEADLINE_SLACK_MS);
    this.pendingCalls.set(key, { controller, timer, procno, requestId });
    // not enumerable: meta as JSON (returned, logged) says only who called
    const meta = Object.freeze(
      Object.defineProperty({ ...sender }, 'signal', { value: controller.signal, enumerable: false }),
    ) as CallMeta;
    const settle = () => {
      clearTimeout(timer);
      this.pendingCalls.delete(key);
    };
    Promise.resolve()
      .then(() => handler(payload, meta))
      .then(
        (result) => {
          settle();
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
          settle();
          const e = err as { code?: unknown; message?: unknown };
          const code = typeof e?.code === 'string' && SQLSTATE_RE.test(e.code) ? e.code : DEFAULT_CALL_ERROR_CODE;
          const message = err instanceof Error ? err.message : String(err);
          reply(true, code, message || 'the call handler failed');
        },
      );
  }

  /** A caller gave up (timeout, cancel, its session ended): abort the signals of the calls nobody waits for. */
  private abortAbandonedCalls(): void {
    const calls = [...this.pendingCalls.values()];
    if (calls.length === 0) return;
    const states = this.native.callStates(
      calls.map((c) => c.procno),
      calls.map((c) => c.requestId),
    );
    calls.forEach((c, i) => {
      if (states[i] === CALL_TIMED_OUT) c.controller.abort(callerTimedOut());
      else if (states[i] !== CALL_WAITING) c.controller.abort(new DOMException('the caller stopped waiting: its statement ended', 'AbortError'));
    });
  }

  private dispatch(d: Delivery): void {
    const consumers = this.iterators.size + this.messageHandlers.size;
    if (consumers === 0) {
      this.backlog.push(d);
      return;
    }
    d.remaining += consumers;
    for (const it of this.iterators) it(d);
    for (const fn of this.messageHandlers) this.runHandler(fn, d);
  }

  private runHandler(fn: (m: Message) => unknown, d: Delivery): void {
    const failed = (err: unknown) => {
      this.native.log(LOG_ERROR, `onMessage handler failed: ${(err as Error)?.stack ?? err}`);
      this.consumed(d, !this.shuttingDown());
    };
    let r: unknown;
    try {
      r = fn(d.message);
    } catch (err) {
      failed(err);
      return;
    }
    if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(() => this.consumed(d, true), failed);
    else this.consumed(d, true);
  }

  /**
   * One consumer is done with d. A handler that threw still handled it (it is not retried: a
   * message that always fails would block the inbox), unless the worker is shutting down (the
   * shutdown cut it short: the next process gets it); an iterator that stopped before taking
   * it did not, so once nobody handled it, it waits for the next consumer.
   */
  private consumed(d: Delivery, handled: boolean): void {
    d.handled ||= handled;
    if (--d.remaining > 0) return;
    if (d.handled) this.queueAck(d.position);
    else this.dispatch(d);
  }

  private queueAck(position: number): void {
    this.acks.push(position);
    if (this.acks.length > 1) return;
    // one trip into the bridge for all that finish in this turn of the loop
    queueMicrotask(() => {
      const positions = this.acks;
      this.acks = [];
      try {
        this.native.ack(positions);
      } catch (err) {
        this.native.log(LOG_WARNING, `could not acknowledge ${positions.length} notifications: ${(err as Error).message}`);
      }
    });
  }

  private flushBacklog(): void {
    // later, so that a handler registered before a for-await loop starts does not race it
    if (this.backlog.length === 0) return;
    queueMicrotask(() => {
      const pending = this.backlog.splice(0);
      for (const d of pending) this.dispatch(d);
    });
  }
}
