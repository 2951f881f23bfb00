/**
 * Drains queue "drainer" with a synchronous handler that inserts the job's number into
 * public.drained (about 0.2 ms of work per job, so that 10,000 jobs take long enough for a kill
 * to land in the middle), for test/faults-jobs-kill9.test.ts.
 */
import { defineWorker, type Job } from 'pg-node-worker';

export default defineWorker({
  name: 'drainer',
  searchPath: ['public'],
  restart: 1,
  async main(ctx) {
    // the test creates the extension after the server started
    while (ctx.sql`SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_node_worker'`.length === 0) await ctx.sleep(50);
    ctx.jobs('drainer', (job: Job<{ n: number }>, tx) => {
      tx.sql`INSERT INTO public.drained (n, pid) VALUES (${job.payload.n}, ${process.pid})`;
      const until = performance.now() + 0.2;
      while (performance.now() < until);
    }, { batch: 20 });
    ctx.log.info('drainer: draining as pid ' + process.pid);
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
  },
});
