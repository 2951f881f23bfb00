/** Launches ondemand (ctx.launch) in the database its args name, and logs how that went. */
import { defineWorker, PgError } from 'pg-node-worker';

export default defineWorker({
  name: 'spawner',
  restart: 'never',
  autostart: false,
  async main(ctx) {
    const { database } = ctx.args as { database: string };
    try {
      const child = ctx.launch('ondemand', { from: 'spawner' }, { database });
      ctx.log.info(`spawner: child in ${database} exited with ${await child.exited}`);
    } catch (e) {
      ctx.log.info(`spawner: launch in ${database} failed: ${(e as PgError).code} ${(e as Error).message}`);
    }
  },
});
