/**
 * The SQL engine behind ctx.sql and ctx.transaction: the plan cache, executing statements and
 * cursors through the native bridge, and the transaction/savepoint discipline. Parameters are
 * serialised by params.ts, results made into rows by rows.ts, statements with fragments
 * (identifiers, bulk rows, sql.fragment) composed by fragments.ts.
 */
import type { Result, Row, Sql, SqlFragment, Transaction } from '../types';
import { FragmentBuilder, isTemplateStrings } from './fragments';
import type { NativeBridge, NativeResult } from './native';
import { H_KEPT, H_RETYPED, RETYPED_HELD } from './native';
import { serializeParams } from './params';
import { decodeResult, RowMakerCache, Shape, ShapeHolder } from './rows';

const PLAN_CACHE_SIZE = 256;
/**
 * After start-up (bundle loading, first statements) the worker keeps garbage and a grown young
 * generation; once it has settled, one full GC + malloc_trim gives ~3.7 MB per worker back
 * (bench: idle PSS with 4 workers).
 */
const SETTLE_MS = 1000;
const DEFAULT_CURSOR_BATCH = 1000;
/**
 * The bridge keeps the column buffers a big result grew for the next statement (a loop of
 * 1M-row fetches then reuses ~40 MB instead of having the kernel fault it in again each time);
 * they are freed once a whole KEEP_BUFFERS_MS went by without a statement that needed them.
 */
const KEEP_BUFFERS_MS = 1000;

/** The statement text of a tagged template, with $1, $2, ... for the values. */
export function templateText(strings: TemplateStringsArray): string {
  if (!isTemplateStrings(strings))
    throw new TypeError('sql must be used as a tagged template: sql`SELECT ${value}`; use sql.unsafe(text) for raw text');
  let text = strings[0];
  for (let i = 1; i < strings.length; i++) text += '$' + i + strings[i];
  return text;
}

// ------------------------------------------------------------ plan cache

interface PlanEntry extends ShapeHolder {
  readonly id: number;
  readonly text: string;
  /** the server-inferred parameter types; updated when DDL made the server infer others */
  paramTypes: number[];
  elemTypes: number[];
  /** the shape of the plan's last result (its names and row makers), or null */
  shape: Shape | null;
  /** LRU clock */
  used: number;
  /** evicted: the native plan is gone */
  freed: boolean;
}

type Raw = NativeResult;

/** Executes statements for one worker. */
export class SqlEngine {
  /** makes and recognises this worker's fragments */
  private readonly fragments = new FragmentBuilder();
  /** by SQL text (a statement composed from fragments is cached by its text alone) */
  private readonly plans = new Map<string, PlanEntry>();
  /** by the TemplateStringsArray of a call site (the same object at every call of it) */
  private readonly byStrings = new WeakMap<TemplateStringsArray, PlanEntry>();
  /** row makers by column kinds and names */
  private readonly rowMakers = new RowMakerCache();
  private clock = 0;
  private readonly header: Float64Array;
  /** the timer that frees the bridge's big result buffers, while it holds some */
  private keepTimer: ReturnType<typeof setTimeout> | null = null;
  /** a result needed big buffers since the timer last fired */
  private keptAgain = false;

  /**
   * @param onShutdownCancel called when a statement fails after SIGTERM came (its cancel, most
   *   often), so ctx.signal is already aborted when the caller sees the error: code that
   *   decides by ctx.signal whether its work was cut short by the shutdown must not see the
   *   error first (the 'sigterm' event reaches JS only on a later turn of the loop).
   */
  constructor(
    private readonly native: NativeBridge,
    private readonly onShutdownCancel: () => void = () => undefined,
  ) {
    this.header = native.resultHeader();
    setTimeout(() => native.releaseMemory(true), SETTLE_MS);
  }

  /** A statement that fails after SIGTERM came aborts ctx.signal before the error surfaces. */
  private failed(err: unknown): unknown {
    if (this.native.shutdownRequested()) this.onShutdownCancel();
    // a big result that failed half-way may have grown the buffers too
    this.buffersKept();
    return err;
  }

  /** A result needed big buffers, which the bridge keeps: free them once a KEEP_BUFFERS_MS passes without another. */
  private buffersKept(): void {
    this.keptAgain = true;
    if (this.keepTimer !== null) return;
    const tick = () => {
      if (this.keptAgain) {
        this.keptAgain = false;
        this.keepTimer = setTimeout(tick, KEEP_BUFFERS_MS);
        this.keepTimer.unref();
        return;
      }
      this.keepTimer = null;
      this.native.dropResultBuffers();
    };
    this.keptAgain = false;
    this.keepTimer = setTimeout(tick, KEEP_BUFFERS_MS);
    this.keepTimer.unref();
  }

  /** Runs one call into the bridge that may raise a PostgreSQL error, through failed(). */
  private guarded<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw this.failed(err);
    }
  }

  private entryFor(text: string): PlanEntry {
    let entry = this.plans.get(text);
    if (entry === undefined) {
      const plan = this.guarded(() => this.native.prepare(text));
      entry = { id: plan.id, text, paramTypes: plan.paramTypes, elemTypes: plan.elemTypes, shape: null, used: 0, freed: false };
      this.plans.set(text, entry);
      if (this.plans.size > PLAN_CACHE_SIZE) this.evict(entry);
    }
    entry.used = ++this.clock;
    return entry;
  }

  /** Frees the least recently used plan (never `keep`). */
  private evict(keep: PlanEntry): void {
    let oldest: PlanEntry | null = null;
    for (const e of this.plans.values()) if (e !== keep && (oldest === null || e.used < oldest.used)) oldest = e;
    if (oldest === null) return;
    this.plans.delete(oldest.text);
    oldest.freed = true;
    this.native.freePlan(oldest.id);
  }

  private templateEntry(strings: TemplateStringsArray): PlanEntry {
    let entry = this.byStrings.get(strings);
    if (entry !== undefined && !entry.freed) {
      entry.used = ++this.clock;
      return entry;
    }
    entry = this.entryFor(templateText(strings));
    this.byStrings.set(strings, entry);
    return entry;
  }

  /** Builds the Result from what the bridge returned and the header it wrote. */
  private toResult<T>(raw: Raw, entry: PlanEntry | null): Result<T> {
    if (this.header[H_KEPT] !== 0) this.buffersKept();
    return decodeResult<T>(this.header, raw, entry, this.rowMakers);
  }

  /** params serialised by the plan's parameter types; null when there are none */
  private bind(entry: PlanEntry, params: readonly unknown[]): unknown[] | null {
    return serializeParams(params, entry.paramTypes, entry.elemTypes);
  }

  private executeEntry<T>(entry: PlanEntry, params: readonly unknown[]): Result<T> {
    const known = entry.shape === null ? 0 : entry.shape.id;
    for (;;) {
      const sent = this.bind(entry, params);
      let raw: Raw;
      try {
        raw = sent === null ? this.native.execute(entry.id, known) : this.native.execute(entry.id, known, ...sent);
      } catch (err) {
        // DDL may have landed while the statement ran (after the bridge checked the
        // types): the next call serialises by the types the server infers now
        if (sent !== null) this.syncTypes(entry);
        throw this.failed(err);
      }
      const retyped = this.header[H_RETYPED];
      if (retyped === 0) return this.toResult<T>(raw, entry);
      // DDL made the server infer other parameter types: serialise by those from now on
      this.syncTypes(entry);
      // held: nothing ran, the values were made for the old types; send them again
      if (retyped !== RETYPED_HELD) return this.toResult<T>(raw, entry);
    }
  }

  private syncTypes(entry: PlanEntry): void {
    const now = entry.freed ? undefined : this.native.planTypes(entry.id);
    if (now === undefined) return;
    entry.paramTypes = now.paramTypes;
    entry.elemTypes = now.elemTypes;
  }

  /** ctx.sql`...` */
  runTemplate<T>(strings: TemplateStringsArray, values: readonly unknown[]): Result<T> {
    const composed = this.fragments.compose(strings, values);
    if (composed === null) return this.executeEntry<T>(this.templateEntry(strings), values);
    return this.executeEntry<T>(this.entryFor(composed.text), composed.values);
  }

  /** The plan and parameters of a template (with fragments: of the statement they compose). */
  private templatePlan(strings: TemplateStringsArray, values: readonly unknown[]): [PlanEntry, readonly unknown[]] {
    const composed = this.fragments.compose(strings, values);
    if (composed === null) return [this.templateEntry(strings), values];
    return [this.entryFor(composed.text), composed.values];
  }

  /** ctx.sql.unsafe(text, params?) */
  run<T>(text: string, params: readonly unknown[] | undefined): Result<T> {
    if (typeof text !== 'string') throw new TypeError('SQL text must be a string');
    if (params === undefined) {
      let raw: Raw;
      try {
        raw = this.native.executeText(text);
      } catch (err) {
        throw this.failed(err);
      }
      return this.toResult<T>(raw, null);
    }
    return this.executeEntry<T>(this.entryFor(text), params);
  }

  /**
   * Batches of rows from a cursor, fetched as the loop asks for them, so a
   * big result never sits in memory whole (SPI would hold all of it and JS
   * would build it again). Inside a transaction only; closed when the loop
   * ends, breaks or throws.
   */
  *cursor<T>(entry: PlanEntry, params: readonly unknown[], batchSize: number): Generator<Result<T>, void, undefined> {
    let name = '';
    while (name === '') {
      const sent = this.bind(entry, params);
      try {
        name = sent === null ? this.native.cursorOpen(entry.id) : this.native.cursorOpen(entry.id, ...sent);
      } catch (err) {
        throw this.failed(err);
      }
      // held for new parameter types (DDL): serialise by them, open again
      if (name === '') this.syncTypes(entry);
    }
    try {
      for (;;) {
        let raw: Raw;
        try {
          raw = this.native.cursorFetch(name, batchSize, entry.freed ? -1 : entry.id, entry.shape === null || entry.freed ? 0 : entry.shape.id);
        } catch (err) {
          throw this.failed(err);
        }
        const rows = this.toResult<T>(raw, entry.freed ? null : entry);
        if (rows.length === 0) return;
        yield rows;
        if (rows.length < batchSize) return;
      }
    } finally {
      this.native.cursorClose(name);
    }
  }

  /** A tagged-template `sql` function, usable while `isActive()` holds. */
  makeSql(isActive: () => boolean): Sql {
    const inactive = () => new Error('this transaction has ended; use the sql of the transaction that is running');
    const fragments = this.fragments;
    // a TemplateStringsArray (it has `raw`) runs a statement; anything else is a helper call
    const sql = (<T = Row>(first: TemplateStringsArray | unknown, ...values: unknown[]): Result<T> | SqlFragment => {
      if (!isTemplateStrings(first)) return fragments.helper(first, values);
      if (!isActive()) throw inactive();
      return this.runTemplate<T>(first, values);
    }) as Sql;
    sql.fragment = (strings: TemplateStringsArray, ...values: unknown[]): SqlFragment => fragments.fragment(strings, values);
    sql.unsafe = <T = Row>(text: string, params?: readonly unknown[]): Result<T> => {
      if (!isActive()) throw inactive();
      return this.run<T>(text, params);
    };
    const cursorOf = (batchSize: number) => <T = Row>(strings: TemplateStringsArray, ...values: unknown[]) => {
      if (!isActive()) throw inactive();
      const [entry, params] = this.templatePlan(strings, values);
      return this.cursor<T>(entry, params, batchSize);
    };
    sql.cursor = ((first: number | TemplateStringsArray, ...rest: unknown[]) => {
      if (typeof first === 'number') {
        if (!Number.isInteger(first) || first < 1) throw new TypeError('cursor(batchSize): batchSize must be a positive integer');
        return cursorOf(first);
      }
      return cursorOf(DEFAULT_CURSOR_BATCH)(first, ...rest);
    }) as Sql['cursor'];
    return sql;
  }

  /** Runs fn in a transaction (depth 0) or a savepoint (inside one). */
  transaction<T>(fn: (tx: Transaction) => T): T {
    if (typeof fn !== 'function') throw new TypeError('transaction() expects a function');
    if (fn.constructor?.name === 'AsyncFunction')
      throw new TypeError('a transaction callback must be synchronous: a transaction never spans an await (the callback is an async function)');
    this.guarded(() => this.native.begin());
    let active = true;
    const tx: Transaction = {
      sql: this.makeSql(() => active),
      transaction: <U>(inner: (t: Transaction) => U): U => {
        if (!active) throw new Error('this transaction has ended');
        return this.transaction(inner);
      },
    };
    let result: T;
    try {
      result = fn(tx);
    } catch (err) {
      active = false;
      this.native.rollback();
      throw err;
    }
    active = false;
    if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
      this.native.rollback();
      // the promise may still reject later; that is not this transaction's business any more
      (result as unknown as Promise<unknown>).then(undefined, () => undefined);
      throw new TypeError('a transaction callback returned a promise; it was rolled back. A transaction never spans an await: do the async work before or after ctx.transaction()');
    }
    this.guarded(() => this.native.commit());
    return result;
  }
}
