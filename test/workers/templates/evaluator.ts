/**
 * A worker that runs JavaScript sent by the test through a jobs table (test/helpers/evalWorker.ts:
 * inWorker), so one worker exercises many cases against the real runtime. Each job is the body
 * of an async function of (ctx, PgError, require); its result is encoded so that bigint, Date,
 * Uint8Array and undefined survive JSON.
 */
import { defineWorker, PgError, type WorkerDefinition } from 'pg-node-worker';

function encode(v: unknown): unknown {
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (typeof v === 'number' && !Number.isFinite(v)) return { $number: String(v) };
  if (v instanceof Date) return { $date: Number.isNaN(v.getTime()) ? null : v.toISOString() };
  if (v instanceof Uint8Array) return { $bytes: Array.from(v), $ctor: v.constructor.name };
  if (v === undefined) return { $undefined: true };
  if (Array.isArray(v)) return v.map(encode);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = encode(x);
    return out;
  }
  return v;
}

function errorFields(e: unknown): Record<string, unknown> {
  const err = e as Record<string, unknown> | null | undefined;
  const out: Record<string, unknown> = { name: err?.name, message: err?.message, isPgError: e instanceof PgError };
  for (const k of ['code', 'severity', 'detail', 'hint', 'position', 'schema', 'table', 'column', 'constraint', 'dataType', 'where'])
    if (err && err[k] !== undefined) out[k] = err[k];
  return out;
}

export function evaluator(name: string, opts: Pick<WorkerDefinition, 'database' | 'role'> = {}) {
  return defineWorker({
    searchPath: ['public'],
    name,
    database: opts.database ?? 'postgres',
    restart: 1,
    ...(opts.role === undefined ? {} : { role: opts.role }),
    async main(ctx) {
      ctx.sql`CREATE TABLE IF NOT EXISTS pgnw_jobs (id serial PRIMARY KEY, code text NOT NULL, done bool NOT NULL DEFAULT false, result jsonb, error jsonb)`;
      ctx.log.info('evaluator ready');
      while (!ctx.signal.aborted) {
        const jobs = ctx.sql<{ id: number; code: string }>`SELECT id, code FROM pgnw_jobs WHERE NOT done ORDER BY id`;
        for (const job of jobs) {
          let result: unknown = null;
          let error: unknown = null;
          try {
            const fn = new Function('ctx', 'PgError', 'require', '"use strict"; return (async () => {' + job.code + '})()');
            result = encode(await fn(ctx, PgError, require));
          } catch (e) {
            error = errorFields(e);
          }
          ctx.sql`UPDATE pgnw_jobs SET done = true, result = ${JSON.stringify({ v: result })}::jsonb, error = ${error === null ? null : JSON.stringify(error)}::jsonb WHERE id = ${job.id}`;
        }
        await ctx.sleep(jobs.length ? 0 : 20);
      }
    },
  });
}
