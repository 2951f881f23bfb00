/**
 * A superuser worker in a database another role owns, with an unqualified INSERT INTO audit
 * (no searchPath: the name must not resolve to a table of that role's). Reports the settings it
 * runs with.
 */
import { defineWorker, PgError } from 'pg-node-worker';

export default defineWorker({
  name: 'sec_owned',
  database: 'owned',
  restart: 1,
  async main(ctx) {
    ctx.sql`CREATE TABLE IF NOT EXISTS public.worker_log (at timestamptz DEFAULT now())`;
    ctx.onCall((p) => {
      switch ((p as { op?: string } | null)?.op) {
        case 'audit':
          try {
            ctx.sql`INSERT INTO audit VALUES (1)`;
            return 'inserted';
          } catch (e) {
            return e instanceof PgError ? e.code : String(e);
          }
        case 'write':
          ctx.sql`INSERT INTO public.worker_log DEFAULT VALUES`;
          return 'written';
        case 'settings':
          return ctx.sql`SELECT current_setting('default_transaction_read_only') AS ro,
                                current_setting('search_path') AS sp,
                                current_setting('statement_timeout') AS st`[0];
        default:
          return null;
      }
    });
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
