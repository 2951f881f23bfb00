/** Logs the file it runs from: its bundle is a symbolic link to a file outside the worker directory. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'linked',
  restart: 'never',
  async main(ctx) {
    ctx.log.info('linked: running from ' + __filename);
  },
});
