/** Logs a line that carries a terminal escape (a window title), then idles. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'hup',
  async main(ctx) {
    ctx.log.info('title \x1b]0;pwned\x07 here');
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
