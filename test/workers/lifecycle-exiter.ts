/** Calls process.exit(3) at once, which the runtime maps to exit code 1. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'exiter',
  restart: 'never',
  async main(ctx) {
    ctx.log.info('exiter calls process.exit(3)');
    process.exit(3);
  },
});
