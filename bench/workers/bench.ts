/**
 * The throughput worker of bench/run.ts (cluster A): takes jobs from bench_jobs (worker =
 * 'bench'), runs them and writes its figures to bench_results; a job ends with a 'done' row, or
 * an 'error' row holding the stack.
 */
import { defineWorker, type Sql } from 'pg-node-worker';
import { FETCH2_SQL, FETCH8_SQL, readRows2, readRows8, type Row2, type Row8 } from './queries';
import { recorder } from './record';

export interface BenchConfig {
  /** rows of bench_rows (checked) */
  rows2: number;
  /** rows of bench_rows8 (checked) */
  rows8: number;
  /** SELECT 1 loop run before the measured one */
  select1WarmupMs: number;
}

interface Job {
  id: number;
  run: string;
  kind: string;
  arg: number;
}

/** SELECT 1 until ms have passed (checking the clock every 64 calls); calls/s */
function select1(sql: Sql, ms: number): number {
  let n = 0, sum = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    for (let k = 0; k < 64; k++) sum += sql<{ '?column?': number }>`SELECT 1`[0]['?column?'];
    n += 64;
    t = performance.now();
  } while (t - t0 < ms);
  if (sum !== n) throw new Error('SELECT 1 returned something else');
  return n / ((t - t0) / 1000);
}

export function bench(name: string, cfg: BenchConfig) {
  const check2 = (rows: Row2[]) => {
    if (rows.length !== cfg.rows2 || typeof rows[0].i !== 'number' || rows[0].t.length !== 32)
      throw new Error('unexpected result: ' + rows.length + ' rows');
  };
  const check8 = (rows: Row8[]) => {
    const r = rows[0];
    if (rows.length !== cfg.rows8 || typeof r.a !== 'number' || typeof r.b !== 'bigint' || typeof r.c !== 'number' ||
        typeof r.d !== 'boolean' || typeof r.e !== 'string' || !(r.f instanceof Date) || typeof r.g !== 'object' || typeof r.h !== 'string')
      throw new Error('unexpected 8-column result: ' + rows.length + ' rows, ' + JSON.stringify(Object.keys(r)));
  };

  return defineWorker({
    searchPath: ['public'],
    name,
    restart: 'never',
    async main(ctx) {
      const record = recorder(ctx.sql);

      /**
       * `runs` fetches of `text`, each timed end to end: the statement, then a loop reading every
       * field of every row (node-postgres's side in bench/run.ts does the same).
       */
      const fetchRuns = <R>(run: string, runs: number, text: string, check: (rows: R[]) => void, read: (rows: R[]) => number) => {
        for (let i = 0; i < runs; i++) {
          const faults0 = process.resourceUsage().minorPageFault;
          const t0 = performance.now();
          let rows: R[] | null = ctx.sql.unsafe<R>(text, []);
          const t1 = performance.now();
          read(rows);
          const t2 = performance.now();
          const faults = process.resourceUsage().minorPageFault - faults0;
          check(rows);
          record(run, 'rows_per_s', rows.length / ((t2 - t0) / 1000));
          record(run, 'fetch_ms', t1 - t0);
          record(run, 'read_ms', t2 - t1);
          record(run, 'page_faults', faults);
          rows = null;
        }
      };

      const jobs: Record<string, (run: string, arg: number) => void> = {
        select1_each(run, ms) {
          select1(ctx.sql, cfg.select1WarmupMs);
          record(run, 'calls_per_s', select1(ctx.sql, ms));
        },
        select1_xact(run, ms) {
          ctx.transaction((tx) => select1(tx.sql, cfg.select1WarmupMs));
          record(run, 'calls_per_s', ctx.transaction((tx) => select1(tx.sql, ms)));
        },
        fetch2(run, runs) {
          fetchRuns<Row2>(run, runs, FETCH2_SQL, check2, readRows2);
          const m = process.memoryUsage();
          record(run, 'heap_used_mb', m.heapUsed / 1048576);
          record(run, 'rss_mb', m.rss / 1048576);
        },
        fetch8(run, runs) {
          fetchRuns<Row8>(run, runs, FETCH8_SQL, check8, readRows8);
        },
      };

      record('ts_boot', 'pid', ctx.worker.pid, process.version);
      while (!ctx.signal.aborted) {
        const todo = ctx.sql<Job>`SELECT id, run, kind, arg FROM bench_jobs WHERE NOT taken AND worker = 'bench' ORDER BY id`;
        for (const job of todo) {
          ctx.sql`UPDATE bench_jobs SET taken = true WHERE id = ${job.id}`;
          try {
            const fn = jobs[job.kind];
            if (!fn) throw new Error('unknown job kind ' + job.kind);
            fn(job.run, job.arg);
          } catch (err) {
            record(job.run, 'error', 0, String((err as Error)?.stack ?? err));
          }
          record(job.run, 'done', 1);
        }
        await ctx.sleep(todo.length ? 0 : 50);
      }
    },
  });
}
