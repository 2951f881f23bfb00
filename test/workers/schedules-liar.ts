/**
 * A worker that calls itself another worker for test/schedules.test.ts: it SETs its
 * application_name to 'sched-missed' and schedules 'catchup' (a schedule name sched-missed
 * has) every 3 s, each run a 'liar' row of public.ticks. Its runs must be recorded under its own
 * name, 'sched-liar', and leave sched-missed's slots alone.
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'sched-liar',
  restart: 1,
  async main(ctx) {
    ctx.sql`SET application_name = 'sched-missed'`;
    const [{ name }] = ctx.sql<{ name: string }>`SELECT current_setting('application_name') AS name`;
    ctx.log.info(`liar: pid ${ctx.worker.pid} as application_name ${name}`);
    ctx.schedule('catchup', '3 seconds', (run, tx) => {
      tx.sql`INSERT INTO public.ticks (schedule, slot, late, pid) VALUES ('liar', ${run.slot}, ${run.late}, ${ctx.worker.pid})`;
    });
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
