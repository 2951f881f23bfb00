/**
 * The latency worker of bench/jobs.ts: consumes only "jobslat", whose synchronous handler records
 * when it started (clock_timestamp() into public.lat). A worker of its own, because a wake-up
 * makes every consumer of the woken worker look at its queue.
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'jobslat',
  restart: 1,
  async main(ctx) {
    while (ctx.sql`SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_node_worker'`.length === 0) await ctx.sleep(50);
    ctx.jobs('jobslat', (job, tx) => {
      tx.sql`INSERT INTO public.lat (id, started) VALUES (${job.id}, clock_timestamp())`;
    });
    ctx.log.info('jobslat ready');
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
  },
});
