/**
 * A worker that runs JavaScript sent by the test through a jobs table, so
 * one worker can exercise many cases against the real runtime:
 *   await inWorker(cluster, 'return ctx.sql`SELECT 1 AS x`')
 * Results are encoded so bigint, Date, Uint8Array, undefined survive JSON.
 */
import { Cluster, type ClusterOptions, waitFor } from './cluster';

export const EVAL_WORKER_SOURCE = (name = 'evaluator', database = 'postgres') => `
import { defineWorker, PgError } from 'pg-node-worker';

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

function errorFields(e: any) {
  const out: Record<string, unknown> = { name: e?.name, message: e?.message, isPgError: e instanceof PgError };
  for (const k of ['code', 'severity', 'detail', 'hint', 'position', 'schema', 'table', 'column', 'constraint', 'dataType', 'where'])
    if (e && e[k] !== undefined) out[k] = e[k];
  return out;
}

export default defineWorker({ searchPath: ['public'],
  name: ${JSON.stringify(name)},
  database: ${JSON.stringify(database)},
  restart: 1,
  async main(ctx) {
    ctx.sql\`CREATE TABLE IF NOT EXISTS pgnw_jobs (id serial PRIMARY KEY, code text NOT NULL, done bool NOT NULL DEFAULT false, result jsonb, error jsonb)\`;
    ctx.log.info('evaluator ready');
    while (!ctx.signal.aborted) {
      const jobs = ctx.sql\`SELECT id, code FROM pgnw_jobs WHERE NOT done ORDER BY id\`;
      for (const job of jobs as any[]) {
        let result: unknown = null, error: unknown = null;
        try {
          const fn = new Function('ctx', 'PgError', 'require', '"use strict"; return (async () => {' + job.code + '})()');
          result = encode(await fn(ctx, PgError, require));
        } catch (e) {
          error = errorFields(e);
        }
        ctx.sql\`UPDATE pgnw_jobs SET done = true, result = \${JSON.stringify({ v: result })}::jsonb, error = \${error === null ? null : JSON.stringify(error)}::jsonb WHERE id = \${job.id}\`;
      }
      await ctx.sleep(jobs.length ? 0 : 20);
    }
  },
});
`;

export function decode(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decode);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('$bigint' in o) return BigInt(o.$bigint as string);
    if ('$number' in o) return Number(o.$number);
    if ('$date' in o) return o.$date === null ? new Date(NaN) : new Date(o.$date as string);
    if ('$bytes' in o) return Uint8Array.from(o.$bytes as number[]);
    if ('$undefined' in o) return undefined;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = decode(x);
    return out;
  }
  return v;
}

export interface JobError {
  name: string;
  message: string;
  isPgError: boolean;
  code?: string;
  [k: string]: unknown;
}

/** Runs `code` (the body of an async function of ctx, PgError) in the worker; returns its value or throws. */
export async function inWorker(cluster: Cluster, code: string, database = 'postgres', timeoutMs = 20000): Promise<any> {
  const client = await cluster.client(database);
  try {
    const { rows } = await client.query<{ id: number }>('INSERT INTO pgnw_jobs (code) VALUES ($1) RETURNING id', [code]);
    const id = rows[0].id;
    const row = await waitFor(`job ${id}`, async () => {
      const r = await client.query('SELECT done, result, error FROM pgnw_jobs WHERE id = $1', [id]);
      return r.rows[0]?.done ? r.rows[0] : null;
    }, timeoutMs, 10);
    if (row.error) {
      const e = new Error(row.error.message) as Error & { job: JobError };
      e.job = row.error;
      throw e;
    }
    return decode(row.result.v);
  } finally {
    await client.end();
  }
}

/** Runs code expected to throw; returns the error's fields. */
export async function inWorkerError(cluster: Cluster, code: string, database = 'postgres'): Promise<JobError> {
  try {
    await inWorker(cluster, code, database);
  } catch (e) {
    if ((e as { job?: JobError }).job) return (e as { job: JobError }).job;
    throw e;
  }
  throw new Error('expected the job to throw, it returned');
}

/** Waits until the evaluator has created its jobs table and said so. */
export async function evaluatorReady(cluster: Cluster, database = 'postgres'): Promise<void> {
  await cluster.waitForLog(/evaluator ready/, 20000);
  void database;
}

/** A started cluster running the evaluator worker, ready for inWorker(). */
export async function evaluatorCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const cluster = await Cluster.create(opts);
  cluster.deploy('evaluator', EVAL_WORKER_SOURCE());
  await cluster.start();
  await evaluatorReady(cluster);
  return cluster;
}
