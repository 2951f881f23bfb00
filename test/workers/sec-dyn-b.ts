/** A dynamic worker that records the notifications it gets, with its own name, in public.dyn_got. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'dyn_b',
  restart: 'never',
  callers: ['dyn_b_callers'],
  searchPath: ['public'],
  async main(ctx) {
    ctx.sql`CREATE TABLE IF NOT EXISTS dyn_got (worker text, payload jsonb)`;
    ctx.log.info('dyn_b running');
    for await (const m of ctx.messages()) ctx.sql`INSERT INTO dyn_got VALUES ('dyn_b', ${JSON.stringify(m.payload)}::jsonb)`;
  },
});
