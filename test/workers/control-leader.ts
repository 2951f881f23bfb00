/** Launches two jobs (ctx.launch), awaits their exit, then tries to launch a worker that is not deployed. */
import { defineWorker, PgError } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'leader',
  restart: 'never',
  async main(ctx) {
    const a = ctx.launch('job', { n: 1, sleepMs: 200 });
    const b = ctx.launch('job', { n: 2, sleepMs: 400 });
    ctx.log.info('launched ' + a.pid + ' and ' + b.pid);
    const codes = await Promise.all([a.exited, b.exited]);
    ctx.log.info('children exited with ' + codes.join(','));
    try {
      ctx.launch('nope');
    } catch (e) {
      ctx.log.info('launch of nope: ' + (e as PgError).code + ' ' + (e as Error).message);
    }
  },
});
