/** A bundle that starts, says so and ends (exit 0: not restarted). */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'noop',
  restart: 'never',
  async main(ctx) {
    ctx.log.info('noop ran');
  },
});
