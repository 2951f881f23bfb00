/** Sleeps 30 s at a time and logs how each sleep ended ('wake', 'timeout' or 'abort'). */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'napper',
  async main(ctx) {
    while (!ctx.signal.aborted) {
      const why = await ctx.sleep(30000);
      ctx.log.info('sleep ended: ' + why);
    }
  },
});
