/** Logs 'code <version> running as pid <pid>' and idles: the versions of one worker's code. */
import { defineWorker } from 'pg-node-worker';

export function versioned(name: string, version: string) {
  return defineWorker({
    name,
    restart: 1,
    async main(ctx) {
      ctx.log.info(`code ${version} running as pid ` + ctx.worker.pid);
      while (!ctx.signal.aborted) await ctx.sleep(60000);
    },
  });
}
