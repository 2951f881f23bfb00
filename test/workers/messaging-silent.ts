/** Idles without a call handler. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'silent',
  async main(ctx) {
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
