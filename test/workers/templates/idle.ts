/** Idles on ctx.sleep until SIGTERM; logs its start and a clean stop, and a setting on reload. */
import { defineWorker, type WorkerDefinition } from 'pg-node-worker';

export function idle(name: string, opts: Pick<WorkerDefinition, 'callers'> = {}) {
  return defineWorker({
    searchPath: ['public'],
    name,
    restart: 1,
    ...opts,
    async main(ctx) {
      ctx.log.info('started as pid ' + ctx.worker.pid);
      ctx.onReload(() => ctx.log.info('reloaded, setting is ' + ctx.setting('pgnw_test.value')));
      while (!ctx.signal.aborted) await ctx.sleep(60000);
      ctx.log.info('stopping cleanly');
    },
  });
}
