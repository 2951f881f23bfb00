/**
 * The start-up worker of bench/run.ts (cluster B): at each server start it records the time from
 * the fork to the first line of the bundle (module top level) and of main, with Node's own
 * milestones, in bench_startup; then idles.
 */
import { defineWorker } from 'pg-node-worker';

// the first statement of the bundle's own code ('pg-node-worker' is the runtime's, already loaded)
const bundleFirstLine = Date.now();

export default defineWorker({
  searchPath: ['public'],
  name: 'pgnw_startup',
  restart: 1,
  async main(ctx) {
    const forkToFirstLine = Date.now() - ctx.worker.startedAt;
    // Node's own milestones (ms after performance.timeOrigin, which is set when libnode is loaded:
    // in the postmaster with node_worker.preload_runtime, so origin is negative then)
    const t = performance.nodeTiming;
    const phases = { origin: performance.timeOrigin - ctx.worker.startedAt, v8Start: t.v8Start, environment: t.environment, bootstrapComplete: t.bootstrapComplete };
    ctx.sql`INSERT INTO bench_startup(pid, first_line_ms, bundle_ms, node_version, phases)
            VALUES (${ctx.worker.pid}, ${forkToFirstLine}, ${bundleFirstLine - ctx.worker.startedAt}, ${process.version}, ${JSON.stringify(phases)})`;
    while (!ctx.signal.aborted) await ctx.sleep(3600000);
  },
});
