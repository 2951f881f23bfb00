/**
 * ctx.sql and ctx.transaction on top of the native bridge: the plan cache,
 * parameter serialisation by the server-inferred parameter types, row
 * objects, and the transaction/savepoint discipline.
 */
import type { Result, Row, Sql, Transaction } from '../types';
import type { NativeBridge, NativePlan, NativeResult } from './native';

const PLAN_CACHE_SIZE = 256;
const DEFAULT_CURSOR_BATCH = 1000;

/** The statement text of a tagged template, with $1, $2, ... for the values. */
function templateText(strings: TemplateStringsArray): string {
  if (!Array.isArray(strings) || !('raw' in strings))
    throw new TypeError('sql must be used as a tagged template: sql`SELECT ${value}`; use sql.unsafe(text) for raw text');
  let text = strings[0];
  for (let i = 1; i < strings.length; i++) text += '$' + i + strings[i];
  return text;
}

// type OIDs the serialiser cares about
const BOOL = 16, BYTEA = 17, JSON_OID = 114, JSONB = 3802, DATE = 1082;
// numbers go to these types as binary; to any other type as JS's own shortest text
const NUMERIC_BINARY = new Set([20, 21, 23, 700, 701]);

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** A Date as a PostgreSQL date (its UTC calendar day). */
function dateText(d: Date): string {
  const y = d.getUTCFullYear();
  const year = y < 1 ? `${pad(1 - y, 4)}-BC` : pad(y, 4);
  const base = `${pad(Math.abs(y) < 1 ? 1 - y : y, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  return y < 1 ? `${base} BC` : (void year, base);
}

function hex(bytes: Uint8Array): string {
  return '\\x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function scalarText(v: unknown, type: number): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new TypeError('an invalid Date cannot be sent to PostgreSQL');
    return type === DATE ? dateText(v) : v.toISOString();
  }
  if (v instanceof Uint8Array) return hex(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function arrayLiteral(items: readonly unknown[], elemType: number): string {
  const parts = items.map((item) => {
    if (Array.isArray(item)) return arrayLiteral(item, elemType);
    const text = scalarText(item, elemType);
    if (text === null) return 'NULL';
    return '"' + text.replace(/[\\"]/g, '\\$&') + '"';
  });
  return '{' + parts.join(',') + '}';
}

/**
 * Turns a JS value into what the bridge accepts for a parameter of the
 * given type: null, boolean, number, bigint, string or Uint8Array.
 */
export function serializeParam(v: unknown, type: number, elemType: number): unknown {
  if (v === null || v === undefined) return null;
  if (elemType !== 0 && Array.isArray(v)) return arrayLiteral(v, elemType);
  if (type === JSON_OID || type === JSONB) {
    if (typeof v === 'string') return v;
    const text = JSON.stringify(v);
    if (text === undefined) throw new TypeError(`a ${typeof v} cannot be sent as JSON`);
    return text;
  }
  switch (typeof v) {
    case 'number':
      return NUMERIC_BINARY.has(type) ? v : String(v);
    case 'boolean':
    case 'bigint':
    case 'string':
      return v;
    case 'function':
    case 'symbol':
      throw new TypeError(`a ${typeof v} cannot be sent to PostgreSQL`);
  }
  if (v instanceof Uint8Array) return type === BYTEA ? v : hex(v);
  if (v instanceof Date) return scalarText(v, type);
  if (type === BOOL) return Boolean(v);
  return JSON.stringify(v);
}

type RowMaker = (values: unknown[], offset: number) => Row;

function makeRowMaker(fields: string[]): RowMaker {
  // An object literal per row gives every row the same hidden class.
  const props = fields.map((f, i) => `${JSON.stringify(f)}: v[o + ${i}]`).join(', ');
  return new Function('v', 'o', `return { ${props} };`) as RowMaker;
}

/** Executes statements for one worker. */
export class SqlEngine {
  private readonly plans = new Map<string, NativePlan>();
  private readonly rowMakers = new Map<string, RowMaker>();

  /**
   * @param onShutdownCancel called when a statement was cancelled because the
   *   worker is shutting down (SIGTERM), so ctx.signal is already aborted when
   *   the caller sees the error.
   */
  constructor(
    private readonly native: NativeBridge,
    private readonly onShutdownCancel: () => void = () => undefined,
  ) {}

  private execute(planId: number, text: string, params: unknown[]): NativeResult {
    return this.guarded(() => this.native.execute(planId, text, params));
  }

  /** Runs a bridge call; a statement cancelled by shutdown aborts ctx.signal before the error surfaces. */
  private guarded<R>(call: () => R): R {
    try {
      return call();
    } catch (err) {
      if ((err as { code?: string }).code === '57014' && this.native.shutdownRequested()) {
        (err as Error).message = 'canceling statement because the worker is shutting down';
        this.onShutdownCancel();
      }
      throw err;
    }
  }

  private plan(text: string): NativePlan {
    let plan = this.plans.get(text);
    if (plan) {
      // keep recently used plans at the end (LRU)
      this.plans.delete(text);
      this.plans.set(text, plan);
      return plan;
    }
    plan = this.native.prepare(text);
    this.plans.set(text, plan);
    if (this.plans.size > PLAN_CACHE_SIZE) {
      const [oldest, old] = this.plans.entries().next().value as [string, NativePlan];
      this.plans.delete(oldest);
      this.native.freePlan(old.id);
    }
    return plan;
  }

  private toResult<T>(raw: NativeResult): Result<T> {
    const [command, count, fields, values] = raw;
    const ncols = fields.length;
    const nrows = ncols === 0 ? 0 : values.length / ncols;
    const rows = new Array(nrows) as unknown[] & { count: number; command: string; columns: readonly string[] };
    if (nrows > 0) {
      const key = fields.join('\u0000');
      let make = this.rowMakers.get(key);
      if (!make) {
        make = makeRowMaker(fields);
        if (this.rowMakers.size > 1024) this.rowMakers.clear();
        this.rowMakers.set(key, make);
      }
      for (let r = 0, o = 0; r < nrows; r++, o += ncols) rows[r] = make(values, o);
    }
    // plain assignments in a fixed order (as postgres.js does): one hidden class, no descriptor work
    rows.count = count;
    rows.command = command;
    rows.columns = fields;
    return rows as unknown as Result<T>;
  }

  /** Prepares (or finds) the plan for text and serialises params by its parameter types. */
  private bind(text: string, params: readonly unknown[]): { plan: NativePlan; sent: unknown[] } {
    const plan = this.plan(text);
    if (params.length !== plan.paramTypes.length)
      throw new TypeError(`the statement takes ${plan.paramTypes.length} parameters but ${params.length} were given`);
    return { plan, sent: params.map((v, i) => serializeParam(v, plan.paramTypes[i], plan.elemTypes[i])) };
  }

  run<T>(text: string, params: readonly unknown[] | undefined): Result<T> {
    if (typeof text !== 'string') throw new TypeError('SQL text must be a string');
    if (params === undefined) return this.toResult<T>(this.execute(-1, text, []));
    const { plan, sent } = this.bind(text, params);
    return this.toResult<T>(this.execute(plan.id, text, sent));
  }

  /**
   * Batches of rows from a cursor, fetched as the loop asks for them, so a
   * big result never sits in memory whole (SPI would hold all of it and JS
   * would build it again). Inside a transaction only; closed when the loop
   * ends, breaks or throws.
   */
  *cursor<T>(text: string, params: readonly unknown[], batchSize: number): Generator<Result<T>, void, undefined> {
    const { plan, sent } = this.bind(text, params);
    const name = this.guarded(() => this.native.cursorOpen(plan.id, text, sent));
    try {
      for (;;) {
        const rows = this.toResult<T>(this.guarded(() => this.native.cursorFetch(name, batchSize)));
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
    const check = () => {
      if (!isActive()) throw new Error('this transaction has ended; use the sql of the transaction that is running');
    };
    const sql = (<T = Row>(strings: TemplateStringsArray, ...values: unknown[]): Result<T> => {
      check();
      return this.run<T>(templateText(strings), values);
    }) as Sql;
    sql.unsafe = <T = Row>(text: string, params?: readonly unknown[]): Result<T> => {
      check();
      return this.run<T>(text, params);
    };
    const cursorOf = (batchSize: number) => <T = Row>(strings: TemplateStringsArray, ...values: unknown[]) => {
      check();
      return this.cursor<T>(templateText(strings), values, batchSize);
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
    this.native.begin();
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
    this.native.commit();
    return result;
  }
}
