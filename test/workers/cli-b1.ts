/** A worker for `build` (test/cli.test.ts), in a database other than the default. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'b1',
  database: 'db',
  async main() {},
});
