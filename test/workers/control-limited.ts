/** Runs only when launched, as role limited_role: for the CONNECT privilege check of launch(). */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'limited',
  role: 'limited_role',
  restart: 'never',
  autostart: false,
  async main(ctx) {
    ctx.log.info('limited ran in ' + ctx.worker.database);
  },
});
