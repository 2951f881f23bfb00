/**
 * A worker that serves requests from table <name>_requests (polling every 50 ms): for each row it
 * runs `handle` with the row's int `arg`. The request is deleted (committed) before `handle` runs,
 * so a restarted worker does not run it again. Fixtures import it with their own handler.
 */
import { defineWorker, type WorkerContext } from 'pg-node-worker';

export function requestWorker(name: string, handle: (ctx: WorkerContext, arg: number) => void) {
  return defineWorker({
    searchPath: ['public'],
    name,
    restart: 1,
    async main(ctx) {
      ctx.sql.unsafe(`CREATE TABLE IF NOT EXISTS public.${name}_requests (arg int)`);
      ctx.log.info('ready as pid ' + ctx.worker.pid);
      while (!ctx.signal.aborted) {
        const reqs = ctx.sql.unsafe<{ arg: number }>(`DELETE FROM public.${name}_requests RETURNING arg`);
        for (const { arg } of reqs) handle(ctx, arg);
        await ctx.sleep(50);
      }
    },
  });
}
