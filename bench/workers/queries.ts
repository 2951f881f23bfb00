/**
 * What the bench's TS workers and bench/run.ts share: the fetch statements (run.ts runs the same
 * text through node-postgres) and the loops that read every field of the fetched rows, so both
 * sides of the fetch figures do the same work. Imported by the workers (bundled into them) and by
 * run.ts; it imports nothing.
 */

/** 1M rows of (int4, md5 text) */
export const FETCH2_SQL = 'SELECT i, t FROM bench_rows';
/** rows of int4, int8, float8, bool, text, timestamptz, jsonb, numeric */
export const FETCH8_SQL = 'SELECT a, b, c, d, e, f, g, h FROM bench_rows8';

/** The cursor worker's statement: `rows` rows made by the executor (nothing read from a table). */
export function cursorSql(rows: number): string {
  return `SELECT i, md5(i::text) AS t FROM generate_series(1, ${rows}) i`;
}

/**
 * Raw SQL text as the strings of a tagged template, for `sql.cursor(n)`, which takes only a
 * template (`sql.unsafe(text, [])` is the same prepared-statement path for a plain query).
 */
export function asTemplate(text: string): TemplateStringsArray {
  return Object.assign([text], { raw: [text] });
}

export interface Row2 {
  i: number;
  t: string;
}

/** int8 is a bigint in a worker and a string in node-postgres, numeric a string in both. */
export interface Row8 {
  a: number;
  b: bigint | string;
  c: number;
  d: boolean;
  e: string;
  f: Date;
  g: unknown;
  h: string;
}

/** Reads both fields of every row (a row object built lazily would pay for it here). */
export function readRows2(rows: readonly Row2[]): number {
  let s = 0;
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k];
    s += r.i + r.t.length;
  }
  return s;
}

/** Reads the 8 fields of every row. */
export function readRows8(rows: readonly Row8[]): number {
  let s = 0;
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k];
    s += r.a + r.c + r.e.length + r.h.length + (r.b ? 1 : 0) + (r.d ? 1 : 0) + (r.f ? 1 : 0) + (r.g ? 1 : 0);
  }
  return s;
}
