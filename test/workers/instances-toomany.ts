/** Asks for more instances than node_worker.max_workers leaves room for in its test. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'toomany',
  instances: 5,
  async main(ctx) {
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
