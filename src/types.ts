/**
 * The public types of the worker API.
 */

/** A row: column name to converted value. */
export type Row = Record<string, unknown>;

/**
 * What a statement returns: the rows, with `count` (rows returned or
 * affected), `command` (`SELECT`, `INSERT`, `UPDATE`, `DELETE`, `MERGE`, or
 * `UTILITY`) and `columns` (the column names, in order).
 */
export type Result<T = Row> = T[] & {
  readonly count: number;
  readonly command: string;
  readonly columns: readonly string[];
};

declare const sqlFragmentBrand: unique symbol;

/**
 * A piece of SQL made by a worker's `sql`: a quoted identifier (`sql('name')`), the column list
 * and rows of a bulk insert (`sql(rows, ...columns)`) or a fragment (`sql.fragment\`...\``).
 * Interpolated into a `sql` template it becomes SQL text, its values bound parameters numbered
 * in order with the statement's own. Opaque: only the `sql` of the worker that made it accepts
 * it, and it cannot be sent as a value.
 */
export interface SqlFragment {
  readonly [sqlFragmentBrand]: true;
}

/**
 * Runs SQL in the worker's own backend, through SPI.
 *
 * As a tagged template, interpolated values are sent as bound parameters
 * (`$1`, `$2`, ...), never as text; a {@link SqlFragment} is spliced in as
 * SQL text with its own parameters renumbered. The call is synchronous;
 * `await` on it also works.
 *
 * ```ts
 * const { sql } = ctx;
 * sql`SELECT * FROM ${sql(['app', 'jobs'])} WHERE id = ANY(${ids})`;
 * sql`INSERT INTO app.jobs ${sql(rows, 'id', 'payload')}`;
 * sql`SELECT * FROM app.jobs ${done === undefined ? sql.fragment`` : sql.fragment`WHERE done = ${done}`}`;
 * ```
 */
export interface Sql {
  <T = Row>(strings: TemplateStringsArray, ...values: unknown[]): Result<T>;
  /**
   * A quoted identifier: `sql('my table')` is `"my table"`, embedded `"` doubled (as
   * `quote_ident()`, but always quoted, so the name is taken exactly: case and all).
   * `sql(['schema', 'table'])` is `"schema"."table"`.
   *
   * @throws TypeError for an empty name or one holding U+0000 (nothing is sent to the server)
   */
  (name: string | readonly string[]): SqlFragment;
  /**
   * The column list and VALUES of a bulk insert:
   * `sql\`INSERT INTO t ${sql(rows, 'a', 'b')}\`` is
   * `INSERT INTO t ("a","b") VALUES ($1,$2),($3,$4)`. Without columns, the first row's keys,
   * and every row must have the same keys. `undefined` is sent as NULL.
   *
   * @throws TypeError for no rows, no columns, rows with other keys or a row missing a named
   *   column; RangeError past 65535 parameters (rows × columns): insert in batches
   */
  <R extends object>(rows: readonly R[], ...columns: (keyof R & string)[]): SqlFragment;
  /** One row: `sql(row, ...columns)` is `sql([row], ...columns)`. */
  <R extends object>(row: R extends readonly unknown[] ? never : R, ...columns: (keyof R & string)[]): SqlFragment;
  /**
   * A piece of a statement to interpolate into another: not run on its own. Its values are
   * bound parameters; it may hold other fragments; an empty one (`sql.fragment\`\``) adds
   * nothing, for optional clauses. (`sql\`...\`` itself runs at once, so a piece needs its own tag.)
   */
  fragment(strings: TemplateStringsArray, ...values: unknown[]): SqlFragment;
  /**
   * Runs raw SQL text. Without `params` the text may hold several
   * statements; with `params` it is one statement using `$1`, `$2`, ...
   */
  unsafe<T = Row>(text: string, params?: readonly unknown[]): Result<T>;
  /**
   * Iterates a big result in batches (default 1000 rows) through a cursor, so
   * it is never held in memory whole. Only inside a transaction:
   *
   * ```ts
   * ctx.transaction((tx) => {
   *   for (const rows of tx.sql.cursor`SELECT * FROM big`) handle(rows);
   * });
   * ```
   * `sql.cursor(500)\`...\`` sets the batch size. The cursor is closed when the
   * loop ends, breaks or throws.
   */
  cursor<T = Row>(strings: TemplateStringsArray, ...values: unknown[]): Generator<Result<T>, void, undefined>;
  cursor(batchSize: number): <T = Row>(strings: TemplateStringsArray, ...values: unknown[]) => Generator<Result<T>, void, undefined>;
}

/** A transaction (or a savepoint inside one). */
export interface Transaction {
  /** Runs SQL inside this transaction. */
  readonly sql: Sql;
  /**
   * Runs `fn` inside a savepoint: released when `fn` returns, rolled back
   * (and the error rethrown) when it throws. The outer transaction goes on.
   */
  transaction<T>(fn: (tx: Transaction) => T): T;
}

/** Writes to the server log, prefixed with the worker's name. */
export interface Logger {
  /** DEBUG1 */
  debug(...args: unknown[]): void;
  /** LOG (INFO would not reach the server log with default settings) */
  info(...args: unknown[]): void;
  /** NOTICE */
  notice(...args: unknown[]): void;
  /** WARNING */
  warning(...args: unknown[]): void;
  /** ERROR severity in the log; it does not throw or abort anything */
  error(...args: unknown[]): void;
}

/** Facts about the running worker. */
export interface WorkerInfo {
  readonly name: string;
  /**
   * Which of the worker's `instances` this process is, from 0 to `instances - 1`: split the work
   * by it. 0 for a worker with one instance and for a launched one.
   */
  readonly instance: number;
  readonly pid: number;
  /** The database it is connected to; null for `start: 'postmaster'` workers, which have none. */
  readonly database: string | null;
  /** The role its SQL runs as; null for the bootstrap superuser. */
  readonly role: string | null;
  /** When the postmaster forked this process (Unix ms). */
  readonly startedAt: number;
  /**
   * The memory limits in effect and the ArrayBuffer memory held now. Under an OS limit on the data
   * segment the limits can be lower than configured (the worker fits them into it at start).
   */
  memory(): WorkerMemory;
}

/** See {@link WorkerInfo.memory}. */
export interface WorkerMemory {
  /** The V8 heap limit in effect (MB). */
  readonly heapLimitMb: number;
  /** The Buffer/ArrayBuffer limit in effect (MB); null: none. */
  readonly bufferLimitMb: number | null;
  /** Held in Buffers/ArrayBuffers/typed arrays now (MB). */
  readonly buffersMb: number;
  /** The most held at once since start (MB). */
  readonly buffersPeakMb: number;
  /** Allocations refused because they did not fit. */
  readonly buffersRefused: number;
  /**
   * Held for the rows of the next statement (MB): the column buffers a big result grew are kept
   * so that a loop of big results reuses them, and given back once no statement has needed them
   * for a second or two.
   */
  readonly resultBuffersMb: number;
}

/** How `ctx.launch()` starts a worker. */
export interface LaunchOptions {
  /**
   * The database it connects to, instead of the one it was deployed with. The worker's role must
   * be allowed to connect there (CONNECT privilege, a database that allows connections); the
   * launch fails with a `PgError` otherwise (`3D000` no such database, `55000` connections not
   * allowed, `42501` no CONNECT privilege).
   */
  readonly database?: string;
}

/** A worker started with `ctx.launch()`. */
export interface WorkerHandle {
  readonly name: string;
  readonly pid: number;
  /** Settles with the process's exit code (0: main resolved or stopped; 1: failed) when it exits. */
  readonly exited: Promise<number>;
}

/** Who is calling or notifying: the sender's backend pid, role and database. */
export interface SenderMeta {
  readonly pid: number;
  /** The role current when `call()` or `notify()` ran (not at commit). */
  readonly role: string;
  readonly database: string;
}

/** A `node_worker.call()` in progress: its sender, and a signal for when the caller stops waiting. */
export interface CallMeta extends SenderMeta {
  /**
   * Aborts when the caller no longer waits for the result: its `timeout_ms` passed (reason: a
   * `TimeoutError` DOMException) or its statement was cancelled or ended (an `AbortError`).
   * Pass it on (`fetch(url, { signal })`) or check it, so abandoned work stops.
   */
  readonly signal: AbortSignal;
}

/**
 * A notification sent with `node_worker.notify(worker, payload)`, delivered after its transaction
 * committed. It counts as handled when the `onMessage` handlers returned (or their promises
 * settled) and the `messages()` loops moved on to the next one; until then it stays in the
 * worker's inbox, and a worker process that exits first leaves it to the next one.
 */
export interface Message extends SenderMeta {
  /** The jsonb payload, parsed. */
  readonly payload: unknown;
  /** An earlier process of this worker had it and exited before it was handled: handle it idempotently. */
  readonly redelivered: boolean;
}

/**
 * Why `ctx.sleep()` resolved: its time passed, `node_worker.wake()`, a configuration reload
 * (SIGHUP, `pg_reload_conf()`), or `ctx.signal` aborted.
 */
export type SleepResult = 'timeout' | 'wake' | 'reload' | 'abort';

/**
 * What `ctx.schedule()` does with slots that passed while the worker was not running (stopped,
 * restarting, the server down): `'run-once'` runs the latest of them once, at start; `'skip'`
 * runs none and waits for the next slot.
 */
export type MissedSlots = 'run-once' | 'skip';

/** Options of `ctx.schedule()`. */
export interface ScheduleOptions {
  /**
   * The IANA time zone the cron expression is read in, such as `'Europe/Berlin'` (default
   * `'UTC'`, as pg_cron's default). Across DST changes a fixed time in the gap runs at the first
   * valid time after it and one that occurs twice runs once; `*` and steps run on both.
   */
  timezone?: string;
  /** What to do with slots missed while the worker was down (default `'run-once'`). */
  missed?: MissedSlots;
}

/** What a schedule's function receives about the run. */
export interface ScheduleRun {
  /** The schedule's name. */
  readonly name: string;
  /** The slot this run is for: the instant the expression names (whole seconds). */
  readonly slot: Date;
  /** True for a missed slot run at start, after its time (see {@link MissedSlots}). */
  readonly late: boolean;
  /**
   * False on a hot standby: the run is only logged and remembered by this process, as nothing
   * can be written there; true when it is recorded in `node_worker.schedule_runs`.
   */
  readonly recorded: boolean;
}

/**
 * A synchronous schedule function: it runs inside the transaction that claims its slot (in a
 * savepoint of its own), so its SQL effects (through `tx.sql`, or `ctx.sql`, which joins it) and
 * the run's record commit together: exactly once per slot for its SQL effects, also when the
 * process dies mid-run (nothing commits, and the slot can run again). A throw rolls its effects
 * back and records the run as `error`. It must not return a promise (that is refused with a
 * `TypeError`, recorded as the run's error): declare the function `async` for work that awaits.
 */
export type SyncScheduleFn = (run: ScheduleRun, tx: Transaction) => unknown;

/**
 * An async schedule function (declared `async`): it runs after its slot's claim committed, so a
 * process that dies mid-run leaves the run `interrupted` and the slot is not run again (at most
 * once); its end is recorded when the promise settles.
 */
export type AsyncScheduleFn = (run: ScheduleRun) => Promise<unknown>;

/** A relation: its name (schema-qualified, or found through `search_path`) or its oid. */
export type RelationRef = string | number;

/** A relation fork. In snapshots forks are numbers: 0 main, 1 fsm, 2 vm, 3 init. */
export type ForkName = 'main' | 'fsm' | 'vm' | 'init';

/**
 * Every valid buffer of shared_buffers at one moment, column by column: entry `i` of each
 * array describes one buffer. Each buffer was read under its header lock (as pg_buffercache
 * does), one at a time: the snapshot as a whole is not atomic.
 */
export interface BufferSnapshot {
  /** Valid buffers (the length of every array). */
  readonly count: number;
  /** All buffers (shared_buffers / block size). */
  readonly total: number;
  /** Database oid; 0 for shared catalogs. */
  readonly database: Uint32Array;
  /** Tablespace oid (1663 pg_default, 1664 pg_global). */
  readonly tablespace: Uint32Array;
  /** The relation's file node (`pg_relation_filenode()`, `pg_filenode_relation()` map it back). */
  readonly relfilenode: Uint32Array;
  /** 0 main, 1 fsm, 2 vm, 3 init. */
  readonly fork: Uint8Array;
  readonly block: Uint32Array;
  /** 1 when the buffer has changes not yet written. */
  readonly dirty: Uint8Array;
  /** The clock sweep's usage count (0-5). */
  readonly usage: Uint8Array;
}

/** A summary of shared_buffers, like PostgreSQL 16's pg_buffercache_summary(). */
export interface BufferStats {
  readonly total: number;
  readonly used: number;
  readonly unused: number;
  readonly dirty: number;
  /** Buffers pinned by any backend at that moment. */
  readonly pinned: number;
  /** Average usage count of the used buffers (0 when none). */
  readonly usageAverage: number;
}

/** Options of ctx.buffers.prewarm(). */
export interface PrewarmOptions {
  /** Default `'main'`. */
  fork?: ForkName;
  /** First block to read (default 0). */
  first?: number;
  /** Last block to read, inclusive (default: the fork's last block). */
  last?: number;
}

/**
 * The buffer cache (shared_buffers). Each call needs the privileges of the PostgreSQL function
 * it matches, checked against the worker's role (`PgError 42501` otherwise). Relation errors are
 * `PgError`s: an unknown name `42P01`, a relation without storage (a view) `42809`, a bad fork
 * name or a block past the end `22023`.
 */
export interface Buffers {
  /** Every valid buffer, as typed arrays. Needs the privileges of `pg_monitor` (as pg_buffercache). */
  snapshot(): BufferSnapshot;
  /** Used / dirty / pinned buffers and the average usage count. Needs `pg_monitor`. */
  stats(): BufferStats;
  /** The fork's size in blocks, and how many of them are in shared_buffers. Needs `pg_monitor`. */
  residency(relation: RelationRef, fork?: ForkName): { blocks: number; cached: number };
  /**
   * Reads blocks into shared_buffers through the buffer manager (pg_prewarm's `'buffer'` mode),
   * servicing interrupts between blocks; returns how many were read. Needs SELECT on the
   * relation (as pg_prewarm).
   */
  prewarm(relation: RelationRef, options?: PrewarmOptions): number;
  /** A copy of one page, taken under a share lock (pageinspect's get_raw_page). Superuser only. */
  readPage(relation: RelationRef, block: number, fork?: ForkName): Uint8Array;
}

/**
 * A job claimed from a queue (see {@link WorkerContext.jobs}).
 *
 * @typeParam P - the payload's type, as the handler expects it (not checked at run time)
 */
export interface Job<P = unknown> {
  /** The job's id (`node_worker.jobs.id`, what `node_worker.retry(id)` and `cancel(id)` take). */
  readonly id: bigint;
  /** The queue it was enqueued into. */
  readonly queue: string;
  /** The jsonb payload, parsed (null when enqueued with none). */
  readonly payload: P;
  /** Which attempt this run is: 1 the first time, up to the job's `max_attempts`. */
  readonly attempts: number;
  /** When it became runnable (its `run_at`, moved on by each retry's backoff). */
  readonly runAt: Date;
  /** Its `job_key`, or null. */
  readonly key: string | null;
}

/**
 * A synchronous job handler: it runs inside the transaction that claimed the job (in a savepoint
 * of its own), so its SQL effects (through `tx.sql`, or `ctx.sql`, which joins it) and the job's
 * completion commit together, exactly once. A throw rolls the job's effects back and schedules a
 * retry. It must not return a promise (that is refused with a `TypeError` and retried): declare
 * the handler `async` for work that awaits.
 */
export type SyncJobHandler<P = unknown> = (job: Job<P>, tx: Transaction) => unknown;

/**
 * An async job handler (declared `async`): it runs after its claim committed, under a lease the
 * worker renews while it runs; the job is done when the promise resolves and retried when it
 * rejects. At least once: a process that dies (or stalls past the lease) leaves the job to run
 * again, so make its effects idempotent.
 */
export type AsyncJobHandler<P = unknown> = (job: Job<P>) => Promise<unknown>;

/** Either kind: the handler is async when declared with `async`. */
export type JobHandler<P = unknown> = SyncJobHandler<P> | AsyncJobHandler<P>;

/** How `ctx.jobs()` consumes a queue. */
export interface JobsOptions {
  /** Async handlers: how many run at once (default 1, at most 1000). A synchronous handler runs one job at a time. */
  readonly concurrency?: number;
  /**
   * How many jobs one claim takes (1–1000). Synchronous handlers: the jobs committed by one
   * transaction, each in a savepoint (default 10; above 64 jobs that write, PostgreSQL's
   * per-transaction cache of subtransactions overflows, which slows other sessions' snapshots).
   * Async: the jobs claimed per statement (default `concurrency`).
   */
  readonly batch?: number;
  /** Async handlers: the lease in ms (default 30 000, at least 100), renewed every third of it while the handler runs. */
  readonly leaseMs?: number;
  /** The delay before the first retry in ms (default 1000), doubled for each attempt made, at most 1 hour. */
  readonly backoffMs?: number;
}

/** How `ctx.enqueue()` queues a job (the arguments of `node_worker.enqueue()`). */
export interface EnqueueOptions {
  /** Not before this time (default: now, i.e. the transaction's start). */
  readonly runAt?: Date;
  /** A key: a pending job of the queue with the same key is replaced (payload, runAt, priority, maxAttempts; attempts start again). */
  readonly key?: string | null;
  /** Runs before it is marked failed (default 25, at least 1). */
  readonly maxAttempts?: number;
  /** Higher runs first among due jobs (default 0). */
  readonly priority?: number;
}

/** What `main` receives. */
export interface WorkerContext {
  readonly worker: WorkerInfo;
  /** The JSON value given to `node_worker.launch(name, args)` or `ctx.launch(name, args)`; null for static workers. */
  readonly args: unknown;
  /**
   * Starts a dynamic worker from a deployed bundle (as `node_worker.launch()` does) and returns
   * once it runs. `args` must be JSON-serialisable (at most 8 kB as JSON); `options.database`
   * picks the database it connects to (default: the one it was deployed with).
   */
  launch(name: string, args?: unknown, options?: LaunchOptions): WorkerHandle;
  /** True on a hot standby (recovery in progress): SQL is read-only there. */
  isInRecovery(): boolean;
  /** SQL in its own transaction per statement (or joining an open `ctx.transaction`). */
  readonly sql: Sql;
  /**
   * Runs `fn` in one transaction: committed when `fn` returns, rolled back
   * when it throws. `fn` must be synchronous: a transaction never spans an
   * `await`, and a callback returning a promise is refused.
   */
  transaction<T>(fn: (tx: Transaction) => T): T;
  /**
   * Queues a job (`node_worker.enqueue()`): inside `ctx.transaction` it joins that transaction,
   * so the job exists only if it commits; outside, it commits at once. The commit wakes the
   * queue's worker. `payload` must be JSON-serialisable. Returns the job's id (of the replaced
   * job when `key` matched a pending one).
   *
   * @throws PgError 22023 for an invalid queue name or `maxAttempts` below 1, 42501 when the
   *   worker's role may not use that queue's worker (see `callers`)
   */
  enqueue(queue: string, payload: unknown, options?: EnqueueOptions): bigint;
  /**
   * Consumes a queue of this worker (named `<worker name>` or `<worker name>.<topic>`): runs
   * `handler` for each job as it becomes due, woken by the enqueuer's commit (no polling) and at
   * the next `run_at`. A synchronous handler `(job, tx) => ...` runs in the claiming transaction
   * (exactly-once SQL effects); an `async` handler runs after the claim committed, under a
   * lease (at least once). A throw (or rejection) retries the job after a backoff, up to its
   * `max_attempts`, then marks it failed with the error's text. Returns an unsubscribe function
   * (handlers running finish; nothing new is claimed).
   *
   * @throws PgError 22023 for an invalid queue name, 42501 for another worker's queue; TypeError for bad options
   */
  jobs<P = unknown>(queue: string, handler: SyncJobHandler<P>, options?: JobsOptions): () => void;
  jobs<P = unknown>(queue: string, handler: AsyncJobHandler<P>, options?: JobsOptions): () => void;
  /** Aborted when the worker is asked to stop (SIGTERM: server stop, pg_terminate_backend). */
  readonly signal: AbortSignal;
  /**
   * Resolves after `ms` with `'timeout'`, or early: with `'wake'` after `node_worker.wake(name)`,
   * with `'reload'` after a configuration reload (SIGHUP, `pg_reload_conf()`; the `onReload`
   * handlers have run by then), with `'abort'` when `signal` aborts. As a C worker's latch, a
   * reload ends the sleep so that a loop applies new settings at once. A wake or reload that
   * comes while no sleep is pending is kept, as a latch stays set: the next sleep resolves with
   * it at once.
   */
  sleep(ms: number): Promise<SleepResult>;
  /**
   * Serves `node_worker.call(name, payload, timeout_ms)`: the handler's result (or resolved
   * value) goes back to the caller as jsonb. Calls are served concurrently. A thrown error becomes
   * an ERROR in the caller with its message, and with its `code` as SQLSTATE when that is a valid
   * one (else `P0001`). Returns an unsubscribe function.
   */
  onCall(handler: (payload: unknown, meta: CallMeta) => unknown): () => void;
  /** Runs `fn` for each `node_worker.notify(name, payload)` once its transaction committed, in commit order. */
  onMessage(fn: (message: Message) => unknown): () => void;
  /** The same notifications as an async iterator (ends when `signal` aborts). */
  messages(): AsyncIterableIterator<Message>;
  /**
   * Runs `fn` at the slots of a cron schedule, once per slot for this worker (across its
   * restarts and its `instances`), each run recorded in `node_worker.schedule_runs` (slot, start,
   * end, `ok`/`error` and the error's text). `cron` is a standard 5-field expression (minute hour
   * day-of-month month day-of-week; lists, ranges, steps, names such as `MON` and `JAN`, or
   * `@daily`-style nicknames), read in `options.timezone` (default UTC), or pg_cron's
   * `'N seconds'` (1–59: the instants whose Unix time is a multiple of N seconds).
   *
   * As with {@link WorkerContext.jobs}, what "once" means depends on the function. A synchronous
   * `(run, tx) => ...` runs inside the transaction that claims the slot: its SQL effects and the
   * run's record commit together, exactly once (a crash mid-run commits nothing and the slot can
   * run again; a throw rolls the effects back and records `error`). An `async` function runs after
   * the claim committed in a transaction of its own: a run cut short (a crash, a stop) is recorded
   * `interrupted` and not run again, at most once. One schedule runs one slot at a time, and a run
   * that lasts past later slots is followed by one run for the latest of them. Slots missed while
   * the worker was down: see {@link ScheduleOptions.missed}. On a hot standby
   * (`start: 'consistent'`) schedules run too, recorded only in the log. Needs the extension (0.7
   * or later; 0.8 for the worker identity from its slot) in the worker's database.
   *
   * ```ts
   * ctx.schedule('nightly-cleanup', '0 3 * * *', (run, tx) => {
   *   tx.sql`DELETE FROM app.sessions WHERE expires_at < now()`;
   * }, { timezone: 'Europe/Berlin' });
   * ```
   *
   * @returns an unsubscribe function: no further slots run (a run in progress finishes)
   * @throws RangeError (its `field` names the part: `'minute'`, `'hour'`, `'day-of-month'`,
   *   `'month'`, `'day-of-week'`, `'seconds'`, `'expression'` or `'timezone'`) for an invalid
   *   expression or time zone; TypeError for a bad name, function or option; Error for a name
   *   this worker already schedules, or a database without the extension
   */
  schedule(name: string, cron: string, fn: SyncScheduleFn, options?: ScheduleOptions): () => void;
  schedule(name: string, cron: string, fn: AsyncScheduleFn, options?: ScheduleOptions): () => void;
  /** Runs `fn` after the server reloaded its configuration (SIGHUP). Returns an unsubscribe function. */
  onReload(fn: () => void): () => void;
  /** The current value of a setting (including custom ones such as `myworker.naptime`), or null. */
  setting(name: string): string | null;
  readonly log: Logger;
  /** The buffer cache: snapshot, stats, residency, prewarm, readPage. */
  readonly buffers: Buffers;
  /**
   * A named region of shared memory, created zero-filled on first use and the same memory in
   * every worker (and for `node_worker.shared_read()`), as a `SharedArrayBuffer`: use
   * `Int32Array`/`BigInt64Array` with `Atomics.add/compareExchange/load/store`, which are atomic
   * across processes. `bytes` must match the existing region's size. Regions live until the
   * server stops (they survive worker restarts) and come out of `node_worker.shared_memory_mb`.
   * `Atomics.wait/notify` do not work across processes: use `node_worker.wake()`/messages.
   */
  shared(name: string, bytes: number): SharedArrayBuffer;
}

/** When the postmaster starts the worker. */
export type StartTime = 'postmaster' | 'consistent' | 'recovery-finished';

/** A worker, as passed to `defineWorker`. */
export interface WorkerDefinition {
  /** Unique name: letters, digits, `_` and `-`, starting with a letter or `_`, at most 63 characters. */
  name: string;
  /** The database it connects to (default `postgres`). */
  database?: string;
  /** The role its SQL runs as (default: the bootstrap superuser). */
  role?: string;
  /** Seconds before a restart after a crash or a failed `main`, or `'never'` (default 10). */
  restart?: number | 'never';
  /**
   * `false`: the worker does not start with the server (nor after deploy); it runs only when
   * launched, with `node_worker.launch()` or `ctx.launch()`, once per launch. Until then
   * `node_worker.workers` shows it as `deployed`. Default `true`.
   */
  autostart?: boolean;
  /**
   * How many processes of this worker start with the server (default 1, at most 1024), each
   * knowing its number as `ctx.worker.instance`; `node_worker.workers` shows one row each. They
   * need as many `node_worker.max_workers` slots and `max_worker_processes`; a worker whose
   * instances do not all fit is not started (a LOG line says why) and the others still are.
   * More than 1 needs `autostart` (a launch starts one process).
   */
  instances?: number;
  /**
   * Default `'recovery-finished'`; `'consistent'` also runs on a hot standby; `'postmaster'`
   * starts with the server, before recovery, with no database connection (no SQL).
   */
  start?: StartTime;
  /**
   * Roles (besides superusers and `node_worker_admin`) whose members may `call`, `notify` and
   * `wake` this worker from SQL.
   */
  callers?: string[];
  /**
   * The schemas the worker's unqualified names resolve through (its `search_path`), default none
   * but `pg_catalog`. A superuser worker that resolved names through a schema a database owner
   * can create in (`public`, or one named after the worker's role) would run that owner's tables
   * and functions with superuser rights: declare only schemas that roles you trust own, or
   * qualify names (`public.jobs`). `ALTER DATABASE/ROLE ... SET` does not apply to workers.
   */
  searchPath?: string[];
  /**
   * Most `node_worker.call()`s this worker handles at once (default 1000); past it a call fails
   * at once with SQLSTATE 53400. Calls count until their handler settles, also after their
   * caller stopped waiting (see `meta.signal`).
   */
  maxPendingCalls?: number;
  /** The V8 heap limit of this worker in MB (default: `node_worker.heap_limit_mb`). */
  heapLimitMb?: number;
  /**
   * The most memory this worker may hold in ArrayBuffers, Buffers and typed arrays, in MB
   * (default: `node_worker.buffer_limit_mb`). They live outside the V8 heap, so `heapLimitMb`
   * does not bound them; past this limit an allocation throws
   * `RangeError: Array buffer allocation failed`.
   */
  bufferLimitMb?: number;
  /**
   * The most memory V8's young generation (where new objects are made) may take, in MB. Without
   * it V8 sizes it: it starts small and grows, step by step, as objects survive, up to tens of
   * MB, and does not give the memory back. With it the worker's memory stays flat over a long
   * run (a queue drained for days, say), at a cost to code that makes many short-lived objects:
   * measured, a cap of 6 MB made fetching large results 22–30% slower on Node 18. It also makes
   * the worker start without Node's start-up snapshot (slower to start on Node 20 and later).
   */
  youngGenerationMb?: number;
  /** The worker's body. Resolving ends the worker for good (exit 0); throwing restarts it. */
  main(ctx: WorkerContext): Promise<void> | void;
}
