/**
 * The `ctx` a worker's main() receives: built from the bridge, the SQL engine and the inbox.
 */
import * as path from 'path';
import { format } from 'util';
import type { AsyncScheduleFn, JobHandler, JobsOptions, LaunchOptions, Logger, ScheduleOptions, SleepResult, SyncScheduleFn, WorkerContext, WorkerHandle, WorkerInfo } from '../types';
import { makeBuffers, makeShared } from './buffers';
import type { Inbox } from './inbox';
import { enqueue, type Jobs } from './jobs';
import type { NativeBridge } from './native';
import { LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_NOTICE, LOG_WARNING } from './native';
import { Scheduler, StandbySlots } from './schedule';
import type { SqlEngine } from './sql';

const CHILD_POLL_MS = 50;
const MB = 1024 * 1024;

/** What ctx is made of. */
export interface ContextParts {
  native: NativeBridge;
  /** what native.info() said at start */
  info: ReturnType<NativeBridge['info']>;
  engine: SqlEngine;
  messages: Inbox;
  /** the job consumers (ctx.jobs), woken by the runtime's 'jobs' event */
  jobs: Jobs;
  /** aborted when the worker is asked to stop (ctx.signal) */
  signal: AbortSignal;
  /** the ctx.onReload handlers, called on SIGHUP */
  reloadHandlers: Set<() => void>;
  /** the pending ctx.sleep() calls, ended after the onReload handlers ran on SIGHUP */
  reloadWaiters: Set<() => void>;
}

/** The database of ctx.launch's options: null for the manifest's; checked before anything starts. */
function launchDatabase(options: unknown): string | null {
  if (options === undefined || options === null) return null;
  if (typeof options !== 'object') throw new TypeError('launch(name, args?, options?): options must be an object such as { database: "app" }');
  const database = (options as LaunchOptions).database;
  if (database === undefined || database === null) return null;
  if (typeof database !== 'string' || database === '' || database.includes('\0'))
    throw new TypeError('launch(name, args?, { database }): database must be a non-empty string without NUL (or left out for the deployed one)');
  return database;
}

/** ctx.launch: start a dynamic worker; its exit is noticed by polling its slot while awaited. */
export function launchWorker(native: NativeBridge, name: string, args: unknown, options?: unknown): WorkerHandle {
  if (typeof name !== 'string') throw new TypeError('launch(name, args?): name must be a string');
  let json: string | null = null;
  if (args !== undefined && args !== null) {
    json = JSON.stringify(args);
    if (json === undefined) throw new TypeError('launch(name, args?): args must be JSON-serialisable');
  }
  const { pid, slot } = native.launch(name, json, launchDatabase(options));
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

/** ctx.log: each level formats its arguments as console.log does and goes to the server log. */
export function makeLogger(native: NativeBridge): Logger {
  const at = (level: number) => (...args: unknown[]) => native.log(level, format(...args));
  return {
    debug: at(LOG_DEBUG),
    info: at(LOG_INFO),
    notice: at(LOG_NOTICE),
    warning: at(LOG_WARNING),
    error: at(LOG_ERROR),
  };
}

/** ctx.worker: who the worker is, and its memory figures on demand. */
function workerInfo(native: NativeBridge, info: ContextParts['info']): WorkerInfo {
  return Object.freeze({
    name: info.name,
    instance: native.workerInstance(),
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
        resultBuffersMb: m.resultBuffers / MB,
      });
    },
  });
}

/**
 * ctx.sleep: resolves 'timeout' after ms, 'wake' on node_worker.wake(), 'reload' on SIGHUP,
 * 'abort' when asked to stop. A reload ends the sleep as it sets a C worker's latch, so a
 * worker_spi-style loop picks up new settings at once instead of after its naptime.
 *
 * Like a latch, a wake or a reload that comes while no ctx.sleep() is pending (the worker is busy
 * between two sleeps) is kept and ends the next ctx.sleep() at once: a C worker's next WaitLatch
 * returns at once when its latch was set while it worked, so a loop of "work, sleep" never sleeps
 * through the wake that asked for more work. One kept event ends one sleep; the first kind wins.
 *
 * `internal` (the runtime's own sleepers, such as schedules) also ends with 'abort' when `stop`
 * aborts, and neither takes nor keeps the latch: that is ctx.sleep's alone.
 */
function makeSleep(
  signal: AbortSignal,
  messages: Inbox,
  reloadWaiters: Set<() => void>,
): { sleep: (ms: number) => Promise<SleepResult>; internal: (ms: number, stop: AbortSignal) => Promise<SleepResult> } {
  let latched: 'wake' | 'reload' | null = null;
  let sleeping = 0;
  // registered before any sleeper, so each runs before the sleepers it could see are ended
  messages.onEveryWake(() => {
    if (sleeping === 0) latched ??= 'wake';
  });
  reloadWaiters.add(() => {
    if (sleeping === 0) latched ??= 'reload';
  });

  const wait = (ms: number, stop: AbortSignal | null): Promise<SleepResult> =>
    new Promise<SleepResult>((resolve) => {
      if (signal.aborted || stop?.aborted) return resolve('abort');
      if (stop === null) {
        if (latched !== null) {
          const why = latched;
          latched = null;
          return resolve(why);
        }
        sleeping++;
      }
      let done = false;
      const finish = (why: SleepResult) => {
        if (done) return;
        done = true;
        if (stop === null) sleeping--;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        stop?.removeEventListener('abort', onAbort);
        cancelWake();
        reloadWaiters.delete(onReload);
        resolve(why);
      };
      const onReload = () => finish('reload');
      const onAbort = () => finish('abort');
      const timer = setTimeout(() => finish('timeout'), Math.max(0, Number(ms) || 0));
      const cancelWake = messages.onWake(() => finish('wake'));
      reloadWaiters.add(onReload);
      signal.addEventListener('abort', onAbort, { once: true });
      stop?.addEventListener('abort', onAbort, { once: true });
    });
  return { sleep: (ms) => wait(ms, null), internal: (ms, stop) => wait(ms, stop) };
}

function parseArgs(text: string | null): unknown {
  if (text === null) return null;
  return JSON.parse(text);
}

/** Builds the frozen ctx. */
export function makeContext(parts: ContextParts): WorkerContext {
  const { native, info, engine, messages, jobs, signal, reloadHandlers, reloadWaiters } = parts;
  const sql = engine.makeSql(() => true);
  const { sleep, internal: internalSleep } = makeSleep(signal, messages, reloadWaiters);
  const log = makeLogger(native);
  const scheduler = new Scheduler({
    sql,
    transaction: (fn) => engine.transaction(fn),
    isInRecovery: () => native.isInRecovery(),
    log,
    signal,
    sleep: internalSleep,
    database: info.database,
    // the process runs in the data directory: node_worker/ there (the default deploy directory)
    standbySlots: new StandbySlots(path.resolve('node_worker', '.schedules-standby', info.name)),
  });
  return Object.freeze({
    worker: workerInfo(native, info),
    sql,
    transaction: <T>(fn: Parameters<WorkerContext['transaction']>[0]) => engine.transaction(fn) as T,
    enqueue: (queue: string, payload: unknown, options?: Parameters<WorkerContext['enqueue']>[2]) => enqueue(engine, queue, payload, options),
    jobs: (queue: string, handler: JobHandler, options?: JobsOptions) => jobs.subscribe(queue, handler, options),
    signal,
    sleep: (ms: number) => sleep(ms),
    onCall: (handler: Parameters<WorkerContext['onCall']>[0]) => messages.onCall(handler),
    onMessage: (fn: Parameters<WorkerContext['onMessage']>[0]) => messages.onMessage(fn),
    messages: () => messages.messages(signal),
    onReload: (fn: () => void) => {
      if (typeof fn !== 'function') throw new TypeError('onReload(fn) expects a function');
      reloadHandlers.add(fn);
      return () => void reloadHandlers.delete(fn);
    },
    setting: (name: string) => native.setting(String(name)),
    log,
    args: parseArgs(native.workerArgs()),
    launch: (name: string, args?: unknown, options?: LaunchOptions) => launchWorker(native, name, args, options),
    isInRecovery: () => native.isInRecovery(),
    buffers: makeBuffers(native),
    shared: makeShared(native),
    schedule: (name: string, cron: string, fn: SyncScheduleFn | AsyncScheduleFn, options?: ScheduleOptions) => scheduler.add(name, cron, fn, options),
  }) as WorkerContext;
}
