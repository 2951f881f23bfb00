/** Its main throws at start (a variable set at import says so; it never is). */
import { defineWorker } from 'pg-node-worker';

const ok = process.env.PGNW_NEVER_SET;

export default defineWorker({
  searchPath: ['public'],
  name: 'broken',
  restart: 'never',
  async main() {
    if (!ok) throw new Error('broken at start');
  },
});
