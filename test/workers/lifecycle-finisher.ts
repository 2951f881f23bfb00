/** Logs once and returns from main: exit 0, not restarted. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'finisher',
  restart: 1,
  async main(ctx) {
    ctx.log.info('finisher done');
  },
});
