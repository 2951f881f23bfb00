/**
 * A worker stuck where a shutdown must still reach it: in JavaScript (`while (true) {}`, after
 * logging 'entering busy loop'), or inside SQL (SELECT pg_sleep(600), after logging 'entering
 * pg_sleep'; it logs how the statement ended).
 */
import { defineWorker, PgError } from 'pg-node-worker';

export function stuck(name: string, where: 'js' | 'sql') {
  return defineWorker({
    searchPath: ['public'],
    name,
    async main(ctx) {
      if (where === 'js') {
        ctx.log.info('entering busy loop');
        let i = 0;
        while (true) i++;
      }
      ctx.log.info('entering pg_sleep');
      try {
        ctx.sql`SELECT pg_sleep(600)`;
      } catch (e) {
        ctx.log.info('pg_sleep ended with ' + (e as PgError).code + ', aborted=' + ctx.signal.aborted);
      }
    },
  });
}
