/** Records the id of every notification it handles, for the transaction-shape fuzz test. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'fz',
  restart: 1,
  searchPath: ['public'],
  async main(ctx) {
    ctx.sql`CREATE TABLE IF NOT EXISTS fz_got (id int, redelivered bool, pid int)`;
    ctx.onCall((p) => p);
    for await (const m of ctx.messages())
      ctx.sql`INSERT INTO fz_got VALUES (${(m.payload as { id: number }).id}, ${m.redelivered}, ${ctx.worker.pid})`;
  },
});
