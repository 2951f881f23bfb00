/**
 * The evaluator: a worker (test/workers/templates/evaluator.ts) that runs JavaScript sent by the
 * test through a jobs table, so one worker can exercise many cases against the real runtime:
 *   await inWorker(cluster, 'return ctx.sql`SELECT 1 AS x`')
 * Results are encoded so bigint, Date, Uint8Array, undefined survive JSON.
 */
import type pg from 'pg';
import { Cluster, type ClusterOptions, waitFor } from './cluster';

/** JS for a job: declares gc(), a full GC (V8's gc exposed at run time). */
export const GC = `const v8 = require('v8'); v8.setFlagsFromString('--expose-gc'); const gc = require('vm').runInNewContext('gc');`;

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

async function insertJob(client: pg.Client, code: string): Promise<number> {
  const { rows } = await client.query<{ id: number }>('INSERT INTO pgnw_jobs (code) VALUES ($1) RETURNING id', [code]);
  return rows[0].id;
}

async function awaitJob(client: pg.Client, id: number, timeoutMs: number): Promise<any> {
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
}

async function withClient<T>(cluster: Cluster, database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await cluster.client(database);
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Queues `code` (the body of an async function of ctx, PgError, require) for the evaluator; returns the job's id. */
export function submit(cluster: Cluster, code: string, database = 'postgres'): Promise<number> {
  return withClient(cluster, database, (client) => insertJob(client, code));
}

/** Waits for a job queued with submit(); returns its value or throws its error (with the fields in `job`). */
export function jobResult(cluster: Cluster, id: number, database = 'postgres', timeoutMs = 20000): Promise<any> {
  return withClient(cluster, database, (client) => awaitJob(client, id, timeoutMs));
}

/** Runs `code` (the body of an async function of ctx, PgError, require) in the evaluator; returns its value or throws. */
export function inWorker(cluster: Cluster, code: string, database = 'postgres', timeoutMs = 20000): Promise<any> {
  return withClient(cluster, database, async (client) => awaitJob(client, await insertJob(client, code), timeoutMs));
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

/** Waits until an evaluator has created its jobs table and said so (in the log after `from`). */
export async function evaluatorReady(cluster: Cluster, from = 0): Promise<void> {
  await cluster.waitForLog(/evaluator: evaluator ready/, 20000, from);
}

/**
 * Restarts the evaluator (node_worker.restart) and waits until the new process is ready; returns
 * its pid. A fresh process per case: each case is one failure, not the next in a crash loop.
 */
export async function restartEvaluator(cluster: Cluster): Promise<number> {
  const before = await cluster.waitForWorker('evaluator');
  const from = cluster.log().length;
  await cluster.query("CREATE EXTENSION IF NOT EXISTS pg_node_worker; SELECT node_worker.restart('evaluator')");
  const pid = await cluster.waitForWorker('evaluator', 20000, before);
  await evaluatorReady(cluster, from);
  return pid;
}

export interface EvaluatorClusterOptions extends ClusterOptions {
  /** also run an idle worker named bystander, to show that what the evaluator does leaves it alone */
  bystander?: boolean;
  /** how to start the server (default: cluster.start()) */
  start?: (cluster: Cluster) => void | Promise<void>;
}

/** A started cluster running the evaluator worker, ready for inWorker(). */
export async function evaluatorCluster(opts: EvaluatorClusterOptions = {}): Promise<Cluster> {
  const { bystander, start, ...clusterOptions } = opts;
  const cluster = await Cluster.create(clusterOptions);
  await cluster.deployTemplate('evaluator', 'evaluator');
  if (bystander) await cluster.deployTemplate('idle', 'bystander');
  await (start ? start(cluster) : cluster.start());
  await evaluatorReady(cluster);
  return cluster;
}
