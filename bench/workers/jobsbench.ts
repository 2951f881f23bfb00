/**
 * The drain worker of bench/jobs.ts: a no-op synchronous consumer of "jobsbench" and a no-op async
 * one of "jobsbench.async".
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'jobsbench',
  restart: 1,
  async main(ctx) {
    while (ctx.sql`SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_node_worker'`.length === 0) await ctx.sleep(50);
    const batch = Number(ctx.setting('jobsbench.batch') ?? 50);
    ctx.jobs('jobsbench', () => undefined, { batch });
    ctx.jobs('jobsbench.async', async () => undefined, { concurrency: batch, batch });
    ctx.log.info('jobsbench ready');
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
  },
});
