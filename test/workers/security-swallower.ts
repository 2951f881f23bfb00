/** Keeps running SQL and swallows every error, also the cancel that asks it to stop. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'swallower',
  restart: 1,
  async main(ctx) {
    ctx.log.info('swallower running');
    for (;;) {
      try {
        ctx.sql`SELECT pg_sleep(0.05)`;
      } catch {
        // deliberately ignored
      }
      await new Promise((r) => setImmediate(r));
    }
  },
});
