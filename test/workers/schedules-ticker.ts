/**
 * Schedules for test/schedules.test.ts, on the primary and on a hot standby (start: 'consistent'):
 * 'tick' every 2 s, 'minutely' (5-field) and 'slow' every 5 s (4 s long) write their slot into
 * public.ticks where they can and log it; 'boom' every 3 s throws; 'once' unsubscribes at its first
 * run; 'nightly' only exists. At start each bad input is tried and its error logged as
 * `bad <case>: <field> <message>`.
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'sched-ticker',
  start: 'consistent',
  restart: 1,
  async main(ctx) {
    const nothing = () => undefined;
    const bad: [string, () => unknown][] = [
      ['minute', () => ctx.schedule('b', '61 * * * *', nothing)],
      ['day-of-week', () => ctx.schedule('b', '0 0 * * FUNDAY', nothing)],
      ['month', () => ctx.schedule('b', '0 0 1 13 *', nothing)],
      ['fields', () => ctx.schedule('b', '* * * * * *', nothing)],
      ['seconds', () => ctx.schedule('b', '60 seconds', nothing)],
      ['timezone', () => ctx.schedule('b', '0 3 * * *', nothing, { timezone: 'Mars/Olympus' })],
      ['missed', () => ctx.schedule('b', '0 3 * * *', nothing, { missed: 'twice' as 'skip' })],
      ['never', () => ctx.schedule('b', '0 0 31 2 *', nothing)],
      ['duplicate', () => ctx.schedule('nightly', '0 4 * * *', nothing)],
    ];
    ctx.schedule('nightly', '0 3 * * *', nothing, { timezone: 'Europe/Berlin' });
    for (const [what, attempt] of bad) {
      try {
        attempt();
        ctx.log.info(`bad ${what}: accepted`);
      } catch (e) {
        ctx.log.info(`bad ${what}: ${(e as { field?: string }).field ?? '-'} ${(e as Error).message}`);
      }
    }
    const record = (schedule: string, slot: Date, late: boolean) => {
      if (!ctx.isInRecovery()) ctx.sql`INSERT INTO public.ticks (schedule, slot, late, pid) VALUES (${schedule}, ${slot}, ${late}, ${ctx.worker.pid})`;
    };
    ctx.schedule('tick', '2 seconds', (run) => {
      record('tick', run.slot, run.late);
      ctx.log.info(`tick ${run.slot.toISOString()} recovery=${ctx.isInRecovery()} recorded=${run.recorded} late=${run.late}`);
    });
    ctx.schedule('minutely', '* * * * *', (run) => record('minutely', run.slot, run.late));
    // unsubscribes at its first run: one run per process
    const off: () => void = ctx.schedule('once', '1 seconds', () => off());
    ctx.schedule('boom', '3 seconds', () => {
      throw new Error('boom');
    });
    ctx.schedule('slow', '5 seconds', async (run) => {
      record('slow', run.slot, run.late);
      ctx.log.info(`slow started ${run.slot.toISOString()}`);
      await new Promise((resolve) => setTimeout(resolve, 4000));
    });
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
