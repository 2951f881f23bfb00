/** The worker of bench/call.ts: answers every node_worker.call('svc', p) with { echo: p }. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'svc',
  restart: 1,
  async main(ctx) {
    ctx.onCall((p) => ({ echo: p }));
    while (!ctx.signal.aborted) await ctx.sleep(3600000);
  },
});
