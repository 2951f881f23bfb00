/** A start: 'postmaster' worker: no database connection, so its SQL is refused; it logs how. */
import { defineWorker, PgError } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'early',
  start: 'postmaster',
  restart: 'never',
  async main(ctx) {
    try {
      ctx.sql`SELECT 1`;
    } catch (e) {
      const err = e as PgError;
      ctx.log.info('early: no SQL: ' + err.code + ' ' + err.message + ' / database=' + ctx.worker.database);
    }
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
