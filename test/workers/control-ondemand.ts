/** Runs only when launched: records its args and database in public.ondemand_runs, then ends. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'ondemand',
  restart: 'never',
  autostart: false,
  async main(ctx) {
    ctx.sql`CREATE TABLE IF NOT EXISTS ondemand_runs (pid int, args jsonb, db text)`;
    ctx.sql`INSERT INTO ondemand_runs VALUES (${ctx.worker.pid}, ${JSON.stringify(ctx.args)}::jsonb, current_database())`;
  },
});
