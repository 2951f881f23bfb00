/** Fails with an error whose message carries terminal escapes, C1 and bidi controls (from a parameter). */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'evil2',
  restart: 'never',
  async main(ctx) {
    const evil = '\x1b]0;pwned\x07\u009b31m\u202eevil\r';
    ctx.sql`SELECT ${evil}::text::int`;
  },
});
