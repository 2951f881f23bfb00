/** Fails with an error whose message carries terminal escapes (from the SQL text of a cast). */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'evil',
  restart: 'never',
  async main(ctx) {
    ctx.sql.unsafe("SELECT E'\\x1b]0;pwned\\x07\\x1b[2J'::text::int");
  },
});
