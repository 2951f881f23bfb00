/** Records every notification in public.sink_got, as fast as they come. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'sec_sink',
  restart: 1,
  searchPath: ['public'],
  async main(ctx) {
    ctx.sql`CREATE TABLE IF NOT EXISTS sink_got (n int)`;
    for await (const m of ctx.messages()) ctx.sql`INSERT INTO sink_got VALUES (${(m.payload as { n: number }).n})`;
  },
});
