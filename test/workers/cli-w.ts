/** A worker to deploy into fake data directories (test/cli.test.ts): every field at its default. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'w',
  async main() {},
});
