/** A start: 'postmaster' worker (no database connection) that stores 7 in shared region early. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'early',
  start: 'postmaster',
  restart: 'never',
  async main(ctx) {
    Atomics.store(new Int32Array(ctx.shared('early', 8)), 0, 7);
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
