/** Fails at once (a relation that does not exist): a crash loop for the supervisor to stop. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'crasher',
  restart: 1,
  async main(ctx) {
    ctx.sql`SELECT * FROM no_such_table`;
  },
});
