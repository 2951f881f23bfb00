/**
 * Waits for calls and notifications only: no timer, nothing else alive in the event loop
 * between them. Records each notification in public.waiter_got; a call answers, after making
 * some garbage when asked (a GC, whose follow-up tasks Node's platform posts to the loop).
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'waiter',
  async main(ctx) {
    ctx.sql`CREATE TABLE IF NOT EXISTS waiter_got (n int)`;
    ctx.onCall((p) => {
      const op = p as { churn?: number };
      let kept = 0;
      for (let i = 0; i < (op.churn ?? 0); i++) kept += new Array(1000).fill(i).length;
      return { kept };
    });
    for await (const m of ctx.messages()) ctx.sql`INSERT INTO waiter_got VALUES (${(m.payload as { n: number }).n})`;
  },
});
