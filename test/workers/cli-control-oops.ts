/** Fails at start with a two-line error message: status shows its first line. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'oops',
  restart: 'never',
  async main() {
    throw new Error('oops on the first line\nand more on the second');
  },
});
