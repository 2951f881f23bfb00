/** Another worker of the same server: logs a tick every 100 ms, paused debugger or not. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'ticker',
  async main(ctx) {
    for (let n = 1; !ctx.signal.aborted; n++) {
      ctx.log.info('tick ' + n);
      await ctx.sleep(100);
    }
  },
});
