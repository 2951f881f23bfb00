/** Records in table seen of its database the role and database its SQL runs as, then idles. */
import { defineWorker } from 'pg-node-worker';

export function whoami(name: string, database: string, role: string) {
  return defineWorker({
    searchPath: ['public'],
    name,
    database,
    role,
    async main(ctx) {
      const r = ctx.sql<{ u: string; d: string }>`SELECT current_user AS u, current_database() AS d`[0];
      ctx.sql`CREATE TABLE IF NOT EXISTS seen (u text, d text)`;
      ctx.sql`INSERT INTO seen VALUES (${r.u}, ${r.d})`;
      while (!ctx.signal.aborted) await ctx.sleep(60000);
    },
  });
}
