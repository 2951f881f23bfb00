/**
 * Serves calls by op (echo, a slow timer, a failure with a code, a big result, SQL, a busy loop)
 * and records every notification, with its sender's role, in public.got.
 */
import { defineWorker } from 'pg-node-worker';

type Op =
  | { op: 'echo'; value: unknown }
  | { op: 'slow'; ms: number }
  | { op: 'fail'; n: number; code?: string }
  | { op: 'big'; n: number }
  | { op: 'sql'; v: number }
  | { op: 'block'; ms: number };

export default defineWorker({
  searchPath: ['public'],
  name: 'svc',
  restart: 1,
  callers: ['svc_callers'],
  async main(ctx) {
    ctx.sql`CREATE TABLE IF NOT EXISTS got (seq serial PRIMARY KEY, payload jsonb, role text)`;
    ctx.onCall(async (payload, meta) => {
      const p = payload as Op | null;
      switch (p?.op) {
        case 'echo':
          return { got: p.value, meta };
        case 'slow':
          await new Promise((r) => setTimeout(r, p.ms));
          return { slept: p.ms };
        case 'fail': {
          const e = new Error('boom ' + p.n) as Error & { code?: string };
          if (p.code) e.code = p.code;
          throw e;
        }
        case 'big':
          return 'x'.repeat(p.n);
        case 'sql':
          return ctx.sql<{ r: number }>`SELECT ${p.v}::int + 1 AS r`[0].r;
        case 'block': {
          const end = performance.now() + p.ms;
          while (performance.now() < end);
          return 'unblocked';
        }
        default:
          return null;
      }
    });
    for await (const m of ctx.messages()) {
      ctx.sql`INSERT INTO got (payload, role) VALUES (${JSON.stringify(m.payload)}::jsonb, ${m.role})`;
    }
  },
});
