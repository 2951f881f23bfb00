// A worker that bundles an npm package stating engines.node (test/cli.test.ts).
import abbrev from 'abbrev';
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'cli_engines',
  async main(ctx) {
    ctx.log.info(Object.keys(abbrev(['engines'])).join(','));
  },
});
