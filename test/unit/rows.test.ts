/**
 * Row making without a server: results built by hand as the bridge builds them (the header it
 * writes, the payload it returns: see ColumnsToJs in native/convert.cc) decoded by
 * src/runtime/rows.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  COL_BOOL, COL_BYTES, COL_DATE, COL_FLOAT64, COL_INT32, COL_INT64, COL_JSON, COL_TEXT, COL_VALUES, COMMANDS,
  H_COMMAND, H_COUNT, H_FIELDS, H_LAYOUT, H_NCOLS, H_NROWS, H_SHAPE,
  LAYOUT_COLUMNS, LAYOUT_FLAT, LAYOUT_NONE, LAYOUT_SCALAR,
} from '../../src/runtime/native';
import { decodeResult, RowMakerCache, ShapeHolder } from '../../src/runtime/rows';

const TEXT_CHUNK = 8192;

interface HeaderFields {
  command?: number;
  count?: number;
  shape?: number;
  nrows: number;
  ncols: number;
  layout: number;
  fields: boolean;
}

/** The result header as the bridge writes it. */
function header(h: HeaderFields): Float64Array {
  const out = new Float64Array(8);
  out[H_COMMAND] = h.command ?? 0;
  out[H_COUNT] = h.count ?? h.nrows;
  out[H_SHAPE] = h.shape ?? 0;
  out[H_NROWS] = h.nrows;
  out[H_NCOLS] = h.ncols;
  out[H_LAYOUT] = h.layout;
  out[H_FIELDS] = h.fields ? 1 : 0;
  return out;
}

/** A text column's data as the bridge sends it: chunks of TEXT_CHUNK strings. */
function textChunks(values: (string | null)[]): (string | null)[][] {
  const chunks: (string | null)[][] = [];
  for (let i = 0; i < values.length; i += TEXT_CHUNK) chunks.push(values.slice(i, i + TEXT_CHUNK));
  return chunks;
}

/** A bytea column's data: all bytes in one Uint8Array and nrows + 1 offsets. */
function bytesColumn(values: (number[] | null)[]): [Uint8Array, Uint8Array | null, Uint32Array] {
  const offsets = new Uint32Array(values.length + 1);
  const all: number[] = [];
  values.forEach((v, r) => {
    if (v !== null) all.push(...v);
    offsets[r + 1] = all.length;
  });
  const nulls = values.some((v) => v === null) ? Uint8Array.from(values.map((v) => (v === null ? 1 : 0))) : null;
  return [Uint8Array.from(all), nulls, offsets];
}

describe('decodeResult', () => {
  it('no rows: an empty result that still has its columns', () => {
    const cache = new RowMakerCache();
    const h = header({ nrows: 0, ncols: 2, layout: LAYOUT_NONE, fields: true, shape: 3, command: 0 });
    const rows = decodeResult(h, [undefined, ['a', 'b'], [COL_INT32, COL_TEXT]], null, cache);
    expect([...rows]).toEqual([]);
    expect(rows.columns).toEqual(['a', 'b']);
    expect(rows.count).toBe(0);
    expect(rows.command).toBe('SELECT');
  });

  it('no columns (a utility statement): count and command only', () => {
    const h = header({ nrows: 0, ncols: 0, layout: LAYOUT_NONE, fields: false, command: COMMANDS.indexOf('UTILITY'), count: 0 });
    const rows = decodeResult(h, undefined, null, new RowMakerCache());
    expect(rows).toHaveLength(0);
    expect(rows.columns).toEqual([]);
    expect(rows.command).toBe('UTILITY');
  });

  it('an UPDATE: the count of rows it changed', () => {
    const h = header({ nrows: 0, ncols: 0, layout: LAYOUT_NONE, fields: false, command: COMMANDS.indexOf('UPDATE'), count: 7 });
    const rows = decodeResult(h, undefined, null, new RowMakerCache());
    expect([rows.command, rows.count]).toEqual(['UPDATE', 7]);
  });

  it('one row of one column: the value itself', () => {
    const h = header({ nrows: 1, ncols: 1, layout: LAYOUT_SCALAR, fields: true });
    const rows = decodeResult(h, [1, ['?column?'], [COL_INT32]], null, new RowMakerCache());
    expect([...rows]).toEqual([{ '?column?': 1 }]);
    expect(rows.columns).toEqual(['?column?']);
  });

  it('a few rows: the values row-major', () => {
    const h = header({ nrows: 3, ncols: 2, layout: LAYOUT_FLAT, fields: true });
    const rows = decodeResult(h, [[1, 'a', 2, null, 3, 'c'], ['id', 'name'], [COL_INT32, COL_TEXT]], null, new RowMakerCache());
    expect([...rows]).toEqual([
      { id: 1, name: 'a' },
      { id: 2, name: null },
      { id: 3, name: 'c' },
    ]);
  });

  it('columns of fixed-width kinds, typed arrays with null flags', () => {
    const n = 4;
    const payload = [
      Int32Array.from([1, -2, 0, 4]), Uint8Array.from([0, 0, 1, 0]), null,
      BigInt64Array.from([1n, -(2n ** 63n), 0n, 2n ** 63n - 1n]), null, null,
      Float64Array.from([0.5, -0, NaN, Infinity]), Uint8Array.from([1, 0, 0, 0]), null,
      Uint8Array.from([1, 0, 0, 1]), Uint8Array.from([0, 0, 1, 0]), null,
      Float64Array.from([Date.UTC(2024, 0, 2), Infinity, -Infinity, 0]), Uint8Array.from([0, 0, 0, 1]), null,
    ];
    const h = header({ nrows: n, ncols: 5, layout: LAYOUT_COLUMNS, fields: true });
    const rows = decodeResult(h, [payload, ['i', 'big', 'f', 'b', 'd'], [COL_INT32, COL_INT64, COL_FLOAT64, COL_BOOL, COL_DATE]], null, new RowMakerCache());
    expect([...rows]).toEqual([
      { i: 1, big: 1n, f: null, b: true, d: new Date(Date.UTC(2024, 0, 2)) },
      { i: -2, big: -(2n ** 63n), f: -0, b: false, d: 'infinity' },
      { i: null, big: 0n, f: NaN, b: null, d: '-infinity' },
      { i: 4, big: 2n ** 63n - 1n, f: Infinity, b: true, d: null },
    ]);
    expect(Object.is(rows[1].f, -0)).toBe(true);
  });

  it('columns of fixed-width kinds as plain arrays (fewer rows than the bridge makes typed arrays for)', () => {
    const payload = [[7, 8, 9], [0, 1, 0], null, [1, 0, 1], null, null];
    const h = header({ nrows: 3, ncols: 2, layout: LAYOUT_COLUMNS, fields: true });
    const rows = decodeResult(h, [payload, ['n', 'ok'], [COL_INT32, COL_BOOL]], null, new RowMakerCache());
    expect([...rows]).toEqual([
      { n: 7, ok: true },
      { n: null, ok: false },
      { n: 9, ok: true },
    ]);
  });

  it('text columns in chunks of 8192 strings', () => {
    const n = TEXT_CHUNK * 2 + 5;
    const values = Array.from({ length: n }, (_, r) => (r % 1000 === 999 ? null : `row ${r}`));
    const h = header({ nrows: n, ncols: 1, layout: LAYOUT_COLUMNS, fields: true });
    const rows = decodeResult(h, [[textChunks(values), null, null], ['t'], [COL_TEXT]], null, new RowMakerCache());
    expect(rows).toHaveLength(n);
    for (const r of [0, 998, 999, TEXT_CHUNK - 1, TEXT_CHUNK, TEXT_CHUNK * 2 + 4]) expect(rows[r], String(r)).toEqual({ t: values[r] });
  });

  it('json columns: values parsed by the bridge, or text parsed here', () => {
    const parsed = [{ a: 1 }, null, [1, 2]];
    const text = ['{"a":1}', null, '[1,2]'];
    const h = header({ nrows: 3, ncols: 2, layout: LAYOUT_COLUMNS, fields: true });
    const rows = decodeResult(h, [[parsed, null, 1, textChunks(text), null, null], ['p', 'q'], [COL_JSON, COL_JSON]], null, new RowMakerCache());
    expect([...rows]).toEqual([
      { p: { a: 1 }, q: { a: 1 } },
      { p: null, q: null },
      { p: [1, 2], q: [1, 2] },
    ]);
  });

  it('bytea columns: each value its own copy of its bytes', () => {
    const [data, nulls, offsets] = bytesColumn([[1, 2, 3], null, [], [255]]);
    const h = header({ nrows: 4, ncols: 1, layout: LAYOUT_COLUMNS, fields: true });
    const rows = decodeResult<{ b: Uint8Array | null }>(h, [[data, nulls, offsets], ['b'], [COL_BYTES]], null, new RowMakerCache());
    expect(rows.map((r) => (r.b === null ? null : [...r.b]))).toEqual([[1, 2, 3], null, [], [255]]);
    rows[0].b![0] = 99;
    expect(data[0]).toBe(1);
  });

  it('columns of values the bridge made one by one (numeric, arrays, ...)', () => {
    const h = header({ nrows: 2, ncols: 1, layout: LAYOUT_COLUMNS, fields: true });
    const rows = decodeResult(h, [[['1.50', null], null, null], ['v'], [COL_VALUES]], null, new RowMakerCache());
    expect([...rows]).toEqual([{ v: '1.50' }, { v: null }]);
  });

  it('column names that are not identifiers, and __proto__ as an own property', () => {
    const names = ['__proto__', 'a "quoted" name', 'line\nbreak', '', 'constructor'];
    const h = header({ nrows: 2, ncols: 5, layout: LAYOUT_FLAT, fields: true });
    const rows = decodeResult(h, [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], names, names.map(() => COL_INT32)], null, new RowMakerCache());
    expect(Object.keys(rows[0])).toEqual(names);
    expect(Object.getPrototypeOf(rows[0])).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(rows[1], '__proto__')?.value).toBe(6);
    expect(rows[1]['line\nbreak']).toBe(8);
  });

  it('the same column name twice: the last one wins, as in an object literal', () => {
    const h = header({ nrows: 1, ncols: 2, layout: LAYOUT_FLAT, fields: true });
    const rows = decodeResult(h, [[1, 2], ['x', 'x'], [COL_INT32, COL_INT32]], null, new RowMakerCache());
    expect([...rows]).toEqual([{ x: 2 }]);
    expect(rows.columns).toEqual(['x', 'x']);
  });
});

describe('shapes', () => {
  it('a statement keeps the shape the bridge sent, and later results without names use it', () => {
    const cache = new RowMakerCache();
    const plan: ShapeHolder = { shape: null };
    const first = decodeResult(header({ nrows: 1, ncols: 1, layout: LAYOUT_SCALAR, fields: true, shape: 5 }), [1, ['n'], [COL_INT32]], plan, cache);
    expect([...first]).toEqual([{ n: 1 }]);
    expect(plan.shape?.id).toBe(5);
    const second = decodeResult(header({ nrows: 2, ncols: 1, layout: LAYOUT_FLAT, fields: false, shape: 5 }), [2, 3], plan, cache);
    expect([...second]).toEqual([{ n: 2 }, { n: 3 }]);
    expect(second.columns).toBe(first.columns);
  });

  it('a new shape (DDL changed the columns) replaces the kept one', () => {
    const cache = new RowMakerCache();
    const plan: ShapeHolder = { shape: null };
    decodeResult(header({ nrows: 1, ncols: 1, layout: LAYOUT_SCALAR, fields: true, shape: 5 }), [1, ['n'], [COL_INT32]], plan, cache);
    const rows = decodeResult(header({ nrows: 1, ncols: 2, layout: LAYOUT_FLAT, fields: true, shape: 6 }), [[1, 'x'], ['n', 'm'], [COL_INT32, COL_TEXT]], plan, cache);
    expect([...rows]).toEqual([{ n: 1, m: 'x' }]);
    expect(plan.shape?.id).toBe(6);
  });

  it('one set of row makers per column names and kinds', () => {
    const cache = new RowMakerCache();
    const a = cache.get(['a', 'b'], [COL_INT32, COL_TEXT]);
    expect(cache.get(['a', 'b'], [COL_INT32, COL_TEXT])).toBe(a);
    expect(cache.get(['a', 'b'], [COL_INT32, COL_JSON])).not.toBe(a);
    expect(cache.get(['b', 'a'], [COL_INT32, COL_TEXT])).not.toBe(a);
    expect(Object.isFrozen(a.fields)).toBe(true);
  });

  it('the cache starts again when it holds 1024 shapes', () => {
    const cache = new RowMakerCache();
    const first = cache.get(['c0'], [COL_INT32]);
    for (let i = 1; i < 1024; i++) cache.get([`c${i}`], [COL_INT32]);
    expect(cache.size).toBe(1024);
    cache.get(['one more'], [COL_INT32]);
    expect(cache.size).toBe(1);
    expect(cache.get(['c0'], [COL_INT32])).not.toBe(first);
  });

  it('rows of one shape share their makers across layouts', () => {
    const cache = new RowMakerCache();
    const names = ['id', 'name'];
    const kinds = [COL_INT32, COL_TEXT];
    const flat = decodeResult(header({ nrows: 1, ncols: 2, layout: LAYOUT_FLAT, fields: true }), [[1, 'a'], names.slice(), kinds.slice()], null, cache);
    const cols = decodeResult(
      header({ nrows: 2, ncols: 2, layout: LAYOUT_COLUMNS, fields: true }),
      [[[1, 2], null, null, textChunks(['a', 'b']), null, null], names.slice(), kinds.slice()],
      null,
      cache,
    );
    expect(cols.columns).toBe(flat.columns);
    expect(Object.keys(cols[1])).toEqual(Object.keys(flat[0]));
  });
});
