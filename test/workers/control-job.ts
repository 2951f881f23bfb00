/** A job: records its pid and ctx.args in public.job_runs, sleeps args.sleepMs if given, ends. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'job',
  restart: 'never',
  async main(ctx) {
    const args = ctx.args as { n?: number; sleepMs?: number } | null;
    ctx.sql`CREATE TABLE IF NOT EXISTS job_runs (pid int, args jsonb)`;
    ctx.sql`INSERT INTO job_runs VALUES (${ctx.worker.pid}, ${args === null ? null : JSON.stringify(args)}::jsonb)`;
    if (args?.sleepMs) await ctx.sleep(args.sleepMs);
  },
});
