/**
 * `npm run bench:jobs` (also run by `npm run bench`): durable job queues beside graphile-worker,
 * on ONE throwaway cluster (test/helpers/cluster.ts; fsync off) in one run. Figures, not a test:
 * nothing asserts on speed.
 *
 * 1. Drain: JOBS no-op jobs are enqueued in one transaction (autocommit, one statement) with a
 *    common run_at LEAD_S seconds ahead, so that they all become due at once while the consumers
 *    sleep; the bench checks that the insert committed before that run_at. jobs/s = JOBS / (the
 *    completion of the last job - run_at).
 *    - ours (bench/workers/jobsbench.ts): a synchronous handler (batch BATCH), then an async one
 *      (concurrency = batch = BATCH). The end is max(finished_at): the start of the completing
 *      transaction (so the last batch's own time, BATCH of JOBS jobs, is left out).
 *    - graphile-worker (pinned in bench/graphile/package.json, installed on demand with
 *      `npm ci --prefix bench/graphile`): an external Node process (bench/graphile/worker.cjs, run
 *      by the bench's own node) with concurrency 4 and a no-op task, default options otherwise.
 *      Jobs go in through graphile_worker.add_jobs (its bulk path) with the same run_at.
 *      graphile-worker does not wake up for a future run_at (it polls every 2 s), so at run_at
 *      the bench sends its wake-up, NOTIFY "jobs:insert" with count 4, to let all 4 workers start
 *      at once: a help ours does not get (its worker sets a timer). Completed jobs are deleted,
 *      so the end is the wall clock in that process at the last job's 'job:complete' event
 *      (after its completion committed: one round trip later than ours), on the same machine
 *      clock as the server's run_at.
 * 2. Latency with an idle consumer: LAT_JOBS single enqueues in autocommit, DELAY_MS apart,
 *    after LAT_WARMUP (10) left out of the figures (the first job of a kind pays one-off costs).
 *    Latency = handler start - the job's created_at, which for both is now() of the enqueueing
 *    transaction (so it includes running enqueue()/add_job() and the commit). p50 and p99.
 *    - ours (bench/workers/jobslat.ts, a worker that consumes only this queue: a wake-up makes
 *      every consumer of a worker look): the synchronous handler inserts clock_timestamp().
 *    - graphile-worker (idle, LISTENing): graphile_worker.add_job('lat', '{}'); the task records
 *      the wall clock at its first line (performance.timeOrigin + performance.now()).
 *    Ours runs first (graphile-worker not yet started), then graphile-worker's phases (our workers
 *    idle: nothing polls).
 *
 * Goals (the bar, printed beside the figures): ours >= 5x graphile-worker's jobs/s,
 * ours p50 <= 1 ms.
 *
 * Writes bench/results/jobs.json. About 30 s on a shared 2-core machine at a load average of ~4
 * (+ the npm ci the first time, ~10 s). Environment:
 * PGNW_BENCH_JOBS (20000), PGNW_BENCH_JOBS_BATCH (50), PGNW_BENCH_JOBS_LAT (500),
 * PGNW_BENCH_JOBS_DELAY_MS (5), PGNW_BENCH_GRAPHILE=0 (leave graphile-worker out).
 *
 * PGNW_BENCH_JOBS_MILLION=1: instead of the above, the memory mode of bench/jobs-million.ts.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Cluster, REPO, sleep, waitFor } from '../test/helpers/cluster';
import { benchWorker } from './deploy';
import { count } from './env';
import { million } from './jobs-million';


const JOBS = count('PGNW_BENCH_JOBS', 20000);
const BATCH = count('PGNW_BENCH_JOBS_BATCH', 50);
const LAT_JOBS = count('PGNW_BENCH_JOBS_LAT', 500);
const DELAY_MS = count('PGNW_BENCH_JOBS_DELAY_MS', 5);
/** latency jobs run first and left out of the figures (a first job of a kind pays one-off costs) */
const LAT_WARMUP = 10;
const WITH_GRAPHILE = process.env.PGNW_BENCH_GRAPHILE !== '0';
const MILLION = process.env.PGNW_BENCH_JOBS_MILLION === '1';
/** seconds between the enqueueing and the common run_at of a drain */
const LEAD_S = 2;
const GOAL_RATIO = 5;
const GOAL_P50_US = 1000;
const GRAPHILE_DIR = path.join(REPO, 'bench', 'graphile');
const GRAPHILE_CONCURRENCY = 4;

let cluster: Cluster | null = null;
let graphile: ChildProcess | null = null;

function cleanup(): void {
  if (graphile && graphile.exitCode === null && graphile.signalCode === null) {
    try {
      graphile.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  graphile = null;
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

/** As percentile_cont: linear interpolation between the closest ranks. */
function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** A common run_at LEAD_S ahead on the server's clock, as epoch seconds (microsecond precision). */
async function runAtAhead(c: Cluster): Promise<number> {
  const [{ at }] = await c.query<{ at: number }>(`SELECT extract(epoch FROM clock_timestamp() + interval '${LEAD_S} s')::float8 AS at`);
  return at;
}

/** Warns when the enqueueing committed after the common run_at (the drain then includes some of it). */
async function checkCommittedBefore(c: Cluster, runAt: number, who: string): Promise<void> {
  const [{ late }] = await c.query<{ late: number }>('SELECT (extract(epoch FROM clock_timestamp()) - $1)::float8 AS late', [runAt]);
  if (late > 0) status(`WARNING: ${who}: the enqueueing committed ${(late * 1000).toFixed(0)} ms after run_at; the drain figure includes that`);
}

async function drainOurs(c: Cluster, queue: string): Promise<number> {
  const runAt = await runAtAhead(c);
  await c.query(`SELECT count(node_worker.enqueue($1, '{}', to_timestamp($2))) FROM generate_series(1, ${JOBS})`, [queue, runAt]);
  await checkCommittedBefore(c, runAt, queue);
  await waitFor(`${queue} to drain`, async () => {
    const [{ left }] = await c.query<{ left: number }>("SELECT count(*)::int AS left FROM node_worker.job_store WHERE queue = $1 AND state <> 'done'", [queue]);
    return left === 0;
  }, 300000, 100);
  const [{ s }] = await c.query<{ s: number }>(
    'SELECT (extract(epoch FROM max(finished_at)) - $2)::float8 AS s FROM node_worker.job_store WHERE queue = $1',
    [queue, runAt],
  );
  await c.query('DELETE FROM node_worker.job_store WHERE queue = $1', [queue]);
  return JOBS / s;
}

async function latencyOurs(c: Cluster): Promise<number[]> {
  const client = await c.client();
  try {
    for (let i = 0; i < LAT_WARMUP + LAT_JOBS; i++) {
      await client.query("SELECT node_worker.enqueue('jobslat', '{}')");
      await sleep(DELAY_MS);
    }
  } finally {
    await client.end();
  }
  await waitFor('the latency jobs to run', async () => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM public.lat'))[0].n === LAT_WARMUP + LAT_JOBS, 60000);
  const rows = await c.query<{ us: number }>(
    `SELECT extract(epoch FROM l.started - j.created_at)::float8 * 1e6 AS us
       FROM public.lat l JOIN node_worker.job_store j ON j.id = l.id ORDER BY j.id OFFSET ${LAT_WARMUP}`,
  );
  return rows.map((r) => r.us);
}

// ------------------------------------------------------------------ graphile-worker

/** The pinned version (bench/graphile/package.json), installed by `npm ci` if not there yet. */
function ensureGraphile(): string {
  const want = (JSON.parse(fs.readFileSync(path.join(GRAPHILE_DIR, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies['graphile-worker'];
  const installed = (): string | null => {
    try {
      return (JSON.parse(fs.readFileSync(path.join(GRAPHILE_DIR, 'node_modules', 'graphile-worker', 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return null;
    }
  };
  if (installed() !== want) {
    status(`installing graphile-worker ${want}: npm ci --prefix bench/graphile`);
    execFileSync('npm', ['ci', '--prefix', GRAPHILE_DIR, '--no-audit', '--no-fund'], { stdio: ['ignore', process.stderr, process.stderr] });
  }
  const got = installed();
  if (got !== want) throw new Error(`bench/graphile: graphile-worker ${got ?? 'missing'} after npm ci, want ${want}`);
  return got;
}

type GraphileMsg = { ev: 'ready' } | { ev: 'expecting'; n: number } | { ev: 'drained'; at: number; n: number } | { ev: 'lat'; starts: Record<string, number> };

/** The graphile-worker process and a way to wait for its next message of a kind. */
class Graphile {
  private readonly waiting: Array<{ ev: string; resolve: (m: GraphileMsg) => void }> = [];
  private readonly gone: Promise<never>;

  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: GraphileMsg) => {
      const i = this.waiting.findIndex((w) => w.ev === m.ev);
      if (i >= 0) this.waiting.splice(i, 1)[0].resolve(m);
    });
    this.gone = new Promise((_, reject) => proc.on('exit', (code, sig) => reject(new Error(`the graphile-worker process exited (${code ?? sig})`))));
    this.gone.catch(() => undefined);
  }

  next<E extends GraphileMsg['ev']>(ev: E, timeoutMs: number): Promise<Extract<GraphileMsg, { ev: E }>> {
    let timer: NodeJS.Timeout | undefined;
    const got = new Promise<GraphileMsg>((resolve) => this.waiting.push({ ev, resolve }));
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no '${ev}' from the graphile-worker process within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([got, late, this.gone]).finally(() => clearTimeout(timer)) as Promise<Extract<GraphileMsg, { ev: E }>>;
  }

  send(m: { cmd: string; n?: number }): void {
    this.proc.send(m);
  }
}

async function startGraphile(c: Cluster): Promise<Graphile> {
  const conn = `postgres://postgres@localhost:${c.port}/postgres?host=${encodeURIComponent(c.dir)}`;
  const proc = spawn(process.execPath, [path.join(GRAPHILE_DIR, 'worker.cjs'), conn], {
    cwd: GRAPHILE_DIR,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NO_LOG_SUCCESS: '1' },
  });
  graphile = proc;
  const g = new Graphile(proc);
  await g.next('ready', 60000);
  return g;
}

async function drainGraphile(c: Cluster, g: Graphile): Promise<number> {
  g.send({ cmd: 'expect', n: JOBS });
  await g.next('expecting', 10000);
  const runAt = await runAtAhead(c);
  await c.query(
    `SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
       SELECT ROW('noop', '{}'::json, NULL, to_timestamp($1), NULL, NULL, NULL, NULL)::graphile_worker.job_spec
         FROM generate_series(1, ${JOBS})))`,
    [runAt],
  );
  await checkCommittedBefore(c, runAt, 'graphile-worker');
  const drained = g.next('drained', 600000);
  // graphile-worker polls for jobs that become due later: wake its 4 workers at run_at
  await c.query(`SELECT pg_sleep(greatest(0, $1 - extract(epoch FROM clock_timestamp()))), pg_notify('jobs:insert', '{"count":${GRAPHILE_CONCURRENCY}}')`, [runAt]);
  const { at } = await drained;
  const [{ left }] = await c.query<{ left: number }>("SELECT count(*)::int AS left FROM graphile_worker.jobs WHERE task_identifier = 'noop'");
  if (left !== 0) throw new Error(`graphile-worker reported ${JOBS} noop jobs complete but ${left} are still in its table`);
  return JOBS / (at / 1000 - runAt);
}

async function latencyGraphile(c: Cluster, g: Graphile): Promise<number[]> {
  const created = new Map<string, number>();
  const client = await c.client();
  try {
    for (let i = 0; i < LAT_WARMUP + LAT_JOBS; i++) {
      const r = await client.query<{ id: string; ms: number }>(
        "SELECT j.id::text AS id, (extract(epoch FROM j.created_at) * 1000)::float8 AS ms FROM graphile_worker.add_job('lat', '{}'::json) j",
      );
      if (i >= LAT_WARMUP) created.set(r.rows[0].id, r.rows[0].ms);
      await sleep(DELAY_MS);
    }
  } finally {
    await client.end();
  }
  let starts: Record<string, number> = {};
  await waitFor('the graphile-worker latency jobs to run', async () => {
    g.send({ cmd: 'lat' });
    starts = (await g.next('lat', 10000)).starts;
    return Object.keys(starts).length >= LAT_WARMUP + LAT_JOBS;
  }, 60000, 200);
  return [...created].map(([id, ms]) => {
    const s = starts[id];
    if (s === undefined) throw new Error(`graphile-worker job ${id} did not report its start`);
    return (s - ms) * 1000;
  });
}

// ------------------------------------------------------------------ the run

interface GraphileFigures {
  version: string;
  rate: number;
  p50: number;
  p99: number;
}

async function main(): Promise<void> {
  const loadStart = os.loadavg()[0];
  let graphileVersion: string | null = null;
  let graphileSkipped: string | null = WITH_GRAPHILE ? null : 'PGNW_BENCH_GRAPHILE=0';
  if (!MILLION && WITH_GRAPHILE) {
    try {
      graphileVersion = ensureGraphile();
    } catch (err) {
      graphileSkipped = `could not install it: ${err instanceof Error ? err.message : String(err)}`;
      status(`graphile-worker not measured: ${graphileSkipped}`);
    }
  }
  const c = await Cluster.create({
    settings: { 'node_worker.jobs_keep_done_s': MILLION ? 5 : 3600, 'jobsbench.batch': BATCH },
  });
  cluster = c;
  if (MILLION) {
    await million(c, BATCH);
    return;
  }
  await c.deployFile(benchWorker('jobsbench.ts'));
  await c.deployFile(benchWorker('jobslat.ts'));
  await c.start();
  await c.query('CREATE TABLE public.lat (id bigint PRIMARY KEY, started timestamptz NOT NULL)');
  await c.query('CREATE EXTENSION pg_node_worker');
  await c.waitForLog(/jobsbench: jobsbench ready/, 30000);
  await c.waitForLog(/jobslat: jobslat ready/, 30000);

  status(`draining ${JOBS} jobs, synchronous handler`);
  const syncRate = await drainOurs(c, 'jobsbench');
  status(`draining ${JOBS} jobs, async handler`);
  const asyncRate = await drainOurs(c, 'jobsbench.async');
  status(`${LAT_JOBS} single enqueues, ${DELAY_MS} ms apart`);
  const latUs = (await latencyOurs(c)).sort((a, b) => a - b);
  const lat = { p50: percentile(latUs, 0.5), p99: percentile(latUs, 0.99) };

  let gf: GraphileFigures | null = null;
  if (graphileVersion !== null) {
    status(`graphile-worker ${graphileVersion}: starting (concurrency ${GRAPHILE_CONCURRENCY})`);
    const g = await startGraphile(c);
    status(`graphile-worker: draining ${JOBS} jobs`);
    const rate = await drainGraphile(c, g);
    status(`graphile-worker: ${LAT_JOBS} single add_job, ${DELAY_MS} ms apart`);
    const gl = (await latencyGraphile(c, g)).sort((a, b) => a - b);
    gf = { version: graphileVersion, rate, p50: percentile(gl, 0.5), p99: percentile(gl, 0.99) };
    g.send({ cmd: 'stop' });
  }

  const server = (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0].v;
  const facts = {
    date: new Date().toISOString(),
    nproc: execFileSync('nproc', { encoding: 'utf8' }).trim(),
    node: process.version,
    server,
    loadStart,
    loadEnd: os.loadavg()[0],
    graphileWorker: gf?.version ?? null,
    graphileSkipped,
  };
  const ratio = (r: number) => (gf ? Math.round((r / gf.rate) * 10) / 10 : null);
  const rows = [
    { id: 'j1', what: `drain ${JOBS} no-op jobs, synchronous handler (batch ${BATCH})`, figure: Math.round(syncRate), unit: 'jobs/s', vsGraphile: ratio(syncRate) },
    { id: 'j2', what: `drain ${JOBS} no-op jobs, async handler (concurrency ${BATCH})`, figure: Math.round(asyncRate), unit: 'jobs/s', vsGraphile: ratio(asyncRate) },
    { id: 'j3', what: 'enqueue -> handler start, idle worker, p50', figure: Math.round(lat.p50), unit: 'us' },
    { id: 'j4', what: 'enqueue -> handler start, idle worker, p99', figure: Math.round(lat.p99), unit: 'us' },
    ...(gf
      ? [
          { id: 'g1', what: `graphile-worker ${gf.version}: drain ${JOBS} no-op jobs (concurrency ${GRAPHILE_CONCURRENCY})`, figure: Math.round(gf.rate), unit: 'jobs/s' },
          { id: 'g2', what: `graphile-worker ${gf.version}: add_job -> task start, idle, p50`, figure: Math.round(gf.p50), unit: 'us' },
          { id: 'g3', what: `graphile-worker ${gf.version}: add_job -> task start, idle, p99`, figure: Math.round(gf.p99), unit: 'us' },
        ]
      : []),
  ];
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const x = (r: number) => `${(r / (gf as GraphileFigures).rate).toFixed(1)}x`;
  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const gname = gf ? `graphile-worker ${gf.version}` : 'graphile-worker';
  const out = [
    '',
    `pg_node_worker jobs bench  ${facts.date}`,
    `  machine: nproc ${facts.nproc}; PostgreSQL ${server}, fsync off; node ${process.version}; 1-min loadavg ${loadStart.toFixed(2)} before, ${facts.loadEnd.toFixed(2)} after`,
    '',
    `  drain ${JOBS} no-op jobs from a common run_at`.padEnd(60) + `    jobs/s   vs graphile   goal >= ${GOAL_RATIO}x`,
    `    ours, synchronous handler (batch ${BATCH})`.padEnd(60) + n(syncRate).padStart(10) + (gf ? x(syncRate).padStart(14) + '   ' + met(syncRate / gf.rate >= GOAL_RATIO) : ''),
    `    ours, async handler (concurrency ${BATCH})`.padEnd(60) + n(asyncRate).padStart(10) + (gf ? x(asyncRate).padStart(14) + '   ' + met(asyncRate / gf.rate >= GOAL_RATIO) : ''),
    gf ? `    ${gname} (concurrency ${GRAPHILE_CONCURRENCY}, external process)`.padEnd(60) + n(gf.rate).padStart(10) + '1.0x'.padStart(14) : `    ${gname}: not measured (${graphileSkipped})`,
    '',
    `  enqueue -> handler start, idle consumer, ${LAT_JOBS} jobs`.padEnd(60) + `    p50 us    p99 us   goal p50 <= ${GOAL_P50_US} us`,
    `    ours (enqueue(); handler inserts clock_timestamp())`.padEnd(60) + n(lat.p50).padStart(10) + n(lat.p99).padStart(10) + '   ' + met(lat.p50 <= GOAL_P50_US),
    gf ? `    ${gname} (add_job(); LISTEN/NOTIFY)`.padEnd(60) + n(gf.p50).padStart(10) + n(gf.p99).padStart(10) : `    ${gname}: not measured`,
    '',
  ].join('\n');
  process.stdout.write(out + '\n');
  const resultsDir = path.join(REPO, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(
    path.join(resultsDir, 'jobs.json'),
    JSON.stringify({ facts, rows, goals: { ratioVsGraphile: GOAL_RATIO, p50Us: GOAL_P50_US }, config: { JOBS, BATCH, LAT_JOBS, DELAY_MS, LEAD_S, GRAPHILE_CONCURRENCY } }, null, 2) + '\n',
  );
  status('wrote bench/results/jobs.json');
}

main()
  .catch((err) => {
    process.stderr.write(`bench:jobs failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    if (cluster) process.stderr.write(`----- server log (last 60 lines) -----\n${cluster.logTail(60)}\n-----\n`);
    process.exitCode = 1;
  })
  .finally(cleanup);
