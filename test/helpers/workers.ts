/**
 * Worker sources the tests deploy more than once.
 */

/** Idles on ctx.sleep until SIGTERM; logs start and a clean stop, and reloads with a setting. */
export const idleWorker = (name: string, extra = '') => `
import { defineWorker } from 'pg-node-worker';
export default defineWorker({ searchPath: ['public'],
  name: '${name}',
  restart: 1,
  ${extra}
  async main(ctx) {
    ctx.log.info('started as pid ' + ctx.worker.pid);
    ctx.onReload(() => ctx.log.info('reloaded, setting is ' + ctx.setting('pgnw_test.value')));
    while (!ctx.signal.aborted) await ctx.sleep(60000);
    ctx.log.info('stopping cleanly');
  },
});
`;

/** Spins in \`while (true) {}\` after logging 'entering busy loop'. */
export const spinningWorker = (name: string) => `
import { defineWorker } from 'pg-node-worker';
export default defineWorker({ searchPath: ['public'], name: '${name}', async main(ctx) {
  ctx.log.info('entering busy loop');
  let i = 0;
  while (true) { i++; }
} });
`;

/** Sits in SELECT pg_sleep(600) after logging 'entering pg_sleep'; logs how it ended. */
export const sleepingWorker = (name: string) => `
import { defineWorker } from 'pg-node-worker';
export default defineWorker({ searchPath: ['public'], name: '${name}', async main(ctx) {
  ctx.log.info('entering pg_sleep');
  try { ctx.sql\`SELECT pg_sleep(600)\`; } catch (e: any) { ctx.log.info('pg_sleep ended with ' + e.code + ', aborted=' + ctx.signal.aborted); }
} });
`;
