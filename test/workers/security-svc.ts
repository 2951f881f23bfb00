/**
 * The security suite's main worker: serves calls that report what the worker saw, and records
 * every notification it handles in public.got. Its consumer can be slowed down ('pace') or held
 * until the next wake() ('hold'), to fill its inbox on purpose. A notification with `gate` first
 * inserts into public.gate, a statement that waits while a test holds that table's lock.
 */
import { defineWorker } from 'pg-node-worker';

let paceMs = 0;
let held = false;

export default defineWorker({
  name: 'sec_svc',
  restart: 1,
  callers: ['svc_callers', 'Reporting'],
  searchPath: ['public'],
  heapLimitMb: 64,
  async main(ctx) {
    ctx.sql`CREATE TABLE IF NOT EXISTS got (seq bigserial PRIMARY KEY, n int, role text, redelivered bool, pid int)`;
    ctx.sql`CREATE TABLE IF NOT EXISTS locked (x int)`;
    ctx.sql`CREATE TABLE IF NOT EXISTS gate (n int)`;
    ctx.onCall(async (p, meta) => {
      const op = (p as { op?: string; ms?: number } | null) ?? {};
      switch (op.op) {
        case 'meta':
          return { role: meta.role, pid: meta.pid };
        case 'pace':
          paceMs = op.ms ?? 0;
          return null;
        case 'hold':
          held = true;
          return null;
        case 'read-locked':
          return ctx.sql`SELECT count(*)::int AS n FROM locked`[0].n;
        case 'nul': {
          const attempt = (fn: () => unknown) => {
            try {
              fn();
              return 'no error';
            } catch (e) {
              return (e as Error).name;
            }
          };
          return {
            relation: attempt(() => ctx.buffers.prewarm('got\0secret')),
            fork: attempt(() => ctx.buffers.residency('got', 'main\0x' as 'main')),
          };
        }
        default:
          return null;
      }
    });
    for await (const m of ctx.messages()) {
      while (held) {
        if ((await ctx.sleep(60000)) === 'wake') held = false;
        if (ctx.signal.aborted) return;
      }
      if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
      const { n = null, gate = false } = (m.payload as { n?: number; gate?: boolean } | null) ?? {};
      if (gate) ctx.sql`INSERT INTO gate VALUES (${n})`;
      ctx.sql`INSERT INTO got (n, role, redelivered, pid) VALUES (${n}, ${m.role}, ${m.redelivered}, ${ctx.worker.pid})`;
    }
  },
});
