/**
 * Row making: the bridge's result (the header it writes, the payload it returns) turned into the
 * Result a query gives, an array of row objects with `count`, `command` and `columns`.
 *
 * The payload's layout is in the header (H_LAYOUT): nothing (no rows), the one value of a 1x1
 * result, the values row-major (a few rows), or per column [data, nulls, offsets] (ColumnsToJs in
 * native/convert.cc). The functions that build rows are generated once per shape (column names and
 * kinds) and kept in a {@link RowMakerCache}. Nothing here calls the bridge: decodeResult works on
 * plain arrays.
 */
import type { Result, Row } from '../types';
import {
  COL_BOOL, COL_BYTES, COL_DATE, COL_JSON, COL_TEXT, COL_VALUES, COMMANDS,
  H_COMMAND, H_COUNT, H_FIELDS, H_LAYOUT, H_NCOLS, H_NROWS, H_SHAPE,
  LAYOUT_FLAT, LAYOUT_NONE, LAYOUT_SCALAR,
} from './native';

// captured before any user code runs (a bundle cannot swap them under the runtime)
const jsonParse = JSON.parse;
const EMPTY_COLUMNS: readonly string[] = Object.freeze([]);
/** row r of a text column is in chunk r >>> TEXT_CHUNK_BITS (convert.cc TextColumnToJs) */
const TEXT_CHUNK_BITS = 13;
const TEXT_CHUNK_MASK = (1 << TEXT_CHUNK_BITS) - 1;
/** the row-maker cache is emptied when it holds this many shapes */
const MAX_SHAPES = 1024;

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
 * The names and kinds of a result's columns and the functions that build its rows. Every row of
 * a shape is made by one object literal, so all rows share one hidden class (fast properties,
 * monomorphic reads later). The functions are generated on first use.
 */
export interface Makers {
  readonly fields: readonly string[];
  readonly kinds: readonly number[];
  one?: (v: unknown) => Row;
  flat?: (v: unknown[], o: number) => Row;
  cols?: (n: number, c: unknown[]) => Row[];
}

/** The shape of a result: the bridge's shape id and the row makers for its columns. */
export interface Shape {
  /** the bridge's shape id (0: not cached by the plan) */
  readonly id: number;
  readonly m: Makers;
}

/** Something that remembers the shape of its last result (a prepared statement). */
export interface ShapeHolder {
  shape: Shape | null;
}

function makeOne(m: Makers): (v: unknown) => Row {
  return new Function('v', `return { ${propKey(m.fields[0])}: v };`) as (v: unknown) => Row;
}

function makeFlat(m: Makers): (v: unknown[], o: number) => Row {
  const props = m.fields.map((f, i) => `${propKey(f)}: v[o + ${i}]`).join(', ');
  return new Function('v', 'o', `return { ${props} };`) as (v: unknown[], o: number) => Row;
}

/** The expression that reads row r of column i of kind `kind` (see ColumnsToJs in convert.cc). */
function cellExpr(kind: number, i: number): string {
  const isNull = `n${i} !== null && n${i}[r] === 1`;
  const chunked = (d: string) => `${d}[r >>> ${TEXT_CHUNK_BITS}][r & ${TEXT_CHUNK_MASK}]`;
  switch (kind) {
    case COL_TEXT: // chunks of strings (convert.cc TextColumnToJs)
      return chunked(`d${i}`);
    case COL_VALUES:
      return `d${i}[r]`;
    case COL_JSON: // parsed by the bridge (x === 1), or chunks of strings when the column was too big for one parse
      return `(x${i} === 1 ? d${i}[r] : h.json(${chunked(`d${i}`)}))`;
    case COL_BOOL:
      return `(${isNull} ? null : d${i}[r] === 1)`;
    case COL_DATE:
      return `(${isNull} ? null : h.date(d${i}[r]))`;
    case COL_BYTES:
      return `(${isNull} ? null : d${i}.slice(x${i}[r], x${i}[r + 1]))`;
    default: // INT32, FLOAT64, INT64
      return `(${isNull} ? null : d${i}[r])`;
  }
}

/** Rows from columns (convert.cc ColumnsToJs): one generated loop per shape. */
function makeCols(m: Makers): (n: number, c: unknown[]) => Row[] {
  const decl = m.fields.map((_, i) => `const d${i} = c[${i * 3}], n${i} = c[${i * 3 + 1}], x${i} = c[${i * 3 + 2}];`);
  const props = m.fields.map((f, i) => `${propKey(f)}: ${cellExpr(m.kinds[i], i)}`);
  const src = `return function rows(n, c) {
  ${decl.join('\n  ')}
  const out = new Array(n);
  for (let r = 0; r < n; r++) out[r] = { ${props.join(', ')} };
  return out;
};`;
  return new Function('h', src)(helpers) as (n: number, c: unknown[]) => Row[];
}

/** Row makers by column kinds and names, shared by every statement of a worker. */
export class RowMakerCache {
  private readonly makers = new Map<string, Makers>();

  /** The makers for columns `fields` of kinds `kinds` (the same object for the same shape). */
  get(fields: string[], kinds: number[]): Makers {
    const key = kinds.join(',') + '\u0000' + fields.join('\u0000');
    let m = this.makers.get(key);
    if (m === undefined) {
      m = { fields: Object.freeze(fields), kinds };
      if (this.makers.size >= MAX_SHAPES) this.makers.clear();
      this.makers.set(key, m);
    }
    return m;
  }

  /** How many shapes it holds. */
  get size(): number {
    return this.makers.size;
  }
}

type MutableResult = unknown[] & { count: number; command: string; columns: readonly string[] };

/** The rows of a payload laid out as `layout` (LAYOUT_*). */
function rowsOf(layout: number, m: Makers | undefined, h: ArrayLike<number>, payload: unknown): MutableResult {
  if (layout === LAYOUT_NONE) return [] as unknown as MutableResult;
  if (layout === LAYOUT_SCALAR) return [(m!.one ??= makeOne(m!))(payload)] as MutableResult;
  const nrows = h[H_NROWS];
  if (layout === LAYOUT_FLAT) {
    const make = (m!.flat ??= makeFlat(m!));
    const ncols = h[H_NCOLS];
    const values = payload as unknown[];
    const rows = new Array(nrows) as MutableResult;
    for (let r = 0, o = 0; r < nrows; r++, o += ncols) rows[r] = make(values, o);
    return rows;
  }
  return (m!.cols ??= makeCols(m!))(nrows, payload as unknown[]) as unknown as MutableResult;
}

/**
 * Builds the Result of one call of the bridge from the header it wrote (`h`, H_* in native.ts)
 * and what it returned (`raw`). When the header says the column names came along (H_FIELDS 1,
 * `raw` is then [payload, names, kinds]), the new shape is stored on `holder`; otherwise the
 * holder's shape is the result's.
 */
export function decodeResult<T = Row>(h: ArrayLike<number>, raw: unknown, holder: ShapeHolder | null, cache: RowMakerCache): Result<T> {
  let payload = raw;
  let shape: Shape | null = holder === null ? null : holder.shape;
  if (h[H_FIELDS] === 1) {
    const wrap = raw as [unknown, string[], number[]];
    payload = wrap[0];
    shape = { id: h[H_SHAPE], m: cache.get(wrap[1], wrap[2]) };
    if (holder !== null) holder.shape = shape;
  }
  const rows = rowsOf(h[H_LAYOUT], shape === null ? undefined : shape.m, h, payload);
  // plain assignments in a fixed order (as postgres.js does): one hidden class, no descriptor work
  rows.count = h[H_COUNT];
  rows.command = COMMANDS[h[H_COMMAND]];
  rows.columns = shape === null ? EMPTY_COLUMNS : shape.m.fields;
  return rows as unknown as Result<T>;
}
