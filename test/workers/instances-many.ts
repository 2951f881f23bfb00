/** Three processes of one worker, each logging its instance number; they idle until stopped. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'many',
  instances: 3,
  restart: 1,
  async main(ctx) {
    ctx.log.info(`instance ${ctx.worker.instance} runs as pid ${ctx.worker.pid}`);
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
