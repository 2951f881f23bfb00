/**
 * For test/testing.test.ts: answers calls with what it was sent, logs notifications and wakes;
 * launched with args it logs them and ends (a dynamic worker).
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'svc',
  restart: 'never',
  async main(ctx) {
    if (ctx.args !== null) {
      ctx.log.info(`launched with ${JSON.stringify(ctx.args)}`);
      return;
    }
    ctx.onCall((payload, meta) => ({ echo: payload, role: meta.role }));
    ctx.onMessage((m) => ctx.log.info(`message ${JSON.stringify(m.payload)}`));
    ctx.log.info('ready');
    while (!ctx.signal.aborted) {
      const why = await ctx.sleep(60000);
      ctx.log.info(`sleep ended: ${why}`);
    }
  },
});
