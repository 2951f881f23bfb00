/**
 * Synchronous schedule functions for test/schedules.test.ts, each run inside its claiming
 * transaction: 'exact' (every 2 s) writes its slot into public.ticks and then holds its
 * transaction open for public.exact_hold's seconds (0 by default), so that a kill -9 can land
 * mid-run; 'rollback' (every 3 s) writes a row and throws a string; 'promised' (every 3 s) writes
 * a row and returns a promise without being declared async. Only 'exact' rows may ever commit.
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'sched-exact',
  restart: 1,
  async main(ctx) {
    ctx.schedule('exact', '2 seconds', (run, tx) => {
      tx.sql`INSERT INTO public.ticks (schedule, slot, late, pid) VALUES ('exact', ${run.slot}, ${run.late}, ${ctx.worker.pid})`;
      const [{ hold }] = tx.sql<{ hold: number }>`SELECT coalesce(max(seconds), 0)::float8 AS hold FROM public.exact_hold`;
      ctx.log.info(`exact started ${run.slot.toISOString()} hold ${hold}`);
      if (hold > 0) tx.sql`SELECT pg_sleep(${hold})`;
    });
    ctx.schedule('rollback', '3 seconds', (run, tx) => {
      tx.sql`INSERT INTO public.ticks (schedule, slot, late, pid) VALUES ('rollback', ${run.slot}, ${run.late}, ${ctx.worker.pid})`;
      // a thrown non-Error is recorded as its string
      throw 'nope';
    });
    // not declared async, and returns a promise: refused, its row rolled back
    ctx.schedule('promised', '3 seconds', (run) => {
      ctx.sql`INSERT INTO public.ticks (schedule, slot, late, pid) VALUES ('promised', ${run.slot}, ${run.late}, ${ctx.worker.pid})`;
      return Promise.resolve();
    });
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
