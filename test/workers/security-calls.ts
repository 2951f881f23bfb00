/**
 * Call handlers that outlive their callers: one that waits for meta.signal and records why it
 * fired, one that ignores it and never settles, one that takes a while (and how many of those
 * still run).
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'sec_calls',
  restart: 1,
  maxPendingCalls: 20,
  searchPath: ['public'],
  async main(ctx) {
    ctx.sql`CREATE TABLE IF NOT EXISTS aborts (reason text, started timestamptz)`;
    let started = 0;
    let slow = 0;
    ctx.onCall(async (p, meta) => {
      started++;
      switch ((p as { op?: string } | null)?.op) {
        case 'wait-abort': {
          await new Promise((resolve) => meta.signal.addEventListener('abort', resolve, { once: true }));
          const reason = meta.signal.reason as Error;
          ctx.sql`INSERT INTO aborts (reason) VALUES (${reason.name})`;
          return null;
        }
        case 'hang':
          return new Promise(() => undefined);
        case 'slow':
          slow++;
          await new Promise((resolve) => setTimeout(resolve, 20));
          slow--;
          return 'done';
        case 'started':
          return started;
        case 'state':
          return { started, slow };
        default:
          return 'ok';
      }
    });
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
