/**
 * Sleeps 30 s at a time and logs why each sleep ended and how long it took: a reload must end
 * a pending ctx.sleep() as it sets a C worker's latch.
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'napper',
  restart: 1,
  async main(ctx) {
    ctx.log.info('napping');
    while (!ctx.signal.aborted) {
      const began = performance.now();
      const why = await ctx.sleep(30000);
      ctx.log.info(`sleep ended with ${why} after ${Math.round(performance.now() - began)} ms`);
    }
  },
});
