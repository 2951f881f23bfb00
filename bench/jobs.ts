/**
 * `npm run bench:jobs` (also run by `npm run bench`): durable job queues on ONE throwaway cluster
 * (test/helpers/cluster.ts; fsync off). Figures, not a test: nothing asserts on speed.
 *
 * 1. Drain: JOBS no-op jobs are enqueued in one transaction with run_at 1 s ahead, so that they
 *    all become due at once while the worker sleeps on its timer; the worker (bench/workers/
 *    jobsbench.ts) drains them with a synchronous handler (batch BATCH), then the same with an
 *    async one (concurrency = batch = BATCH). jobs/s = JOBS / (the last job's finished_at - the
 *    common run_at). finished_at is the start of the completing transaction, so the last batch's
 *    own time is left out (BATCH of JOBS jobs).
 * 2. Latency with an idle worker (bench/workers/jobslat.ts, which consumes one queue only: a
 *    wake-up makes every consumer of a worker look): LAT_JOBS single enqueues in autocommit,
 *    DELAY_MS apart; the synchronous handler inserts clock_timestamp() at its start. Latency = that - the job's
 *    created_at (the enqueueing transaction's start, so it includes running enqueue() and the
 *    commit). p50 and p99.
 * No comparison with an external queue (graphile-worker) is made here.
 *
 * Writes bench/results/jobs.json. About 15 s. Environment: PGNW_BENCH_JOBS (20000),
 * PGNW_BENCH_JOBS_BATCH (50), PGNW_BENCH_JOBS_LAT (500), PGNW_BENCH_JOBS_DELAY_MS (5).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Cluster, REPO, sleep, waitFor } from '../test/helpers/cluster';
import { benchWorker } from './deploy';

function count(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, not ${JSON.stringify(v)}`);
  return n;
}

const JOBS = count('PGNW_BENCH_JOBS', 20000);
const BATCH = count('PGNW_BENCH_JOBS_BATCH', 50);
const LAT_JOBS = count('PGNW_BENCH_JOBS_LAT', 500);
const DELAY_MS = count('PGNW_BENCH_JOBS_DELAY_MS', 5);

let cluster: Cluster | null = null;

function cleanup(): void {
  const c = cluster;
  cluster = null;
  if (c) void c.destroy();
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(sig, () => {
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
process.on('exit', cleanup);

const status = (msg: string) => process.stderr.write(`bench:jobs: ${msg}\n`);

async function drain(c: Cluster, queue: string): Promise<number> {
  await c.query(`SELECT count(node_worker.enqueue($1, '{}', now() + interval '1 s')) FROM generate_series(1, ${JOBS})`, [queue]);
  await waitFor(`${queue} to drain`, async () => {
    const [{ left }] = await c.query<{ left: number }>("SELECT count(*)::int AS left FROM node_worker.job_store WHERE queue = $1 AND state <> 'done'", [queue]);
    return left === 0;
  }, 300000, 100);
  const [{ s }] = await c.query<{ s: number }>(
    'SELECT extract(epoch FROM max(finished_at) - min(run_at))::float8 AS s FROM node_worker.job_store WHERE queue = $1',
    [queue],
  );
  await c.query('DELETE FROM node_worker.job_store WHERE queue = $1', [queue]);
  return JOBS / s;
}

async function main(): Promise<void> {
  const loadStart = os.loadavg()[0];
  const c = await Cluster.create({ settings: { 'node_worker.jobs_keep_done_s': 3600, 'jobsbench.batch': BATCH } });
  cluster = c;
  await c.deployFile(benchWorker('jobsbench.ts'));
  await c.deployFile(benchWorker('jobslat.ts'));
  await c.start();
  await c.query('CREATE TABLE public.lat (id bigint PRIMARY KEY, started timestamptz NOT NULL)');
  await c.query('CREATE EXTENSION pg_node_worker');
  await c.waitForLog(/jobsbench: jobsbench ready/, 30000);
  await c.waitForLog(/jobslat: jobslat ready/, 30000);

  status(`draining ${JOBS} jobs, synchronous handler`);
  const syncRate = await drain(c, 'jobsbench');
  status(`draining ${JOBS} jobs, async handler`);
  const asyncRate = await drain(c, 'jobsbench.async');

  status(`${LAT_JOBS} single enqueues, ${DELAY_MS} ms apart`);
  const client = await c.client();
  try {
    for (let i = 0; i < LAT_JOBS; i++) {
      await client.query("SELECT node_worker.enqueue('jobslat', '{}')");
      await sleep(DELAY_MS);
    }
  } finally {
    await client.end();
  }
  await waitFor('the latency jobs to run', async () => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM public.lat'))[0].n === LAT_JOBS, 60000);
  const [lat] = await c.query<{ p50: number; p99: number }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY us) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY us) AS p99
       FROM (SELECT extract(epoch FROM l.started - j.created_at)::float8 * 1e6 AS us
               FROM public.lat l JOIN node_worker.job_store j ON j.id = l.id) d`,
  );
  const server = (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0].v;
  const facts = {
    date: new Date().toISOString(),
    nproc: execFileSync('nproc', { encoding: 'utf8' }).trim(),
    server,
    loadStart,
    loadEnd: os.loadavg()[0],
  };
  const rows = [
    { id: 'j1', what: `drain ${JOBS} no-op jobs, synchronous handler (batch ${BATCH})`, figure: Math.round(syncRate), unit: 'jobs/s' },
    { id: 'j2', what: `drain ${JOBS} no-op jobs, async handler (concurrency ${BATCH})`, figure: Math.round(asyncRate), unit: 'jobs/s' },
    { id: 'j3', what: 'enqueue -> handler start, idle worker, p50', figure: Math.round(lat.p50), unit: 'us' },
    { id: 'j4', what: 'enqueue -> handler start, idle worker, p99', figure: Math.round(lat.p99), unit: 'us' },
  ];
  const out = [
    '',
    `pg_node_worker jobs bench  ${facts.date}`,
    `  machine: nproc ${facts.nproc}; PostgreSQL ${server}, fsync off; 1-min loadavg ${loadStart.toFixed(2)} before, ${facts.loadEnd.toFixed(2)} after`,
    '',
    ...rows.map((r) => `  ${r.id}  ${r.what.padEnd(62)} ${r.figure.toLocaleString('en-US').padStart(10)} ${r.unit}`),
    '',
  ].join('\n');
  process.stdout.write(out + '\n');
  const resultsDir = path.join(REPO, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(path.join(resultsDir, 'jobs.json'), JSON.stringify({ facts, rows, config: { JOBS, BATCH, LAT_JOBS, DELAY_MS } }, null, 2) + '\n');
  status('wrote bench/results/jobs.json');
}

main()
  .catch((err) => {
    process.stderr.write(`bench:jobs failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    if (cluster) process.stderr.write(`----- server log (last 60 lines) -----\n${cluster.logTail(60)}\n-----\n`);
    process.exitCode = 1;
  })
  .finally(cleanup);
