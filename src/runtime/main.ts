/**
 * The JavaScript side of a worker process (bundled to runtime.js).
 *
 * runtime.cc starts Node and calls start(): it loads the bridge, locks
 * down the process, loads the deployed bundle with 'pg-node-worker'
 * provided by this runtime, builds ctx and runs main().  runtime.cc then
 * drives the event loop and calls the dispatch function registered here
 * for PostgreSQL events (SIGTERM, SIGHUP).
 */
import { constants as osConstants } from 'os';
import Module = require('module');
import * as fs from 'fs';
import * as path from 'path';
import { format } from 'util';
import { defineWorker, DEFINITION_BRAND, definitionMetadata } from '../define';
import { PgError } from '../errors';
import type { Logger, SleepResult, WorkerContext, WorkerDefinition, WorkerHandle } from '../types';
import { makeBuffers, makeShared } from './buffers';
import { Inbox } from './inbox';
import { lockDown, RefusedApiError } from './lockdown';
import type { NativeBridge } from './native';
import { LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_NOTICE, LOG_WARNING, checkBridgeConstants } from './native';
import { SqlEngine } from './sql';

const STACK_LINES = 20;

function describe(err: unknown): string {
  if (typeof err === 'string') return err;
  if (err instanceof Error) {
    const lines = (err.stack ?? `${err.name}: ${err.message}`).split('\n');
    let text = lines.slice(0, STACK_LINES + 1).join('\n');
    if (err instanceof PgError) {
      text += `\nSQLSTATE: ${err.code}`;
      if (err.detail) text += `\nDETAIL: ${err.detail}`;
      if (err.hint) text += `\nHINT: ${err.hint}`;
    }
    return text;
  }
  return format('non-Error value thrown: %o', err);
}

/** Loads the deployed bundle as a CommonJS module with 'pg-node-worker' supplied. */
function loadBundle(bundlePath: string, sdk: object): unknown {
  const source = fs.readFileSync(bundlePath, 'utf8');
  type Mod = InstanceType<typeof Module> & { _compile(code: string, file: string): void; paths: string[] };
  const ModuleCtor = Module as unknown as { new (id: string, parent: null): Mod; _nodeModulePaths(dir: string): string[] };
  const mod = new ModuleCtor(bundlePath, null);
  mod.filename = bundlePath;
  mod.paths = ModuleCtor._nodeModulePaths(path.dirname(bundlePath));
  const baseRequire = Module.prototype.require;
  mod.require = function (this: Mod, id: string) {
    if (id === 'pg-node-worker') return sdk;
    return baseRequire.call(mod, id);
  } as typeof mod.require;
  mod._compile(source, bundlePath);
  const exported = mod.exports as { default?: unknown; __esModule?: boolean };
  return exported && typeof exported === 'object' && 'default' in exported ? exported.default : exported;
}

function parseArgs(text: string | null): unknown {
  if (text === null) return null;
  return JSON.parse(text);
}

const CHILD_POLL_MS = 50;

/** ctx.launch: start a dynamic worker; its exit is noticed by polling its slot while awaited. */
function launchWorker(native: NativeBridge, name: string, args: unknown): WorkerHandle {
  if (typeof name !== 'string') throw new TypeError('launch(name, args?): name must be a string');
  let json: string | null = null;
  if (args !== undefined && args !== null) {
    json = JSON.stringify(args);
    if (json === undefined) throw new TypeError('launch(name, args?): args must be JSON-serialisable');
  }
  const { pid, slot } = native.launch(name, json);
  const exited = new Promise<number>((resolve) => {
    const timer = setInterval(() => {
      const code = native.childExitCode(slot, pid);
      if (code !== null) {
        clearInterval(timer);
        resolve(code);
      }
    }, CHILD_POLL_MS);
  });
  return Object.freeze({ name, pid, exited });
}

export function start(runtimeDir: string, bundlePath: string): void {
  // RTLD_NOW: a missing symbol (a broken install) fails here, as a JS error and exit 1, instead of
  // a lazy-binding failure later that kills the process with 127 and resets the whole cluster
  const bridge = { exports: {} as NativeBridge };
  process.dlopen(bridge, path.join(runtimeDir, 'pg_node_worker_bridge.node'), osConstants.dlopen.RTLD_NOW);
  const native = bridge.exports;
  checkBridgeConstants(native);
  native.init(PgError);
  const info = native.info();
  let exiting = false;

  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    native.exit(code);
  };

  /** Logs err with its stack, records it for node_worker.workers, and exits 1. */
  const fail = (what: string, err: unknown) => {
    const text = `${what}: ${describe(err)}`;
    native.log(LOG_ERROR, text);
    const code = err instanceof PgError ? err.code : null;
    native.reportError(code, text.split('\n').slice(0, 8).join('\n'));
    exit(1);
  };

  // Fatal paths first: anything uncaught is logged with its stack, exit 1.
  process.on('uncaughtException', (err) => fail('uncaught exception', err));
  process.on('unhandledRejection', (reason) => fail('unhandled promise rejection', reason));

  lockDown(native);

  const abort = new AbortController();
  const stopRequested = () => {
    if (!abort.signal.aborted) abort.abort(new Error('the worker is shutting down (SIGTERM)'));
  };
  const reloadHandlers = new Set<() => void>();
  const engine = new SqlEngine(native, stopRequested);
  // made once the bundle is loaded (it reads the definition); messages wait in the inbox until then
  let inbox: Inbox | null = null;

  (globalThis as Record<string, unknown>).__pgnwDispatch = (event: string) => {
    if (event === 'sigterm') {
      stopRequested();
    } else if (event === 'messages') {
      inbox?.deliver();
    } else if (event === 'reload') {
      for (const fn of [...reloadHandlers]) {
        try {
          fn();
        } catch (err) {
          native.log(LOG_ERROR, `onReload handler failed: ${describe(err)}`);
        }
      }
    }
  };

  // `__internal` is for the project's tests and diagnostics, not part of the SDK's API: it may
  // change without notice. signalStats(): how many signals the runtime's trampolines saw on the
  // main thread, forwarded from other threads, and how many replaced handlers it put back.
  // releaseMemory(dropFilePages?): a full GC that gives V8's spare pages back, then malloc_trim; with
  // true also the libraries' pages unmapped, as 1 s after start (memory tests; returns their kB).
  const internal = Object.freeze({
    signalStats: () => native.signalStats(),
    releaseMemory: (dropFilePages?: boolean) => native.releaseMemory(dropFilePages === true),
  });
  const sdk = Object.freeze({ defineWorker, PgError, DEFINITION_BRAND, RefusedApiError, __internal: internal, default: undefined });

  let def: WorkerDefinition;
  // bundles carry an inline source map: stacks in the server log point at the user's .ts lines
  process.setSourceMapsEnabled(true);
  try {
    const loaded = loadBundle(bundlePath, sdk);
    let problem: string | null = null;
    if (!loaded || typeof loaded !== 'object' || !(loaded as Record<symbol, unknown>)[DEFINITION_BRAND]) problem = 'it has no default export made by defineWorker()';
    else {
      try {
        definitionMetadata(loaded);
      } catch (e) {
        problem = (e as Error).message;
      }
    }
    if (problem !== null) {
      fail(`bundle ${bundlePath} does not export a valid worker (export default defineWorker({...}))`, problem);
      return;
    }
    def = loaded as WorkerDefinition;
  } catch (err) {
    fail(`loading bundle ${bundlePath} failed`, err);
    return;
  }
  const messages = new Inbox(native, info.name, abort.signal, def.maxPendingCalls);
  inbox = messages;
  if (def.name !== info.name)
    native.log(LOG_WARNING, `the bundle defines worker "${def.name}" but is deployed as "${info.name}"`);

  const at = (level: number) => (...args: unknown[]) => native.log(level, format(...args));
  const log: Logger = {
    debug: at(LOG_DEBUG),
    info: at(LOG_INFO),
    notice: at(LOG_NOTICE),
    warning: at(LOG_WARNING),
    error: at(LOG_ERROR),
  };

  const MB = 1024 * 1024;
  const ctx: WorkerContext = Object.freeze({
    worker: Object.freeze({
      name: info.name,
      pid: info.pid,
      database: info.database,
      role: info.role,
      startedAt: info.startedAt,
      memory: () => {
        const m = native.memoryUsage();
        return Object.freeze({
          heapLimitMb: Math.round(m.heapLimit / MB),
          bufferLimitMb: m.bufferLimit === null ? null : Math.floor(m.bufferLimit / MB),
          buffersMb: m.buffers / MB,
          buffersPeakMb: m.buffersPeak / MB,
          buffersRefused: m.refused,
        });
      },
    }),
    sql: engine.makeSql(() => true),
    transaction: <T>(fn: Parameters<WorkerContext['transaction']>[0]) => engine.transaction(fn) as T,
    signal: abort.signal,
    sleep: (ms: number) =>
      new Promise<SleepResult>((resolve) => {
        if (abort.signal.aborted) return resolve('abort');
        const finish = (why: SleepResult) => {
          clearTimeout(timer);
          abort.signal.removeEventListener('abort', onAbort);
          cancelWake();
          resolve(why);
        };
        const onAbort = () => finish('abort');
        const timer = setTimeout(() => finish('timeout'), Math.max(0, Number(ms) || 0));
        const cancelWake = messages.onWake(() => finish('wake'));
        abort.signal.addEventListener('abort', onAbort, { once: true });
      }),
    onCall: (handler: Parameters<WorkerContext['onCall']>[0]) => messages.onCall(handler),
    onMessage: (fn: Parameters<WorkerContext['onMessage']>[0]) => messages.onMessage(fn),
    messages: () => messages.messages(abort.signal),
    onReload: (fn: () => void) => {
      if (typeof fn !== 'function') throw new TypeError('onReload(fn) expects a function');
      reloadHandlers.add(fn);
      return () => void reloadHandlers.delete(fn);
    },
    setting: (name: string) => native.setting(String(name)),
    log,
    args: parseArgs(native.workerArgs()),
    launch: (name: string, args?: unknown) => launchWorker(native, name, args),
    isInRecovery: () => native.isInRecovery(),
    buffers: makeBuffers(native),
    shared: makeShared(native),
  }) as WorkerContext;

  native.markRunning();
  Promise.resolve()
    .then(() => def.main(ctx))
    .then(
      () => exit(0),
      (err) => {
        if (abort.signal.aborted) native.log(LOG_INFO, `main ended while shutting down: ${err instanceof Error ? err.message : String(err)}`);
        else fail('main failed', err);
      },
    );
}
