/** A worker to deploy into a fake data directory (test/cli.test.ts): restart 5, otherwise defaults. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'counter',
  restart: 5,
  async main() {},
});
