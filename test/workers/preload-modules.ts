/** Logs which of Node's built-in modules had been loaded when main began (preload.test.ts). */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'modules',
  async main(ctx) {
    const loaded = (process as unknown as { moduleLoadList: string[] }).moduleLoadList;
    console.warn(`built-in modules at start: ${loaded.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)).join(' ')}`);
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
