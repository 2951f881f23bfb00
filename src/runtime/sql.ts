/**
 * ctx.sql and ctx.transaction on top of the native bridge: the plan cache,
 * parameter serialisation by the server-inferred parameter types, row
 * objects, and the transaction/savepoint discipline.
 */
import type { Result, Row, Sql, Transaction } from '../types';
import type { NativeBridge, NativeResult } from './native';
import {
  COL_BOOL, COL_BYTES, COL_DATE, COL_JSON, COL_TEXT, COL_VALUES, COMMANDS,
  H_COMMAND, H_COUNT, H_FIELDS, H_LAYOUT, H_NCOLS, H_NROWS, H_RETYPED, H_SHAPE, RETYPED_HELD,
  LAYOUT_COLUMNS, LAYOUT_FLAT, LAYOUT_NONE, LAYOUT_SCALAR,
} from './native';

const PLAN_CACHE_SIZE = 256;
/**
 * After start-up (bundle loading, first statements) the worker keeps garbage and a grown young
 * generation; once it has settled, one full GC + malloc_trim gives ~3.7 MB per worker back
 * (bench: idle PSS with 4 workers).
 */
const SETTLE_MS = 1000;
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
const BYTEA = 17, JSON_OID = 114, JSONB = 3802, DATE = 1082;
// numbers go to these types as binary; to any other type as JS's own shortest text
const NUMERIC_BINARY = new Set([20, 21, 23, 700, 701]);

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** The UTC calendar day of a Date as PostgreSQL reads it: year 0 and before are BC, 5+ digit years too. */
function dayText(d: Date): string {
  const y = d.getUTCFullYear();
  return `${pad(y < 1 ? 1 - y : y, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** A Date as a PostgreSQL date (its UTC calendar day). */
function dateText(d: Date): string {
  return d.getUTCFullYear() < 1 ? `${dayText(d)} BC` : dayText(d);
}

/**
 * A Date as a PostgreSQL timestamp(tz) in UTC. Not toISOString(): PostgreSQL reads neither its
 * signed 6-digit years (-000001, +010000) nor year 0.
 */
function timestampText(d: Date): string {
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}+00`;
  return `${dayText(d)} ${time}${d.getUTCFullYear() < 1 ? ' BC' : ''}`;
}

function hex(bytes: Uint8Array): string {
  return '\\x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

// integer types: a number is sent as its exact value (past 2^53 its shortest text is another integer)
const INTEGER_TYPES = new Set([20, 21, 23]);
const FLOAT_TYPES = new Set([700, 701]);
const TIMESTAMP_TYPES = new Set([1114, 1184]);

function scalarText(v: unknown, type: number): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new TypeError('an invalid Date cannot be sent to PostgreSQL');
    if (type === DATE) return dateText(v);
    return TIMESTAMP_TYPES.has(type) ? timestampText(v) : v.toISOString();
  }
  if (v instanceof Uint8Array) return hex(v);
  switch (typeof v) {
    case 'object': {
      const text = JSON.stringify(v);
      if (text === undefined) throw new TypeError('an object whose JSON is undefined cannot be sent to PostgreSQL');
      return text;
    }
    case 'number':
      if (Object.is(v, -0) && FLOAT_TYPES.has(type)) return '-0';
      if (INTEGER_TYPES.has(type) && Number.isInteger(v) && !Number.isSafeInteger(v)) return BigInt(v).toString();
      return String(v);
    case 'function':
    case 'symbol':
      throw new TypeError(`a ${typeof v} cannot be sent to PostgreSQL`);
  }
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
  return JSON.stringify(v);
}

// ------------------------------------------------------------ row makers

// captured before any user code runs (a bundle cannot swap them under the runtime)
const jsonParse = JSON.parse;
const EMPTY_COLUMNS: readonly string[] = Object.freeze([]);

/** helpers the generated column readers call */
const helpers = {
  date: (ms: number): Date | string => (ms === Infinity ? 'infinity' : ms === -Infinity ? '-infinity' : new Date(ms)),
  json: (text: string | null): unknown => (text === null ? null : jsonParse(text)),
};

/** A property key in an object literal; `__proto__` as a computed key so it is an own property. */
function propKey(name: string): string {
  return name === '__proto__' ? '["__proto__"]' : JSON.stringify(name);
}

/**
 * The names and kinds of a result's columns and the functions that build its
 * rows. Every row of a shape is made by one object literal, so all rows share
 * one hidden class (fast properties, monomorphic reads later).
 */
interface Makers {
  readonly fields: readonly string[];
  readonly kinds: readonly number[];
  one?: (v: unknown) => Row;
  flat?: (v: unknown[], o: number) => Row;
  cols?: (n: number, c: unknown[]) => Row[];
}

interface Shape {
  /** the bridge's shape id (0: not cached by the plan) */
  readonly id: number;
  readonly m: Makers;
}

function makeOne(m: Makers): (v: unknown) => Row {
  return new Function('v', `return { ${propKey(m.fields[0])}: v };`) as (v: unknown) => Row;
}

function makeFlat(m: Makers): (v: unknown[], o: number) => Row {
  const props = m.fields.map((f, i) => `${propKey(f)}: v[o + ${i}]`).join(', ');
  return new Function('v', 'o', `return { ${props} };`) as (v: unknown[], o: number) => Row;
}

/** Rows from columns (bridge.cc ColumnsToJs): one generated loop per shape. */
function makeCols(m: Makers): (n: number, c: unknown[]) => Row[] {
  const decl: string[] = [];
  const props = m.fields.map((f, i) => {
    decl.push(`const d${i} = c[${i * 3}], n${i} = c[${i * 3 + 1}], x${i} = c[${i * 3 + 2}];`);
    const isNull = `n${i} !== null && n${i}[r] === 1`;
    let expr: string;
    switch (m.kinds[i]) {
      case COL_TEXT: // chunks of 8192 strings (bridge.cc TextColumnToJs)
        expr = `d${i}[r >>> 13][r & 8191]`;
        break;
      case COL_VALUES:
        expr = `d${i}[r]`;
        break;
      case COL_JSON: // parsed by the bridge (x === 1), or chunks of strings when the column was too big for one parse
        expr = `(x${i} === 1 ? d${i}[r] : h.json(d${i}[r >>> 13][r & 8191]))`;
        break;
      case COL_BOOL:
        expr = `(${isNull} ? null : d${i}[r] === 1)`;
        break;
      case COL_DATE:
        expr = `(${isNull} ? null : h.date(d${i}[r]))`;
        break;
      case COL_BYTES:
        expr = `(${isNull} ? null : d${i}.slice(x${i}[r], x${i}[r + 1]))`;
        break;
      default: // INT32, FLOAT64, INT64
        expr = `(${isNull} ? null : d${i}[r])`;
        break;
    }
    return `${propKey(f)}: ${expr}`;
  });
  const src = `return function rows(n, c) {
  ${decl.join('\n  ')}
  const out = new Array(n);
  for (let r = 0; r < n; r++) out[r] = { ${props.join(', ')} };
  return out;
};`;
  return new Function('h', src)(helpers) as (n: number, c: unknown[]) => Row[];
}

// ------------------------------------------------------------ plan cache

interface PlanEntry {
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
type MutableResult = unknown[] & { count: number; command: string; columns: readonly string[] };

/** Executes statements for one worker. */
export class SqlEngine {
  /** by SQL text */
  private readonly plans = new Map<string, PlanEntry>();
  /** by the TemplateStringsArray of a call site (the same object at every call of it) */
  private readonly byStrings = new WeakMap<TemplateStringsArray, PlanEntry>();
  /** row makers by column kinds and names */
  private readonly makers = new Map<string, Makers>();
  private clock = 0;
  private readonly header: Float64Array;

  /**
   * @param onShutdownCancel called when a statement was cancelled because the
   *   worker is shutting down (SIGTERM), so ctx.signal is already aborted when
   *   the caller sees the error.
   */
  constructor(
    private readonly native: NativeBridge,
    private readonly onShutdownCancel: () => void = () => undefined,
  ) {
    this.header = native.resultHeader();
    setTimeout(() => native.releaseMemory(true), SETTLE_MS);
  }

  /** A statement cancelled by shutdown aborts ctx.signal before the error surfaces. */
  private failed(err: unknown): unknown {
    if ((err as { code?: string })?.code === '57014' && this.native.shutdownRequested()) this.onShutdownCancel();
    return err;
  }

  private entryFor(text: string): PlanEntry {
    let entry = this.plans.get(text);
    if (entry === undefined) {
      const plan = this.native.prepare(text);
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

  private makersFor(fields: string[], kinds: number[]): Makers {
    const key = kinds.join(',') + '\u0000' + fields.join('\u0000');
    let m = this.makers.get(key);
    if (m === undefined) {
      m = { fields: Object.freeze(fields), kinds };
      if (this.makers.size >= 1024) this.makers.clear();
      this.makers.set(key, m);
    }
    return m;
  }

  /** Builds the Result from what the bridge returned and the header it wrote. */
  private toResult<T>(raw: Raw, entry: PlanEntry | null): Result<T> {
    const h = this.header;
    let payload = raw;
    let shape: Shape | null = entry === null ? null : entry.shape;
    if (h[H_FIELDS] === 1) {
      const wrap = raw as [unknown, string[], number[]];
      payload = wrap[0];
      shape = { id: h[H_SHAPE], m: this.makersFor(wrap[1], wrap[2]) };
      if (entry !== null) entry.shape = shape;
    }
    const layout = h[H_LAYOUT];
    let rows: MutableResult;
    if (layout === LAYOUT_SCALAR) {
      const m = shape!.m;
      rows = [(m.one ??= makeOne(m))(payload)] as MutableResult;
    } else if (layout === LAYOUT_NONE) {
      rows = [] as unknown as MutableResult;
    } else if (layout === LAYOUT_FLAT) {
      const m = shape!.m;
      const make = (m.flat ??= makeFlat(m));
      const nrows = h[H_NROWS], ncols = h[H_NCOLS];
      const values = payload as unknown[];
      rows = new Array(nrows) as MutableResult;
      for (let r = 0, o = 0; r < nrows; r++, o += ncols) rows[r] = make(values, o);
    } else {
      const m = shape!.m;
      rows = (m.cols ??= makeCols(m))(h[H_NROWS], payload as unknown[]) as unknown as MutableResult;
    }
    // plain assignments in a fixed order (as postgres.js does): one hidden class, no descriptor work
    rows.count = h[H_COUNT];
    rows.command = COMMANDS[h[H_COMMAND]];
    rows.columns = shape === null ? EMPTY_COLUMNS : shape.m.fields;
    return rows as unknown as Result<T>;
  }

  /** params serialised by the plan's parameter types; null when there are none */
  private bind(entry: PlanEntry, params: readonly unknown[]): unknown[] | null {
    const n = params.length;
    if (n !== entry.paramTypes.length)
      throw new TypeError(`the statement takes ${entry.paramTypes.length} parameters but ${n} were given`);
    if (n === 0) return null;
    const sent = new Array(n);
    for (let i = 0; i < n; i++) sent[i] = serializeParam(params[i], entry.paramTypes[i], entry.elemTypes[i]);
    return sent;
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
    return this.executeEntry<T>(this.templateEntry(strings), values);
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
    const sql = (<T = Row>(strings: TemplateStringsArray, ...values: unknown[]): Result<T> => {
      if (!isActive()) throw inactive();
      return this.runTemplate<T>(strings, values);
    }) as Sql;
    sql.unsafe = <T = Row>(text: string, params?: readonly unknown[]): Result<T> => {
      if (!isActive()) throw inactive();
      return this.run<T>(text, params);
    };
    const cursorOf = (batchSize: number) => <T = Row>(strings: TemplateStringsArray, ...values: unknown[]) => {
      if (!isActive()) throw inactive();
      return this.cursor<T>(this.templateEntry(strings), values, batchSize);
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
