/**
 * vitest setup (vitest.config.ts setupFiles): when a test fails, print the
 * server log of every cluster still alive, so the failure explains itself.
 */
import { afterEach } from 'vitest';
import { liveClusters } from './cluster';

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  for (const c of liveClusters) {
    process.stderr.write(`\n----- server log of ${c.datadir} (last 150 lines) -----\n${c.logTail(150)}\n-----\n`);
  }
});
