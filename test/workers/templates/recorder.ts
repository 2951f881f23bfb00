/**
 * A dynamic worker (restart: 'never') that members of <name>_callers may notify: it records each
 * notification's payload, with its own name, in public.dyn_got.
 */
import { defineWorker } from 'pg-node-worker';

export function recorder(name: string) {
  return defineWorker({
    name,
    restart: 'never',
    callers: [`${name}_callers`],
    searchPath: ['public'],
    async main(ctx) {
      ctx.sql`CREATE TABLE IF NOT EXISTS dyn_got (worker text, payload jsonb)`;
      ctx.log.info(`${name} running`);
      for await (const m of ctx.messages()) ctx.sql`INSERT INTO dyn_got VALUES (${name}, ${JSON.stringify(m.payload)}::jsonb)`;
    },
  });
}
