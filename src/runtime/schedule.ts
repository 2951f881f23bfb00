/**
 * ctx.schedule: functions run at the slots of a cron expression (or every N seconds), once per
 * slot per worker, each run recorded in node_worker.schedule_runs. As with ctx.jobs, a function
 * declared `async` is an async one and any other a synchronous one, and the two differ in what
 * "once" means:
 *
 * - A synchronous function `(run, tx) => ...` runs inside the transaction that claims its slot
 *   (node_worker.schedule_claim()), in a savepoint of its own: its SQL effects and the run's end
 *   (node_worker.schedule_finish()) commit together. A throw (or a returned promise, refused)
 *   rolls back its effects and records the run as 'error' with its text in that transaction; a
 *   failing COMMIT records it in a transaction of its own. A process that dies mid-run commits
 *   nothing, so the slot is free again: exactly once for the function's SQL effects.
 * - An async function runs after its slot's claim committed in a transaction of its own. A
 *   process that dies mid-run leaves its row 'running' (marked 'interrupted' by the next claim)
 *   and the slot is not run again: at most once.
 * - Either way the claim is a row unique per (worker, schedule, slot), refused when that slot or
 *   a later one is there (or being claimed by a transaction still open): also across restarts and
 *   between the `instances` of one worker, one of them runs it. The worker is the node_worker
 *   slot the process runs as (extension/schedules.c), whatever its application_name.
 * - Missed slots (the worker was down): at start the last claimed slot is read
 *   (node_worker.schedule_last()); with `missed: 'run-once'` (default) the latest slot since then
 *   runs once at once, with `'skip'` none of them. A schedule never run before starts with its
 *   next slot. A run that lasts past later slots is followed by one run for the latest of them.
 * - Between slots each schedule waits in a sleep on the worker's latch (as ctx.sleep: a wake or a
 *   reload ends it early and the next slot is computed again), at most an hour at a time so that
 *   a changed wall clock is noticed.
 * - On a hot standby (recovery) nothing can be written to the database: each run is logged (a
 *   synchronous function still runs, in a read-only transaction), and the last slot each schedule
 *   ran is kept in a small file of the standby's own (StandbySlots), so that after a restart
 *   there missed slots are caught up as on a primary.
 *
 * Limits: each schedule runs one slot at a time; schedules run concurrently with each other and
 * with the rest of the worker, a synchronous function blocking the worker while it runs. Needs
 * the extension (0.7 or later; 0.8 for the worker's identity from its slot and
 * node_worker.schedule_runs_keep) in the worker's database.
 */
import type { createHash as CreateHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { format } from 'util';
import { PgError } from '../errors';
import type { Logger, MissedSlots, ScheduleOptions, ScheduleRun, SleepResult, Sql, SyncScheduleFn, Transaction } from '../types';
import { parseSchedule, ScheduleInputError, type Slots } from './cron';
import { runInSavepoint } from './savepoint';

/** The longest single wait: a wall clock set forward or back is noticed within it. */
const MAX_WAIT_MS = 3600 * 1000;
const MAX_NAME = 200;

/** What the scheduler needs of the worker. */
export interface SchedulerParts {
  /** ctx.sql: each statement outside a transaction commits on its own */
  sql: Sql;
  /** ctx.transaction: fn runs in a transaction that commits when it returns */
  transaction<T>(fn: (tx: Transaction) => T): T;
  isInRecovery(): boolean;
  log: Logger;
  /** aborted when the worker stops */
  signal: AbortSignal;
  /** a latch sleep like ctx.sleep that also ends ('abort') when `stop` aborts */
  sleep(ms: number, stop: AbortSignal): Promise<SleepResult>;
  /** the connected database; null for a worker with none */
  database: string | null;
  /** where a hot standby remembers the slots it ran (null: nowhere, then nothing is caught up there) */
  standbySlots: StandbySlots | null;
}

/**
 * The last slot each schedule of a worker ran on a hot standby, which cannot write
 * node_worker.schedule_runs: one file per schedule, `<dir>/<hash of its name>`, holding
 * `{"schedule": name, "slot": ISO time}`, replaced atomically (written to a temporary file,
 * fsynced, renamed). `dir` is in the data directory, so a base backup of the standby takes it
 * along; the primary never reads it. Instances of one worker on a standby share the files (the
 * latest slot wins), though each of them runs every slot, as the database cannot arbitrate there.
 */
export class StandbySlots {
  constructor(readonly dir: string) {}

  private file(schedule: string): string {
    // crypto is loaded here, on a standby's first schedule: loading it costs every worker's
    // start-up 6-10 ms on Node 24
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { createHash } = require('crypto') as { createHash: typeof CreateHash };
    return path.join(this.dir, createHash('sha256').update(schedule).digest('hex').slice(0, 32));
  }

  /** The last slot the schedule ran here; null when none (or the file is unreadable). */
  read(schedule: string): Date | null {
    try {
      const saved = JSON.parse(fs.readFileSync(this.file(schedule), 'utf8')) as { schedule?: unknown; slot?: unknown };
      if (saved.schedule !== schedule || typeof saved.slot !== 'string') return null;
      const slot = new Date(saved.slot);
      return Number.isNaN(slot.getTime()) ? null : slot;
    } catch {
      return null;
    }
  }

  /** Remembers that the schedule ran slot (unless a later one is already there). */
  write(schedule: string, slot: Date): void {
    const last = this.read(schedule);
    if (last !== null && last >= slot) return;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(schedule);
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify({ schedule, slot: slot.toISOString() }));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  }
}

interface Entry {
  readonly name: string;
  readonly slots: Slots;
  readonly fn: (run: ScheduleRun, tx?: Transaction) => unknown;
  /** declared `async`: runs after its claim committed (at most once); else inside it (exactly once) */
  readonly isAsync: boolean;
  readonly missed: MissedSlots;
  readonly stop: AbortController;
}

/** An error (or anything thrown) as recorded in schedule_runs.error. */
function errorText(err: unknown): string {
  if (err instanceof PgError) return `${err.message} (SQLSTATE ${err.code})`;
  if (err instanceof Error) return err.message === '' ? err.name : `${err.name}: ${err.message}`;
  if (typeof err === 'string') return err;
  return format('%o', err);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The schedules of one worker process. */
export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  private extensionChecked = false;

  constructor(private readonly parts: SchedulerParts) {}

  /** ctx.schedule(name, cron, fn, options): checks everything, then starts the schedule's loop. */
  add(name: unknown, expression: unknown, fn: unknown, options?: unknown): () => void {
    if (typeof name !== 'string' || name === '' || name.length > MAX_NAME || name.includes('\0'))
      throw new TypeError(`schedule(name, cron, fn): name must be a string of 1 to ${MAX_NAME} characters without NUL`);
    const where = `schedule(${JSON.stringify(name)})`;
    if (typeof fn !== 'function') throw new TypeError(`${where}: fn must be a function`);
    if (options !== undefined && (options === null || typeof options !== 'object'))
      throw new TypeError(`${where}: options must be an object such as { timezone: "Europe/Berlin", missed: "skip" }`);
    const opts = (options ?? {}) as ScheduleOptions;
    const missed = opts.missed ?? 'run-once';
    if (missed !== 'run-once' && missed !== 'skip')
      throw new TypeError(`${where}: missed must be 'run-once' or 'skip', not ${JSON.stringify(missed)}`);
    let slots: Slots;
    try {
      slots = parseSchedule(expression, opts.timezone ?? 'UTC');
    } catch (err) {
      if (err instanceof ScheduleInputError) throw new ScheduleInputError(err.field, `${where}: ${err.message}`);
      throw err;
    }
    if (this.entries.has(name)) throw new Error(`${where}: this worker already has a schedule named "${name}"`);
    this.checkExtension(where);
    // the rule of ctx.jobs: a function is async when declared so
    const isAsync = fn.constructor?.name === 'AsyncFunction';
    const entry: Entry = { name, slots, fn: fn as Entry['fn'], isAsync, missed, stop: new AbortController() };
    this.entries.set(name, entry);
    void this.loop(entry);
    return () => {
      if (this.entries.get(name) === entry) this.entries.delete(name);
      entry.stop.abort();
    };
  }

  /** Runs are recorded in the worker's database: the extension's functions must be there. */
  private checkExtension(where: string): void {
    if (this.extensionChecked) return;
    if (this.parts.database === null)
      throw new Error(`${where}: a worker started at 'postmaster' has no database to record its runs in; use start: 'consistent' or 'recovery-finished'`);
    const [{ ok }] = this.parts.sql<{ ok: boolean }>`SELECT to_regprocedure('node_worker.schedule_claim(text,timestamptz)') IS NOT NULL AS ok`;
    if (!ok)
      throw new Error(
        `${where}: database "${this.parts.database}" has no pg_node_worker 0.7 or later, where runs are recorded: CREATE EXTENSION pg_node_worker (or ALTER EXTENSION pg_node_worker UPDATE) there`,
      );
    this.extensionChecked = true;
  }

  private stopped(e: Entry): boolean {
    return e.stop.signal.aborted || this.parts.signal.aborted;
  }

  /** Where a schedule starts: after the last slot it ran, with the latest missed slot to run first, if any. */
  private baseline(e: Entry): { after: Date; late: Date | null } {
    const now = new Date();
    const last = this.parts.isInRecovery()
      ? (this.parts.standbySlots?.read(e.name) ?? null)
      : this.parts.sql<{ last: Date | null }>`SELECT node_worker.schedule_last(${e.name}) AS last`[0].last;
    if (last === null) return { after: now, late: null };
    const due = e.slots.latest(now);
    if (e.missed === 'run-once' && due !== null && due > last) return { after: last, late: due };
    return { after: last > now ? last : now, late: null };
  }

  private async loop(e: Entry): Promise<void> {
    // after the caller's synchronous code: ctx.schedule() inside a ctx.transaction reads nothing in it
    await null;
    let after: Date;
    let late: Date | null = null;
    try {
      ({ after, late } = this.baseline(e));
    } catch (err) {
      if (this.stopped(e)) return;
      this.parts.log.error(`schedule "${e.name}": could not read its last run (${message(err)}); missed slots are not run`);
      after = new Date();
    }
    while (!this.stopped(e)) {
      let slot: Date;
      if (late !== null) {
        slot = late;
      } else {
        const now = new Date();
        const due = e.slots.latest(now);
        if (due !== null && due > after) {
          slot = due;
        } else {
          const next = e.slots.next(after > now ? after : now);
          if (next === null) {
            this.parts.log.info(`schedule "${e.name}" (${e.slots.expression}) has no slot after ${now.toISOString()}: it ends`);
            return;
          }
          const why = await this.parts.sleep(Math.min(next.getTime() - now.getTime(), MAX_WAIT_MS), e.stop.signal);
          if (why === 'abort') return;
          continue;
        }
      }
      const wasLate = late !== null;
      late = null;
      after = slot;
      await this.run(e, slot, wasLate);
    }
  }

  /** Runs one slot of the schedule, as its function's kind wants. */
  private async run(e: Entry, slot: Date, late: boolean): Promise<void> {
    if (e.isAsync) await this.runAsync(e, slot, late);
    else this.runSync(e, slot, late, this.parts.isInRecovery());
  }

  /** Logs the end of a run that failed, or that ran on a standby (and remembers its slot there). */
  private logEnd(e: Entry, slot: Date, standby: boolean, error: string | null, began: number): void {
    const at = slot.toISOString();
    if (error !== null) this.parts.log.warning(`schedule "${e.name}" failed at slot ${at}: ${error}`);
    if (!standby) return;
    this.parts.log.info(`schedule "${e.name}" ran slot ${at} on a hot standby (not recorded): ${error === null ? 'ok' : 'error'} in ${Date.now() - began} ms`);
    try {
      this.parts.standbySlots?.write(e.name, slot);
    } catch (err) {
      this.parts.log.warning(`schedule "${e.name}": could not remember slot ${at} in ${this.parts.standbySlots?.dir}: ${message(err)}`);
    }
  }

  /**
   * A synchronous function: claims the slot, runs the function in a savepoint and records the
   * end, all in one transaction. On a standby the function runs in a (read-only) transaction.
   */
  private runSync(e: Entry, slot: Date, late: boolean, standby: boolean): void {
    const at = slot.toISOString();
    const began = Date.now();
    let claimed = false;
    let error: string | null = null;
    try {
      this.parts.transaction((tx) => {
        if (!standby) {
          const [{ id }] = tx.sql<{ id: bigint | null }>`SELECT node_worker.schedule_claim(${e.name}, ${slot}) AS id`;
          // already claimed: by another instance of this worker or an earlier process
          if (id === null) return;
          claimed = true;
          error = this.callSync(e, Object.freeze({ name: e.name, slot, late, recorded: true }), tx);
          tx.sql`SELECT node_worker.schedule_finish(${id}, ${error === null ? 'ok' : 'error'}, ${error})`;
        } else {
          error = this.callSync(e, Object.freeze({ name: e.name, slot, late, recorded: false }), tx);
        }
      });
    } catch (err) {
      // cancelled by the shutdown: nothing committed, the slot is the next process's
      if (this.parts.signal.aborted) return;
      if (!claimed && !standby) {
        if (this.stopped(e)) return;
        if (err instanceof PgError && err.code === '25006') return this.runSync(e, slot, late, true);
        this.parts.log.error(`schedule "${e.name}": could not claim slot ${at}, so it does not run: ${message(err)}`);
        return;
      }
      // the COMMIT (a deferred constraint, a serialization failure) or the record of the end
      // failed: the function's effects are gone; record the run as failed on its own
      error = `${errorText(err)} (at commit; the run's effects were rolled back)`;
      if (!standby) this.recordFailure(e, slot, error);
    }
    this.logEnd(e, slot, standby, error, began);
  }

  /** Calls a synchronous function in a savepoint of tx: its error text, or null when it returned. */
  private callSync(e: Entry, run: ScheduleRun, tx: Transaction): string | null {
    return runInSavepoint(
      tx,
      (inner) => (e.fn as SyncScheduleFn)(run, inner),
      this.parts.signal,
      'a schedule function that is not declared async returned a promise; its effects were rolled back and the run recorded as failed. ' +
        'Declare the function async (it then runs after its slot is claimed, at most once), or keep it synchronous',
      errorText,
    );
  }

  /** Claims the slot and records it failed, in a transaction of its own (best effort). */
  private recordFailure(e: Entry, slot: Date, error: string): void {
    try {
      this.parts.transaction((tx) => {
        const [{ id }] = tx.sql<{ id: bigint | null }>`SELECT node_worker.schedule_claim(${e.name}, ${slot}) AS id`;
        if (id !== null) tx.sql`SELECT node_worker.schedule_finish(${id}, 'error', ${error})`;
      });
    } catch (err) {
      this.parts.log.warning(`schedule "${e.name}": could not record the failed run of slot ${slot.toISOString()}: ${message(err)}`);
    }
  }

  /** An async function: claims the slot (committed), runs the function, records the end. */
  private async runAsync(e: Entry, slot: Date, late: boolean): Promise<void> {
    const at = slot.toISOString();
    let standby = this.parts.isInRecovery();
    let id: bigint | null = null;
    if (!standby) {
      try {
        id = this.parts.sql<{ id: bigint | null }>`SELECT node_worker.schedule_claim(${e.name}, ${slot}) AS id`[0].id;
      } catch (err) {
        if (this.stopped(e)) return;
        if (err instanceof PgError && err.code === '25006') {
          standby = true;
        } else {
          this.parts.log.error(`schedule "${e.name}": could not claim slot ${at}, so it does not run: ${message(err)}`);
          return;
        }
      }
      // already claimed: by another instance of this worker or an earlier process
      if (!standby && id === null) return;
    }
    const began = Date.now();
    let error: string | null = null;
    try {
      await e.fn(Object.freeze({ name: e.name, slot, late, recorded: !standby }));
    } catch (err) {
      error = errorText(err);
    }
    if (id !== null) {
      try {
        this.parts.sql`SELECT node_worker.schedule_finish(${id}, ${error === null ? 'ok' : 'error'}, ${error})`;
      } catch (err) {
        this.parts.log.warning(`schedule "${e.name}": could not record the end of the run of slot ${at}: ${message(err)}`);
      }
    }
    this.logEnd(e, slot, standby, error, began);
  }
}
