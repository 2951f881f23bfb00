/** What the bench's workers share: writing a figure into bench_results (bench/run.ts reads it). */
import type { Sql } from 'pg-node-worker';

/** A function that records one figure of a run, with an optional note. */
export type Record = (run: string, key: string, value: number, note?: string | null) => void;

/** Records figures through `sql` (a worker's ctx.sql). */
export function recorder(sql: Sql): Record {
  return (run, key, value, note = null) => {
    sql`INSERT INTO bench_results(run, key, value, note) VALUES (${run}, ${key}, ${value}, ${note})`;
  };
}
