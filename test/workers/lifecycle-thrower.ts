/** Throws from a timer 200 ms after it started: an uncaught exception; restarted after 2 s. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'thrower',
  restart: 2,
  async main(ctx) {
    ctx.log.info('thrower started');
    setTimeout(() => {
      throw new Error('uncaught on purpose');
    }, 200);
    await ctx.sleep(60000);
  },
});
