/**
 * The worker of bench/jobs.ts's 1M-job memory mode (PGNW_BENCH_JOBS_MILLION=1): a no-op
 * synchronous consumer of "jobsmem" (batch from the jobsbench.batch setting) that counts the jobs
 * its handler ran, and answers node_worker.call('jobsmem', ...) with that count, its pid and
 * process.memoryUsage() and the sizes of V8's new and old spaces, so the bench can sample its JS heap beside /proc/<pid>/smaps_rollup.
 * Its young generation is capped (youngGenerationMb), as a long-running queue worker's should be:
 * without the cap V8 grows it as objects survive, up to 32 MB of new space on Node 18 (64 on Node 24).
 */
import * as v8 from 'node:v8';
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'jobsmem',
  restart: 1,
  youngGenerationMb: 6,
  async main(ctx) {
    let handled = 0;
    ctx.onCall(() => {
      const m = process.memoryUsage();
      const space = (name: string) => v8.getHeapSpaceStatistics().find((s) => s.space_name === name)?.space_size ?? 0;
      return {
        pid: ctx.worker.pid,
        handled,
        heapUsed: m.heapUsed,
        heapTotal: m.heapTotal,
        newSpace: space('new_space'),
        oldSpace: space('old_space'),
        external: m.external,
        arrayBuffers: m.arrayBuffers,
      };
    });
    while (ctx.sql`SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_node_worker'`.length === 0) await ctx.sleep(50);
    const batch = Number(ctx.setting('jobsbench.batch') ?? 50);
    ctx.jobs(
      'jobsmem',
      () => {
        handled++;
      },
      { batch },
    );
    ctx.log.info('jobsmem ready');
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
  },
});
