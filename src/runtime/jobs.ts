/**
 * ctx.enqueue and ctx.jobs: the worker's side of the durable job queues (the table and the SQL
 * functions are the extension's, extension/pg_node_worker--0.6--0.7.sql and extension/jobs.c).
 *
 * A consumer claims jobs with `FOR UPDATE SKIP LOCKED`, so several processes of a worker share a
 * queue. A synchronous handler runs inside the transaction that claimed its job, each job in a
 * savepoint: its SQL effects and the job's completion commit together, and a throw rolls back
 * the job's effects and records a retry in the same transaction. An async handler runs after
 * its claim committed, under a lease that the consumer renews while the handler runs; its
 * completion commits afterwards (at least once: a lease that expires because the process died
 * makes the job runnable again).
 *
 * Nothing polls: the consumer looks at its queue when it subscribes, when a committing enqueue
 * wakes the worker (runtime_embed.cc dispatches 'jobs'), when a handler finishes, and at the
 * time the next job becomes due, a lease expires or a done job is to be pruned (one timer).
 * Limits: the only place that backs off by itself is a queue whose due jobs are all locked by
 * another process of the worker, or with more than 10,000 done jobs to prune (10 ms doubling to 1 s).
 */
import type { AsyncJobHandler, EnqueueOptions, Job, JobHandler, JobsOptions, SyncJobHandler, Transaction } from '../types';
import type { NativeBridge } from './native';
import { LOG_ERROR } from './native';
import { runInSavepoint } from './savepoint';
import type { SqlEngine } from './sql';

const DEFAULT_SYNC_BATCH = 10;
const MAX_BATCH = 1000;
const DEFAULT_LEASE_MS = 30_000;
const MIN_LEASE_MS = 100;
const DEFAULT_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 3_600_000;
/** synchronous batches run back to back before the consumer lets the event loop turn */
const SYNC_BATCHES_PER_TURN = 20;
/** due jobs all locked by another process: look again after this, doubling */
const LOCKED_RETRY_MIN_MS = 10;
const LOCKED_RETRY_MAX_MS = 1000;
/** a busy queue's done jobs are pruned this often (an idle one's whenever it goes idle) */
const PRUNE_EVERY_MS = 1000;
/** setTimeout's limit */
const MAX_TIMER_MS = 2 ** 31 - 1;

const ENQUEUE = 'SELECT node_worker.enqueue($1, $2::jsonb, $3::timestamptz, $4, $5, $6) AS id';
const CHECK = 'SELECT node_worker._jobs_consumer($1)';
const CLAIM = 'SELECT id, payload, attempts, run_at, job_key FROM node_worker._jobs_claim($1, $2, $3)';
const COMPLETE = 'SELECT node_worker._jobs_complete($1, $2::bigint[], $3::int[], $4)';
const FAIL = 'SELECT node_worker._jobs_fail($1, $2, $3, $4, $5, $6)';
const RENEW = 'SELECT node_worker._jobs_renew($1, $2::bigint[], $3::int[], $4)';
const DUE = 'SELECT node_worker._jobs_due($1) AS ms';

interface ClaimRow {
  id: bigint;
  payload: unknown;
  attempts: number;
  run_at: Date;
  job_key: string | null;
}

interface Outcome {
  job: Job;
  /** null: done */
  error: string | null;
}

/** What a thrown value is recorded as: an Error as `Name: message`, anything else as its string. */
export function errorText(err: unknown): string {
  try {
    return String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}

/** The delay before attempt `attempts + 1`: backoffMs doubled per attempt made, at most 1 h. */
export function backoffDelay(backoffMs: number, attempts: number): number {
  return Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** Math.max(0, attempts - 1));
}

function positiveInt(name: string, v: unknown, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new TypeError(`jobs(queue, handler, options): ${name} must be an integer from ${min} to ${max}`);
  return v;
}

/** ctx.enqueue: node_worker.enqueue() in the current transaction (or one of its own). */
export function enqueue(engine: SqlEngine, queue: string, payload: unknown, options?: EnqueueOptions): bigint {
  if (typeof queue !== 'string') throw new TypeError('enqueue(queue, payload, options?): queue must be a string');
  const o = options ?? {};
  if (typeof o !== 'object') throw new TypeError('enqueue(queue, payload, options?): options must be an object');
  const json = payload === undefined ? null : JSON.stringify(payload);
  if (payload !== undefined && json === undefined) throw new TypeError('enqueue(queue, payload): payload must be JSON-serialisable');
  if (o.runAt !== undefined && !(o.runAt instanceof Date)) throw new TypeError('enqueue(): runAt must be a Date');
  if (o.key !== undefined && o.key !== null && typeof o.key !== 'string') throw new TypeError('enqueue(): key must be a string');
  for (const k of ['maxAttempts', 'priority'] as const)
    if (o[k] !== undefined && !Number.isInteger(o[k])) throw new TypeError(`enqueue(): ${k} must be an integer`);
  const rows = engine.run<{ id: bigint }>(ENQUEUE, [queue, json, o.runAt ?? null, o.key ?? null, o.maxAttempts ?? null, o.priority ?? null]);
  return BigInt(rows[0].id as bigint);
}

/** One ctx.jobs() subscription. */
class Consumer {
  private stopped = false;
  private scheduled = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private renewer: ReturnType<typeof setInterval> | null = null;
  private readonly running = new Map<bigint, Job>();
  private outcomes: Outcome[] = [];
  private flushQueued = false;
  private lockedRetryMs = LOCKED_RETRY_MIN_MS;
  private lastPrune = Date.now();
  readonly isAsync: boolean;
  private readonly batch: number;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly backoffMs: number;

  constructor(
    private readonly engine: SqlEngine,
    private readonly native: NativeBridge,
    private readonly signal: AbortSignal,
    readonly queue: string,
    private readonly handler: JobHandler,
    options: JobsOptions,
  ) {
    this.isAsync = handler.constructor?.name === 'AsyncFunction';
    this.concurrency = positiveInt('concurrency', options.concurrency, 1, 1, MAX_BATCH);
    if (!this.isAsync && this.concurrency !== 1)
      throw new TypeError('jobs(queue, handler, options): concurrency is for async handlers; a synchronous handler runs one job at a time (use batch)');
    this.batch = positiveInt('batch', options.batch, this.isAsync ? this.concurrency : DEFAULT_SYNC_BATCH, 1, MAX_BATCH);
    this.leaseMs = positiveInt('leaseMs', options.leaseMs, DEFAULT_LEASE_MS, MIN_LEASE_MS, 86_400_000);
    this.backoffMs = positiveInt('backoffMs', options.backoffMs, DEFAULT_BACKOFF_MS, 0, MAX_BACKOFF_MS);
  }

  private get active(): boolean {
    return !this.stopped && !this.signal.aborted;
  }

  /** Look at the queue soon (once, however often asked before it happens). */
  schedule(): void {
    if (this.scheduled || !this.active) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /**
   * Looks at the queue at once, unless a look is already scheduled: the enqueuer's commit woke
   * the worker, and an idle worker's turn of the event loop is the latency of a job.
   */
  pumpNow(): void {
    if (!this.scheduled) this.pump();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private logError(what: string, err: unknown): void {
    this.native.log(LOG_ERROR, `jobs of queue "${this.queue}": ${what}: ${err instanceof Error ? (err.stack ?? err.message) : errorText(err)}`);
  }

  private toJob(r: ClaimRow): Job {
    return Object.freeze({ id: BigInt(r.id), queue: this.queue, payload: r.payload, attempts: r.attempts, runAt: r.run_at, key: r.job_key });
  }

  private pump(): void {
    if (!this.active) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    try {
      if (this.isAsync) this.pumpAsync();
      else this.pumpSync();
    } catch (err) {
      if (!this.active) return;
      // the database refused (a lock timeout, the extension dropped): try again later
      this.logError('claiming failed', err);
      this.arm(LOCKED_RETRY_MAX_MS);
    }
  }

  /**
   * On a queue that stays busy, prunes done jobs now and then (_jobs_due does it, 10,000 at a
   * time); again after the next batch while a prune found that limit, so that the table stays
   * bounded however fast the queue drains.
   */
  private maybePrune(): void {
    if (Date.now() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = Date.now();
    const ms = this.engine.run<{ ms: number | null }>(DUE, [this.queue])[0].ms;
    if (ms !== null && ms < 0) this.lastPrune = 0;
  }

  /**
   * Sets the one timer for when the next job is due, a lease expires or a done job is to be
   * pruned (null: none until an enqueue wakes us); prunes done jobs.
   */
  private armFromDue(claimedShort: boolean): void {
    this.lastPrune = Date.now();
    const rows = this.engine.run<{ ms: number | null }>(DUE, [this.queue]);
    const ms = rows[0].ms;
    if (ms === null) return;
    if (ms <= 0) {
      // due now but not claimable (another process holds it), or more done jobs to prune
      if (claimedShort) {
        this.arm(this.lockedRetryMs);
        this.lockedRetryMs = Math.min(LOCKED_RETRY_MAX_MS, this.lockedRetryMs * 2);
      } else this.schedule();
      return;
    }
    this.arm(Math.ceil(ms));
  }

  private arm(ms: number): void {
    if (!this.active) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, Math.min(ms, MAX_TIMER_MS));
  }

  // ------------------------------------------------------------ synchronous handlers

  private pumpSync(): void {
    for (let i = 0; i < SYNC_BATCHES_PER_TURN; i++) {
      if (!this.active) return;
      const claimed = this.syncBatch();
      if (claimed < this.batch) {
        if (claimed > 0) this.lockedRetryMs = LOCKED_RETRY_MIN_MS;
        this.armFromDue(claimed === 0);
        return;
      }
      this.lockedRetryMs = LOCKED_RETRY_MIN_MS;
      this.maybePrune();
    }
    this.schedule();
  }

  /** Runs one job's handler in a savepoint of tx; its error text, or null when it returned. */
  private runSync(job: Job, tx: Transaction): string | null {
    return runInSavepoint(
      tx,
      (inner) => (this.handler as SyncJobHandler)(job, inner),
      this.signal,
      'a job handler that is not declared async returned a promise; its job was rolled back and will be retried. ' +
        'Declare the handler async (it then runs after the claim commits, at least once), or keep it synchronous',
      errorText,
    );
  }

  /** Claims up to `batch` jobs and runs them in one transaction; returns how many it claimed. */
  private syncBatch(): number {
    let jobs: Job[] = [];
    try {
      this.engine.transaction((tx) => {
        jobs = tx.sql.unsafe<ClaimRow>(CLAIM, [this.queue, this.batch, null]).map((r) => this.toJob(r));
        const done: Job[] = [];
        const failed: Outcome[] = [];
        for (const job of jobs) {
          if (!this.active) break;
          const error = this.runSync(job, tx);
          if (error === null) done.push(job);
          else failed.push({ job, error });
        }
        if (done.length > 0)
          tx.sql.unsafe(COMPLETE, [this.queue, done.map((j) => j.id), done.map((j) => j.attempts), true]);
        for (const f of failed)
          tx.sql.unsafe(FAIL, [this.queue, f.job.id, f.job.attempts, f.error, backoffDelay(this.backoffMs, f.job.attempts), true]);
      });
    } catch (err) {
      if (!this.active || jobs.length === 0) throw err;
      // the batch failed as a whole (at COMMIT: a deferred constraint, a serialization failure):
      // each of its jobs counts an attempt with that error, so a job that always fails there ends
      this.logError('a batch of jobs failed to commit', err);
      const error = errorText(err);
      this.engine.transaction((tx) => {
        for (const job of jobs)
          tx.sql.unsafe(FAIL, [this.queue, job.id, job.attempts, error, backoffDelay(this.backoffMs, job.attempts), true]);
      });
    }
    return jobs.length;
  }

  // ------------------------------------------------------------ async handlers

  private pumpAsync(): void {
    while (this.active) {
      const room = this.concurrency - this.running.size;
      if (room <= 0) return; // a settling handler pumps again
      const want = Math.min(this.batch, room);
      const rows = this.engine.run<ClaimRow>(CLAIM, [this.queue, want, this.leaseMs]);
      for (const r of rows) this.start(this.toJob(r));
      if (rows.length < want) {
        this.armFromDue(rows.length === 0);
        return;
      }
      this.lockedRetryMs = LOCKED_RETRY_MIN_MS;
      this.maybePrune();
    }
  }

  private start(job: Job): void {
    this.running.set(job.id, job);
    this.renewLeases();
    Promise.resolve()
      .then(() => (this.handler as AsyncJobHandler)(job))
      .then(
        () => this.settle({ job, error: null }),
        (err) => this.settle({ job, error: errorText(err) }),
      );
  }

  private settle(outcome: Outcome): void {
    this.running.delete(outcome.job.id);
    this.outcomes.push(outcome);
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  /** Commits the outcomes of settled handlers together, then looks for more work. */
  private flush(): void {
    this.flushQueued = false;
    const outcomes = this.outcomes;
    this.outcomes = [];
    const done = outcomes.filter((o) => o.error === null).map((o) => o.job);
    try {
      this.engine.transaction((tx) => {
        if (done.length > 0)
          tx.sql.unsafe(COMPLETE, [this.queue, done.map((j) => j.id), done.map((j) => j.attempts), false]);
        for (const o of outcomes)
          if (o.error !== null)
            tx.sql.unsafe(FAIL, [this.queue, o.job.id, o.job.attempts, o.error, backoffDelay(this.backoffMs, o.job.attempts), false]);
      });
    } catch (err) {
      // their leases expire and the jobs run again: at least once
      this.logError('recording finished jobs failed', err);
    }
    if (this.running.size === 0 && this.renewer !== null) {
      clearInterval(this.renewer);
      this.renewer = null;
    }
    this.schedule();
  }

  /** While handlers run, their leases are renewed every third of a lease. */
  private renewLeases(): void {
    if (this.renewer !== null) return;
    this.renewer = setInterval(() => {
      if (this.running.size === 0) return;
      const jobs = [...this.running.values()];
      try {
        this.engine.run(RENEW, [this.queue, jobs.map((j) => j.id), jobs.map((j) => j.attempts), this.leaseMs]);
      } catch (err) {
        this.logError('renewing leases failed', err);
      }
    }, Math.max(MIN_LEASE_MS / 2, Math.floor(this.leaseMs / 3)));
  }
}

/** The worker's job consumers; woken by the runtime when jobs for its queues committed. */
export class Jobs {
  private readonly consumers = new Set<Consumer>();

  constructor(
    private readonly engine: SqlEngine,
    private readonly native: NativeBridge,
    private readonly signal: AbortSignal,
  ) {}

  /** ctx.jobs: subscribe handler to queue; returns the unsubscribe function. */
  subscribe(queue: string, handler: JobHandler, options?: JobsOptions): () => void {
    if (typeof queue !== 'string') throw new TypeError('jobs(queue, handler, options?): queue must be a string');
    if (typeof handler !== 'function') throw new TypeError('jobs(queue, handler, options?): handler must be a function');
    if (options !== undefined && (options === null || typeof options !== 'object'))
      throw new TypeError('jobs(queue, handler, options?): options must be an object');
    const consumer = new Consumer(this.engine, this.native, this.signal, queue, handler, options ?? {});
    // the queue's name and ownership, checked by the server: PgError 22023 / 42501
    this.engine.run(CHECK, [queue]);
    this.consumers.add(consumer);
    consumer.schedule();
    return () => {
      consumer.stop();
      this.consumers.delete(consumer);
    };
  }

  /** Jobs committed for this worker's queues: every consumer looks, now (the runtime's loop called). */
  wake(): void {
    for (const c of this.consumers) c.pumpNow();
  }
}
