/**
 * Sleeps 30 s at a time and logs how each sleep ended ('wake', 'timeout', 'reload' or 'abort').
 * After a sleep that a wake ended, it works for 3 s (awaiting a timer, not sleeping) between
 * "working" and "worked": a wake or reload sent then must end the next sleep at once.
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'napper',
  async main(ctx) {
    while (!ctx.signal.aborted) {
      const why = await ctx.sleep(30000);
      ctx.log.info('sleep ended: ' + why);
      if (why === 'wake') {
        ctx.log.info('working');
        await new Promise((resolve) => setTimeout(resolve, 3000));
        ctx.log.info('worked');
      }
    }
  },
});
