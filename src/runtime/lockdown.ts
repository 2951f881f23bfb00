/**
 * Makes the parts of Node that would fight PostgreSQL over the process safe
 * or unavailable, before any user code runs:
 *  - console and process.stdout/stderr go to the server log through elog,
 *    never raw onto the logger's pipe;
 *  - process.on('SIGTERM' | 'SIGHUP' | ...) is refused: PostgreSQL owns the
 *    signals (ctx.signal and ctx.onReload are the way in); Node's hooks that
 *    turn signal listeners into libuv signal watchers are detached;
 *  - child_process is refused (libuv would take SIGCHLD), and so are the
 *    legacy bindings behind it and behind signals (process.binding);
 *  - process.chdir/setuid/... and process.abort are refused, and so is
 *    process.kill() of the server's own processes;
 *  - process.title sets the ps display;
 *  - under a data-segment limit on Node 24, worker_threads Workers get a code range that fits it.
 */
import { readFileSync } from 'fs';
import type { Writable } from 'stream';
import { constants as osConstants } from 'os';
import { format } from 'util';
import type { NativeBridge } from './native';
import { LOG_DEBUG, LOG_INFO, LOG_WARNING } from './native';

/** Thrown when worker code uses a Node API that a worker cannot have. */
export class RefusedApiError extends Error {
  readonly code = 'ERR_PGNW_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'RefusedApiError';
  }
}

/** This process, the postmaster, a process group (pid <= 0), or another child of the postmaster. */
function serverProcess(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || pid === process.ppid) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.ppid;
  } catch {
    return false;
  }
}

/** A stream writing lines to the server log at `level` (stream is loaded on the first use: start-up time). */
function logStream(native: NativeBridge, level: number): Writable {
  let pending = '';
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { Writable: WritableStream } = require('stream') as { Writable: typeof Writable };
  return new WritableStream({
    decodeStrings: false,
    write(chunk: unknown, _enc, done) {
      pending += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        native.log(level, pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      done();
    },
    final(done) {
      if (pending) native.log(level, pending);
      pending = '';
      done();
    },
  });
}

/**
 * Makes the process safe to share with PostgreSQL before any user code runs: console and
 * process.stdout/stderr go to the server log, and the APIs that would take signals, processes or
 * the process's identity away from the server are refused (RefusedApiError).
 */
export function lockDown(native: NativeBridge): void {
  routeOutput(native);
  refuseSignals();
  const proc = process as unknown as Record<string, unknown>;
  refuseProcessApis(proc);
  refuseChildProcesses(proc);
  limitWorkerCodeRange(native);
  // process.title → ps display
  let title = `node_worker ${native.info().name}`;
  Object.defineProperty(process, 'title', {
    configurable: true,
    enumerable: true,
    get: () => title,
    set: (value: unknown) => {
      title = String(value);
      native.setTitle(title);
    },
  });
}

/** An API that throws RefusedApiError saying why. */
const refuse = (what: string, why: string) => () => {
  throw new RefusedApiError(`${what} is not available in a pg_node_worker worker: ${why}`);
};

/** console and process.stdout/stderr → the server log; process.stdin refused. */
function routeOutput(native: NativeBridge): void {
  const at = (level: number) => (...args: unknown[]) => native.log(level, format(...args));
  const c = globalThis.console as unknown as Record<string, unknown>;
  c.log = at(LOG_INFO);
  c.info = at(LOG_INFO);
  c.debug = at(LOG_DEBUG);
  c.trace = (...args: unknown[]) => native.log(LOG_DEBUG, format(...args) + '\n' + (new Error().stack ?? '').split('\n').slice(2).join('\n'));
  c.warn = at(LOG_WARNING);
  c.error = at(LOG_WARNING);
  c.dir = (obj: unknown) => native.log(LOG_INFO, format('%o', obj));

  // made on first use, as Node makes its own
  let stdout: Writable | undefined;
  let stderr: Writable | undefined;
  Object.defineProperty(process, 'stdout', { configurable: true, enumerable: true, get: () => (stdout ??= logStream(native, LOG_INFO)) });
  Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => (stderr ??= logStream(native, LOG_WARNING)) });
  Object.defineProperty(process, 'stdin', {
    configurable: true,
    enumerable: true,
    get: () => {
      throw new RefusedApiError('process.stdin is not available in a pg_node_worker worker');
    },
  });
}

/** Signals belong to PostgreSQL: no listener for a signal, however it is added, touches one. */
function refuseSignals(): void {
  // Node starts a libuv signal watcher (sigaction) when a listener for a signal name is added to
  // process, and when the last one is removed it resets the signal to SIG_DFL: a SIGHUP then kills
  // the worker and the postmaster resets the cluster.  The wrappers below only cover the process.*
  // methods, so detach the hooks themselves, as Node does in worker threads: then no listener,
  // however it is added (EventEmitter.prototype.on.call(process, ...)), touches a signal.
  const events = process as unknown as NodeJS.EventEmitter;
  for (const [event, hook] of [['newListener', 'startListeningIfSignal'], ['removeListener', 'stopListeningIfSignal']]) {
    for (const fn of events.listeners(event)) if (fn.name === hook) events.removeListener(event, fn as (...a: unknown[]) => void);
  }
  const signalNames = new Set(Object.keys(osConstants.signals));
  const emitter = process as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const method of ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener']) {
    const original = emitter[method];
    emitter[method] = function (this: unknown, event: unknown, ...rest: unknown[]) {
      if (typeof event === 'string' && signalNames.has(event)) {
        throw new RefusedApiError(
          `process.${method}('${event}') is not available in a pg_node_worker worker: PostgreSQL owns the process's signals. ` +
            'Use ctx.signal (aborted on SIGTERM) or ctx.onReload() (SIGHUP).',
        );
      }
      return original.call(this, event, ...rest);
    };
  }
}

/** The working directory, the OS user, abort() and signals to the server's own processes. */
function refuseProcessApis(proc: Record<string, unknown>): void {
  proc.chdir = refuse('process.chdir()', 'the working directory is the data directory and the server relies on it');
  for (const fn of ['setuid', 'setgid', 'seteuid', 'setegid', 'setgroups', 'initgroups'])
    proc[fn] = refuse(`process.${fn}()`, 'the worker runs as the server\'s OS user');
  proc.abort = refuse('process.abort()', 'a crash would make the postmaster reset the whole cluster; throw an error or call process.exit(1)');
  // process.kill(pid, sig): a signal to the server's own processes (this worker, the postmaster,
  // the postmaster's other children) is PostgreSQL's business: SIGKILL of any of them resets the
  // whole cluster, SIGKILL of the postmaster stops it. process.kill() calls process._kill() with
  // the signal as a number, so the check sits there; signal 0 (does it exist?) stays allowed.
  const rawKill = proc._kill as (pid: number, sig: number) => number;
  proc._kill = function (this: unknown, pid: number, sig: number) {
    if (sig !== 0 && serverProcess(Number(pid)))
      throw new RefusedApiError(
        `process.kill(${pid}) is not available in a pg_node_worker worker for PostgreSQL's own processes: ` +
          'a backend killed by a signal makes the postmaster reset the whole cluster; use process.exit(), ' +
          "or pg_cancel_backend()/pg_terminate_backend() from SQL for another backend",
      );
    return rawKill.call(this, pid, sig);
  };
}

/** Child processes, and the legacy bindings that reach signals and processes. */
function refuseChildProcesses(proc: Record<string, unknown>): void {
  // Child processes would make libuv install a SIGCHLD handler. They are refused below
  // child_process, in the two bindings every way of starting one ends in (process_wrap's Process
  // for spawn, exec, execFile and fork; spawn_sync's spawn for the *Sync ones): whether
  // child_process is then loaded by require(), import() or process.getBuiltinModule(), its
  // functions throw. process.binding() hands out the same objects, which child_process reads when
  // it loads, so they are replaced before it does: loading child_process here to patch its
  // functions cost every worker's start ~4 ms (it loads net, dgram and streams). Should it be
  // loaded already, or the bindings be out of reach, its functions are patched as well.
  // a function, not an arrow: child_process calls new Process()
  const refuseChildren = function () {
    throw new RefusedApiError('child_process is not available in a pg_node_worker worker: child processes would take over SIGCHLD from PostgreSQL');
  };
  const rawBinding = proc.binding as (name: string) => Record<string, unknown>;
  let bindingsRefused = false;
  try {
    rawBinding.call(process, 'process_wrap').Process = refuseChildren;
    rawBinding.call(process, 'spawn_sync').spawn = refuseChildren;
    bindingsRefused = true;
  } catch {
    // a Node without these legacy bindings: child_process's own functions below, as before
  }
  if (!bindingsRefused || (process as unknown as { moduleLoadList: string[] }).moduleLoadList.includes('NativeModule child_process')) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const cp = require('child_process') as Record<string, unknown>;
    for (const fn of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'])
      cp[fn] = refuse(`child_process.${fn}()`, 'child processes would take over SIGCHLD from PostgreSQL');
  }
  // the same through the legacy bindings: signal_wrap can set a signal to SIG_DFL (see above)
  const refusedBindings: Record<string, string> = {
    signal_wrap: 'PostgreSQL owns the process\'s signals',
    process_wrap: 'child processes would take over SIGCHLD from PostgreSQL',
    spawn_sync: 'child processes would take over SIGCHLD from PostgreSQL',
  };
  proc.binding = function (this: unknown, name: string) {
    if (Object.prototype.hasOwnProperty.call(refusedBindings, name))
      throw new RefusedApiError(`process.binding('${name}') is not available in a pg_node_worker worker: ${refusedBindings[name]}`);
    return rawBinding.call(this, name);
  };
}

/** worker_threads Workers get the worker's own code range when the runtime sized it. */
function limitWorkerCodeRange(native: NativeBridge): void {
  // worker_threads: under a data-segment limit on Node 24, V8 counts a new isolate's whole code
  // range against the limit from the start (512 MB by default, more than a worker's whole budget
  // under a few hundred MB), so a Worker gets the worker's own smaller one unless its
  // resourceLimits name one (extension/runtime_memory.cc)
  const codeRangeMb = native.memoryUsage().codeRange / (1024 * 1024);
  if (codeRangeMb > 0) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const threads = require('worker_threads') as typeof import('worker_threads');
    const Base = threads.Worker;
    class Worker extends Base {
      constructor(filename: string | URL, options?: import('worker_threads').WorkerOptions) {
        super(filename, { ...options, resourceLimits: { codeRangeSizeMb: codeRangeMb, ...options?.resourceLimits } });
      }
    }
    Object.defineProperty(Worker, 'name', { value: 'Worker' });
    (threads as { Worker: typeof Base }).Worker = Worker;
  }
}
