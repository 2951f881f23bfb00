/**
 * Node's inspector (the debugger) in a worker: opened only in the one worker that the settings
 * node_worker.inspect_worker and node_worker.inspect_port name (`pg-node-worker dev --inspect`
 * sets them), and only ever on 127.0.0.1. Node creates the inspector's agent for that worker alone
 * and never with its SIGUSR1 trigger (runtime_embed.cc): PostgreSQL owns SIGUSR1.
 */
import type * as InspectorModule from 'inspector';
import type { Worker } from 'worker_threads';
import type { NativeBridge } from './native';
import { LOG_INFO, LOG_WARNING } from './native';

/** The address the inspector listens on: loopback only, whatever the settings say. */
export const INSPECTOR_HOST = '127.0.0.1';

/**
 * What runtime_embed.cc passes: the port (0: no inspector), whether a failure is tolerated, and
 * the read end of the debugger guard's pipe (-1: none).
 */
export interface InspectOptions {
  port: number;
  optional: boolean;
  guardFd: number;
}

/** The open inspector of this worker. */
export interface OpenInspector {
  /** the WebSocket URL debuggers attach to */
  url: string;
  /** Closes the inspector, which disconnects the debuggers (at shutdown: no more pauses). */
  close(): void;
}

/**
 * The debugger guard, a thread with an inspector session of its own on the main thread. While
 * the main thread is paused in the debugger it runs only the inspector's messages, not the event
 * loop, so PostgreSQL's requests would wait for the person at the debugger. The watchdog writes
 * to the guard's pipe: 'i' when PostgreSQL's interrupts are to be serviced (a barrier of DROP
 * DATABASE, a cancel): any message wakes the pause, which then runs them; 't' on SIGTERM: the
 * guard resumes the pause, and every later one, so the worker stops as it would undebugged.
 */
const GUARD_SOURCE = `
const { workerData, parentPort } = require('worker_threads');
const { Session } = require('inspector');
const net = require('net');
const session = new Session();
session.connectToMainThread();
const post = (method) => new Promise((resolve) => session.post(method, {}, () => resolve()));
let stopping = false;
session.on('Debugger.paused', () => { if (stopping) post('Debugger.resume'); });
const pipe = new net.Socket({ fd: workerData.fd, readable: true, writable: false });
pipe.on('error', () => undefined);
pipe.on('data', async (bytes) => {
  if (bytes.includes(0x69)) post('Runtime.getIsolateId');
  if (bytes.includes(0x74) && !stopping) {
    stopping = true;
    await post('Debugger.enable');
    await post('Debugger.resume');
  }
});
parentPort.on('message', () => {
  session.disconnect();
  pipe.destroy();
  const closed = new Int32Array(workerData.closed);
  Atomics.store(closed, 0, 1);
  Atomics.notify(closed, 0);
  parentPort.close();
});
`;

/** How long close() waits for the guard to let go of its session before closing the inspector. */
const GUARD_CLOSE_WAIT_MS = 2000;

/** The inspector could not listen (the port is taken, or refused). */
export class InspectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InspectorError';
  }
}

/** The Chrome DevTools address that attaches to the inspector at `wsUrl` (ws://host:port/id). */
export function devtoolsUrl(wsUrl: string): string {
  return `devtools://devtools/bundled/js_app.html?experiments=true&v8only=true&ws=${wsUrl.replace(/^ws:\/\//, '')}`;
}

/**
 * Opens the inspector when `opts.port` is set, starts its guard and logs its addresses. When it
 * cannot listen, this throws an InspectorError (the worker then fails to start), or with
 * `opts.optional` logs a warning and the worker runs without it (undefined).
 */
export function openInspector(native: NativeBridge, opts: InspectOptions | undefined): OpenInspector | undefined {
  if (!opts || !opts.port) return undefined;
  // required here, not at the top: loading them costs every worker's start-up some milliseconds
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const inspector = require('inspector') as typeof InspectorModule;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { Worker: WorkerThread } = require('worker_threads') as { Worker: typeof Worker };
  let url: string | undefined;
  let why = 'is the port in use?';
  try {
    inspector.open(opts.port, INSPECTOR_HOST, false);
    url = inspector.url();
  } catch (e) {
    why = (e as Error).message;
  }
  if (!url) {
    const text = `the inspector could not listen on ${INSPECTOR_HOST}:${opts.port} (${why})`;
    if (!opts.optional)
      throw new InspectorError(
        `${text}. Choose another node_worker.inspect_port (dev --inspect=PORT), or set node_worker.inspect_optional = on to start the worker without its inspector.`,
      );
    native.log(LOG_WARNING, `${text}; running without the inspector (node_worker.inspect_optional is on)`);
    return undefined;
  }
  let guard: Worker | undefined;
  const closed = new Int32Array(new SharedArrayBuffer(4));
  if (opts.guardFd >= 0) {
    guard = new WorkerThread(GUARD_SOURCE, { eval: true, workerData: { fd: opts.guardFd, closed: closed.buffer } });
    guard.on('error', (e) => native.log(LOG_WARNING, `the debugger guard failed: ${e.message}; a paused worker stops only once resumed`));
    guard.unref();
  }
  native.log(LOG_INFO, `debugger listening on ${url} (DevTools: ${devtoolsUrl(url)}; or chrome://inspect, target ${INSPECTOR_HOST}:${opts.port})`);
  return {
    url,
    close: () => {
      // The guard's session must be gone before the environment is torn down: a worker thread
      // still connected to the main thread's inspector at teardown crashed the process (SIGSEGV,
      // seen once in about a dozen runs of the inspector tests under load).
      if (guard) {
        guard.postMessage('close');
        Atomics.wait(closed, 0, 0, GUARD_CLOSE_WAIT_MS);
        void guard.terminate();
      }
      inspector.close();
    },
  };
}
