/**
 * The cursor worker of bench/run.ts (cluster A): idles until asked (a bench_jobs row with
 * worker = 'cursor'), then iterates a big cursor in one transaction and reports its own RSS
 * figures: idle RSS, and the peak (VmHWM, reset just before) while the cursor ran.
 */
import * as fs from 'fs';
import { defineWorker } from 'pg-node-worker';
import { asTemplate, cursorSql } from './queries';
import { recorder } from './record';

export interface CursorConfig {
  /** rows the cursor returns (checked) */
  rows: number;
  /** rows per fetch */
  batch: number;
}

/** A kB field of /proc/self/status. */
const kb = (field: string) => Number(fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp('^' + field + ':\\s+(\\d+) kB', 'm'))![1]);

export function cursor(name: string, cfg: CursorConfig) {
  return defineWorker({
    searchPath: ['public'],
    name,
    restart: 'never',
    async main(ctx) {
      const record = recorder(ctx.sql);
      const statement = asTemplate(cursorSql(cfg.rows));
      while (!ctx.signal.aborted) {
        const todo = ctx.sql<{ id: number; run: string }>`SELECT id, run FROM bench_jobs WHERE NOT taken AND worker = 'cursor' ORDER BY id`;
        for (const job of todo) {
          ctx.sql`UPDATE bench_jobs SET taken = true WHERE id = ${job.id}`;
          try {
            const idle = kb('VmRSS');
            // reset the peak (VmHWM) to the current RSS
            fs.writeFileSync('/proc/self/clear_refs', '5');
            const hwm0 = kb('VmHWM');
            let n = 0, sum = 0;
            const t0 = performance.now();
            ctx.transaction((tx) => {
              // the planner would JIT this 10M-row plan, and loading libLLVM alone adds ~50 MB of
              // (file-backed) RSS to any backend that runs it: not what this figure is about
              tx.sql`SET LOCAL jit = off`;
              for (const rows of tx.sql.cursor(cfg.batch)<{ i: number; t: string }>(statement)) {
                n += rows.length;
                sum += rows[0].i;
              }
            });
            const dt = performance.now() - t0;
            if (n !== cfg.rows) throw new Error('cursor returned ' + n + ' rows');
            record(job.run, 'idle_rss_kb', idle);
            record(job.run, 'hwm_start_kb', hwm0);
            record(job.run, 'hwm_kb', kb('VmHWM'));
            record(job.run, 'rows_per_s', n / (dt / 1000));
            record(job.run, 'seconds', dt / 1000);
          } catch (err) {
            record(job.run, 'error', 0, String((err as Error)?.stack ?? err));
          }
          record(job.run, 'done', 1);
        }
        await ctx.sleep(todo.length ? 0 : 100);
      }
    },
  });
}
