/**
 * Two schedules every 3 s for test/schedules.test.ts's missed-slot test: 'catchup' runs a missed
 * slot once at start (the default), 'skipper' skips them. Each run is a row of public.ticks. It runs
 * as sched_role, a role with no rights on the extension's table: runs are recorded all the same.
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'sched-missed',
  role: 'sched_role',
  restart: 1,
  async main(ctx) {
    for (const [schedule, missed] of [['catchup', 'run-once'], ['skipper', 'skip']] as const) {
      ctx.schedule(schedule, '3 seconds', (run) => {
        ctx.sql`INSERT INTO public.ticks (schedule, slot, late, pid) VALUES (${schedule}, ${run.slot}, ${run.late}, ${ctx.worker.pid})`;
      }, { missed });
    }
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
