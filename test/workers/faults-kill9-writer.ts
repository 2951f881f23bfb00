/** Commits ten rows at a time in a loop, so that a kill lands in the middle of its transactions. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'writer',
  restart: 1,
  async main(ctx) {
    ctx.sql`CREATE TABLE IF NOT EXISTS writer_rows (n bigserial PRIMARY KEY, at timestamptz DEFAULT now())`;
    ctx.log.info('writer: writing as pid ' + ctx.worker.pid);
    while (!ctx.signal.aborted) {
      ctx.transaction((tx) => {
        for (let i = 0; i < 10; i++) tx.sql`INSERT INTO writer_rows DEFAULT VALUES`;
      });
      await ctx.sleep(1);
    }
  },
});
