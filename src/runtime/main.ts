/**
 * The JavaScript side of a worker process (bundled to runtime.js).
 *
 * extension/runtime_embed.cc starts Node and calls start(): it loads the bridge, locks down the process
 * (lockdown.ts), loads the deployed bundle with 'pg-node-worker' provided by this runtime, builds
 * ctx (context.ts) and runs main(). runtime_embed.cc then drives the event loop and calls the dispatch
 * function registered here for PostgreSQL events (SIGTERM, SIGHUP, messages in the inbox, jobs committed).
 */
import { constants as osConstants } from 'os';
import Module = require('module');
import * as fs from 'fs';
import * as path from 'path';
import { format } from 'util';
import { defineWorker, DEFINITION_BRAND, definitionMetadata } from '../define';
import { PgError } from '../errors';
import type { WorkerDefinition } from '../types';
import { makeContext } from './context';
import { Inbox } from './inbox';
import { Jobs } from './jobs';
import { InspectOptions, OpenInspector, openInspector } from './inspect';
import { lockDown, RefusedApiError } from './lockdown';
import type { NativeBridge } from './native';
import { LOG_ERROR, LOG_INFO, LOG_WARNING, checkBridgeConstants } from './native';
import { SqlEngine } from './sql';

const STACK_LINES = 20;

/** An error (or anything thrown) as the server log shows it: its stack, and a PgError's fields. */
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

/**
 * Loads the bridge. RTLD_NOW: a missing symbol (a broken install) fails here, as a JS error and
 * exit 1, instead of a lazy-binding failure later that kills the process with 127 and resets the
 * whole cluster.
 */
function loadBridge(runtimeDir: string): NativeBridge {
  const bridge = { exports: {} as NativeBridge };
  process.dlopen(bridge, path.join(runtimeDir, 'pg_node_worker_bridge.node'), osConstants.dlopen.RTLD_NOW);
  checkBridgeConstants(bridge.exports);
  return bridge.exports;
}

/** How the process ends: once, through the bridge. */
class Exit {
  private exiting = false;

  constructor(private readonly native: NativeBridge) {}

  /** Ends the worker with `code` (the first call wins). */
  exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    this.native.exit(code);
  }

  /** Logs err with its stack, records it for node_worker.workers, and exits 1. */
  fail(what: string, err: unknown): void {
    const text = `${what}: ${describe(err)}`;
    this.native.log(LOG_ERROR, text);
    const code = err instanceof PgError ? err.code : null;
    this.native.reportError(code, text.split('\n').slice(0, 8).join('\n'));
    this.exit(1);
  }
}

/** What the runtime's events (SIGTERM, inbox messages, committed jobs, SIGHUP) do; installed as globalThis.__pgnwDispatch. */
function installDispatch(
  native: NativeBridge,
  stopRequested: () => void,
  inbox: () => Inbox | null,
  jobs: Jobs,
  reloadHandlers: Set<() => void>,
  reloadWaiters: Set<() => void>,
): void {
  (globalThis as Record<string, unknown>).__pgnwDispatch = (event: string) => {
    if (event === 'sigterm') {
      stopRequested();
    } else if (event === 'messages') {
      inbox()?.deliver();
    } else if (event === 'jobs') {
      jobs.wake();
    } else if (event === 'reload') {
      for (const fn of [...reloadHandlers]) {
        try {
          fn();
        } catch (err) {
          native.log(LOG_ERROR, `onReload handler failed: ${describe(err)}`);
        }
      }
      // after the handlers, so that a loop woken from ctx.sleep() sees what they changed
      for (const wake of [...reloadWaiters]) wake();
    }
  };
}

/**
 * The 'pg-node-worker' module as the bundle sees it.
 *
 * `__internal` is for the project's tests and diagnostics, not part of the SDK's API: it may
 * change without notice. signalStats(): how many signals the runtime's trampolines saw on the
 * main thread, forwarded from other threads, and how many replaced handlers it put back.
 * releaseMemory(dropFilePages?): a full GC that gives V8's spare pages back, then malloc_trim; with
 * true also the libraries' pages unmapped, as 1 s after start (memory tests; returns their kB).
 */
function makeSdk(native: NativeBridge): object {
  const internal = Object.freeze({
    signalStats: () => native.signalStats(),
    releaseMemory: (dropFilePages?: boolean) => native.releaseMemory(dropFilePages === true),
  });
  return Object.freeze({ defineWorker, PgError, DEFINITION_BRAND, RefusedApiError, __internal: internal, default: undefined });
}

/** Why what a bundle exports is not a worker definition, or null when it is one. */
function definitionProblem(loaded: unknown): string | null {
  if (!loaded || typeof loaded !== 'object' || !(loaded as Record<symbol, unknown>)[DEFINITION_BRAND])
    return 'it has no default export made by defineWorker()';
  try {
    definitionMetadata(loaded);
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

/** Loads the bundle and checks its definition; null (after exit.fail) when that fails. */
function loadDefinition(bundlePath: string, sdk: object, exit: Exit): WorkerDefinition | null {
  // bundles carry an inline source map: stacks in the server log point at the user's .ts lines
  process.setSourceMapsEnabled(true);
  try {
    const loaded = loadBundle(bundlePath, sdk);
    const problem = definitionProblem(loaded);
    if (problem !== null) {
      exit.fail(`bundle ${bundlePath} does not export a valid worker (export default defineWorker({...}))`, problem);
      return null;
    }
    return loaded as WorkerDefinition;
  } catch (err) {
    exit.fail(`loading bundle ${bundlePath} failed`, err);
    return null;
  }
}

/**
 * Runs in the worker process, called by runtime_embed.cc: loads the bridge, locks the process down,
 * opens the inspector when `inspect` asks for it, loads the deployed bundle at `bundlePath`, builds
 * ctx and runs the definition's main(). The worker exits 0 when main() resolves, 1 when it fails
 * or anything is left uncaught.
 */
export function start(runtimeDir: string, bundlePath: string, inspect?: InspectOptions): void {
  const native = loadBridge(runtimeDir);
  native.init(PgError);
  const info = native.info();
  const exit = new Exit(native);

  // Fatal paths first: anything uncaught is logged with its stack, exit 1.
  process.on('uncaughtException', (err) => exit.fail('uncaught exception', err));
  process.on('unhandledRejection', (reason) => exit.fail('unhandled promise rejection', reason));

  lockDown(native);

  const abort = new AbortController();
  let debuggerPort: OpenInspector | undefined;
  const stopRequested = () => {
    // debuggers detach: a breakpoint must not hold up the shutdown
    debuggerPort?.close();
    debuggerPort = undefined;
    if (!abort.signal.aborted) abort.abort(new Error('the worker is shutting down (SIGTERM)'));
  };
  const reloadHandlers = new Set<() => void>();
  const reloadWaiters = new Set<() => void>();
  const engine = new SqlEngine(native, stopRequested);
  // made once the bundle is loaded (it reads the definition); messages wait in the inbox until then
  let inbox: Inbox | null = null;
  const jobs = new Jobs(engine, native, abort.signal);
  installDispatch(native, stopRequested, () => inbox, jobs, reloadHandlers, reloadWaiters);

  try {
    debuggerPort = openInspector(native, inspect);
  } catch (err) {
    exit.fail('could not start the debugger', err);
    return;
  }
  const def = loadDefinition(bundlePath, makeSdk(native), exit);
  if (def === null) return;
  const messages = new Inbox(native, info.name, abort.signal, def.maxPendingCalls);
  inbox = messages;
  if (def.name !== info.name)
    native.log(LOG_WARNING, `the bundle defines worker "${def.name}" but is deployed as "${info.name}"`);

  const ctx = makeContext({ native, info, engine, messages, jobs, signal: abort.signal, reloadHandlers, reloadWaiters });
  native.markRunning();
  Promise.resolve()
    .then(() => def.main(ctx))
    .then(
      () => exit.exit(0),
      (err) => {
        if (abort.signal.aborted) native.log(LOG_INFO, `main ended while shutting down: ${err instanceof Error ? err.message : String(err)}`);
        else exit.fail('main failed', err);
      },
    );
}
