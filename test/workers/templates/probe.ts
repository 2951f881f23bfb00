/**
 * Reads public.facts, tries to write to it, and logs whether it runs in recovery, the rows it saw
 * and how the write went ('ok' or the SQLSTATE); then idles.
 */
import { defineWorker, PgError, type StartTime } from 'pg-node-worker';

export function probe(name: string, start: StartTime) {
  return defineWorker({
    searchPath: ['public'],
    name,
    start,
    restart: 1,
    async main(ctx) {
      const n = ctx.sql<{ n: number }>`SELECT count(*)::int AS n FROM facts`[0].n;
      let write = 'ok';
      try {
        ctx.sql`INSERT INTO facts VALUES (${ctx.worker.pid})`;
      } catch (e) {
        write = (e as PgError).code;
      }
      ctx.log.info('recovery=' + ctx.isInRecovery() + ' rows=' + n + ' write=' + write);
      while (!ctx.signal.aborted) await ctx.sleep(60000);
    },
  });
}
