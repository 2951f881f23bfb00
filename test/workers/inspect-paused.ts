/** Stops at a `debugger;` statement on every turn of its loop once a debugger is attached. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'inspected',
  async main(ctx) {
    let turns = 0;
    ctx.log.info('inspected: running');
    while (!ctx.signal.aborted) {
      turns++;
      const answer = turns * 2;
      // eslint-disable-next-line no-debugger
      debugger;
      if (answer !== turns * 2) ctx.log.warning('changed by the debugger: ' + answer);
      await ctx.sleep(100);
    }
    ctx.log.info('inspected: stopping after ' + turns + ' turns');
  },
});
