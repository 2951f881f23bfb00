/**
 * The idle worker of bench/run.ts (cluster B: memory and scale): says when its JS runs (a
 * bench_alive row from the first line of main), then sleeps. Deployed once as idle_0 and copied
 * under other names (run.ts cloneWorker), so its name appears in the bundle only as the template's
 * argument.
 */
import { defineWorker } from 'pg-node-worker';

export function idle(name: string) {
  return defineWorker({
    searchPath: ['public'],
    name,
    restart: 1,
    async main(ctx) {
      ctx.sql`INSERT INTO bench_alive(name, pid) VALUES (${ctx.worker.name}, ${ctx.worker.pid})`;
      while (!ctx.signal.aborted) await ctx.sleep(3600000);
    },
  });
}
