/**
 * `npm run bench`: figures, not a test (nothing here asserts on speed).
 *
 * One process, one throwaway cluster (test/helpers/cluster.ts: initdb in a
 * temp dir, unix socket only, run as `postgres` when we are root; here with
 * shared_buffers = 256MB, fsync = off).  It measures
 *   1. SELECT 1 calls/s: TS worker (ctx.sql per call / inside one
 *      ctx.transaction), the C reference bgworker (same PostgreSQL calls),
 *      node-postgres over the unix socket;
 *   2. the 1M-row (int4, text) fetch, rows/s, 3 runs each;
 *   3. fork -> first line of user code, TS worker vs C bgworker;
 *   4. idle PSS / RSS: TS worker, C bgworker, client backend;
 * and prints one table.
 *
 * The C reference (bench/spi_reference.c) is built by `make -C bench`
 * (PGXS: needs pg_config and the server headers), copied into the cluster's
 * temp dir and loaded by absolute path, so nothing is installed into the
 * server's pkglibdir.  Running as root is needed only to run the cluster as
 * the `postgres` OS user (as the tests do); as a normal user the cluster
 * runs as that user.  The extension itself must be installed (`make install`).
 *
 * Workers report through tables: the TS bench worker takes jobs from
 * bench_jobs and, like the C worker, writes figures into bench_results;
 * this process polls.  The cluster is destroyed on exit, on error and on
 * SIGINT/SIGTERM/SIGHUP.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { Cluster, REPO, sleep, waitFor } from '../test/helpers/cluster';

const SELECT1_MS = Number(process.env.PGNW_BENCH_SELECT1_MS ?? 2000);
const SELECT1_WARMUP_MS = 300;
const FETCH_RUNS = 3;
const STARTUP_RESTARTS = 5;
const FETCH_SQL = 'SELECT i, md5(i::text) FROM generate_series(1, 1000000) i';

// ------------------------------------------------------------------ workers

/** Takes jobs from bench_jobs, writes figures to bench_results. */
const BENCH_WORKER = `
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'pgnw_bench',
  restart: 'never',
  async main(ctx) {
    const record = (run: string, key: string, value: number, note: string | null = null) => {
      ctx.sql\`INSERT INTO bench_results(run, key, value, note) VALUES (\${run}, \${key}, \${value}, \${note})\`;
    };

    // SELECT 1 until ms have passed (checking the clock every 64 calls); calls/s
    const select1 = (sql: any, ms: number) => {
      let n = 0, sum = 0;
      const t0 = performance.now();
      let t = t0;
      do {
        for (let k = 0; k < 64; k++) sum += sql\`SELECT 1\`[0]['?column?'];
        n += 64;
        t = performance.now();
      } while (t - t0 < ms);
      if (sum !== n) throw new Error('SELECT 1 returned something else');
      return n / ((t - t0) / 1000);
    };

    const jobs: Record<string, (run: string, arg: number) => void> = {
      select1_each(run, ms) {
        select1(ctx.sql, ${SELECT1_WARMUP_MS});
        record(run, 'calls_per_s', select1(ctx.sql, ms));
      },
      select1_xact(run, ms) {
        ctx.transaction((tx) => select1(tx.sql, ${SELECT1_WARMUP_MS}));
        record(run, 'calls_per_s', ctx.transaction((tx) => select1(tx.sql, ms)));
      },
      fetch(run, runs) {
        for (let i = 0; i < runs; i++) {
          const t0 = performance.now();
          let rows: any[] | null = ctx.sql\`${FETCH_SQL}\`;
          const dt = performance.now() - t0;
          if (rows.length !== 1000000 || rows[999999].i !== 1000000 || rows[0].md5.length !== 32)
            throw new Error('unexpected result: ' + rows.length + ' rows');
          record(run, 'rows_per_s', rows.length / (dt / 1000));
          rows = null;
        }
        const m = process.memoryUsage();
        record(run, 'heap_used_mb', m.heapUsed / 1048576);
        record(run, 'rss_mb', m.rss / 1048576);
      },
    };

    record('ts_boot', 'pid', ctx.worker.pid, process.version);
    while (!ctx.signal.aborted) {
      const todo = ctx.sql\`SELECT id, run, kind, arg FROM bench_jobs WHERE NOT taken ORDER BY id\` as any[];
      for (const job of todo) {
        ctx.sql\`UPDATE bench_jobs SET taken = true WHERE id = \${job.id}\`;
        try {
          const fn = jobs[job.kind];
          if (!fn) throw new Error('unknown job kind ' + job.kind);
          fn(job.run, job.arg);
        } catch (err: any) {
          record(job.run, 'error', 0, String(err?.stack ?? err));
        }
        record(job.run, 'done', 1);
      }
      await ctx.sleep(todo.length ? 0 : 50);
    }
  },
});
`;

/** Restarted 1 s after each pg_terminate_backend; records fork -> first line, then idles. */
const STARTUP_WORKER = `
const bundleFirstLine = Date.now();
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'pgnw_startup',
  restart: 1,
  async main(ctx) {
    const forkToFirstLine = Date.now() - ctx.worker.startedAt;
    ctx.sql\`INSERT INTO bench_startup(pid, first_line_ms, bundle_ms, node_version)
             VALUES (\${ctx.worker.pid}, \${forkToFirstLine}, \${bundleFirstLine - ctx.worker.startedAt}, \${process.version})\`;
    while (!ctx.signal.aborted) await ctx.sleep(3600000);
  },
});
`;

const SCHEMA = `
CREATE TABLE bench_jobs (id serial PRIMARY KEY, run text NOT NULL, kind text NOT NULL, arg int NOT NULL, taken bool NOT NULL DEFAULT false);
CREATE TABLE bench_results (id serial PRIMARY KEY, run text NOT NULL, key text NOT NULL, value float8, note text);
CREATE TABLE bench_startup (id serial PRIMARY KEY, pid int, first_line_ms float8, bundle_ms float8, node_version text);
`;

// ------------------------------------------------------------------ helpers

let cluster: Cluster | null = null;
let admin: pg.Client | null = null;

function cleanup(): void {
  const c = cluster;
  cluster = null;
  if (c) {
    try {
      void c.destroy(); // synchronous inside: pg_ctl stop -m immediate, rm -rf
    } catch (err) {
      process.stderr.write(`bench: could not destroy the cluster in ${c.dir}: ${String(err)}\n`);
    }
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}: stopping and removing the cluster\n`);
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}
process.on('exit', cleanup);

function status(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Figure {
  key: string;
  value: number;
  note: string | null;
}

/** Waits for run's 'done' row; throws with the worker's error. */
async function results(run: string, timeoutMs: number): Promise<Figure[]> {
  const rows = await waitFor(
    `results of ${run}`,
    async () => {
      const r = await admin!.query<Figure>('SELECT key, value, note FROM bench_results WHERE run = $1 ORDER BY id', [run]);
      return r.rows.some((x) => x.key === 'done' || x.key === 'error') ? r.rows : null;
    },
    timeoutMs,
    50,
  );
  const err = rows.find((x) => x.key === 'error');
  if (err) throw new Error(`${run} failed in the worker: ${err.note}`);
  return rows;
}

function values(figs: Figure[], key: string): number[] {
  return figs.filter((f) => f.key === key).map((f) => f.value);
}

let runSeq = 0;

/** Runs a job in the TS bench worker. */
async function tsJob(kind: string, arg: number, timeoutMs: number): Promise<Figure[]> {
  const run = `ts_${kind}_${++runSeq}`;
  await admin!.query('INSERT INTO bench_jobs(run, kind, arg) VALUES ($1, $2, $3)', [run, kind, arg]);
  return results(run, timeoutMs);
}

/** Launches a C reference bgworker; returns its figures (after 'done') and pid. */
async function cJob(mode: string, arg: number, timeoutMs: number): Promise<{ figs: Figure[]; pid: number }> {
  const run = `c_${mode}_${++runSeq}`;
  const r = await admin!.query<{ pid: number }>('SELECT pgnw_bench_launch($1, $2, $3) AS pid', [mode, run, arg]);
  return { figs: await results(run, timeoutMs), pid: r.rows[0].pid };
}

interface Mem {
  pssKb: number;
  rssKb: number;
  ussKb: number;
  pssAnonKb: number | null;
  pssFileKb: number | null;
  pssShmemKb: number | null;
}

function memOf(pid: number): Mem {
  const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (text: string, field: string): number | null => {
    const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  };
  return {
    pssKb: kb(rollup, 'Pss') ?? NaN,
    rssKb: kb(status, 'VmRSS') ?? NaN,
    ussKb: (kb(rollup, 'Private_Clean') ?? NaN) + (kb(rollup, 'Private_Dirty') ?? NaN),
    pssAnonKb: kb(rollup, 'Pss_Anon'),
    pssFileKb: kb(rollup, 'Pss_File'),
    pssShmemKb: kb(rollup, 'Pss_Shmem'),
  };
}

/** Samples every 500 ms until PSS moved < 0.5% over 1 s (at least minMs, at most 10 s). */
async function settledMem(pid: number, minMs = 2000): Promise<Mem> {
  const t0 = Date.now();
  const samples: Mem[] = [];
  for (;;) {
    samples.push(memOf(pid));
    const n = samples.length;
    if (Date.now() - t0 >= minMs && n >= 3) {
      const a = samples[n - 3].pssKb, b = samples[n - 1].pssKb;
      if (Math.abs(b - a) <= 0.005 * b) return samples[n - 1];
    }
    if (Date.now() - t0 > 10000) return samples[n - 1];
    await sleep(500);
  }
}

// ------------------------------------------------------------------ output

type Cell = string;

function table(head: Cell[], rows: Cell[][], align: ('l' | 'r')[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: Cell[]) =>
    r.map((c, i) => (align[i] === 'r' ? (c ?? '').padStart(widths[i]) : (c ?? '').padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)].map((l) => '  ' + l).join('\n');
}

const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const ms1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const mb = (kb: number | null) => (kb === null || !Number.isFinite(kb) ? 'n/a' : (kb / 1024).toFixed(1));
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '');

// ------------------------------------------------------------------ main

const loadavg = () => os.loadavg()[0];

async function main(): Promise<void> {
  const tStart = Date.now();
  const loadStart = loadavg();

  // build the C reference
  status('make -C bench (C SPI reference, PGXS)');
  const mk = spawnSync('make', ['-C', path.join(REPO, 'bench'), '--no-print-directory'], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`make -C bench failed (${mk.status ?? mk.signal}):\n${mk.stderr}${mk.stdout}`);
  const soBuilt = path.join(REPO, 'bench', 'pgnw_bench.so');
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js')))
    throw new Error('the CLI is not built: run `npm run build` (and `make install` as root) first');

  status('creating the cluster');
  cluster = await Cluster.create({ settings: { shared_buffers: '256MB' } });
  const c = cluster;
  const so = path.join(c.dir, 'pgnw_bench.so');
  fs.copyFileSync(soBuilt, so);
  fs.chmodSync(so, 0o755);

  await c.start();
  admin = await c.client();
  await admin.query(SCHEMA);
  await admin.query(`CREATE FUNCTION pgnw_bench_launch(mode text, run text, arg int) RETURNS int
                     AS '${so}', 'pgnw_bench_launch' LANGUAGE C STRICT`);
  await admin.end();
  admin = null;

  status('deploying the TS workers (pg-node-worker deploy) and restarting');
  c.deploy('pgnw_bench', BENCH_WORKER);
  c.deploy('pgnw_startup', STARTUP_WORKER);
  await c.restart();
  admin = await c.client();

  const boot = await waitFor('the TS bench worker to start', async () => {
    const r = await admin!.query<Figure>("SELECT key, value, note FROM bench_results WHERE run = 'ts_boot'");
    return r.rows[0] ?? null;
  }, 30000);
  const workerNode = boot.note ?? '?';
  const benchWorkerPid = boot.value;
  await waitFor('the startup worker', async () => (await admin!.query('SELECT 1 FROM bench_startup')).rowCount! > 0, 30000);

  const facts = {
    nproc: execFileSync('nproc', { encoding: 'utf8' }).trim(),
    cpu: (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? os.cpus()[0]?.model ?? '?').trim(),
    kernel: `${os.type()} ${os.release()}`,
    memGb: (os.totalmem() / 2 ** 30).toFixed(1),
    server: (await admin.query('SHOW server_version')).rows[0].server_version as string,
    sharedBuffers: (await admin.query('SHOW shared_buffers')).rows[0].shared_buffers as string,
    fsync: (await admin.query('SHOW fsync')).rows[0].fsync as string,
    heapLimit: (await admin.query("SELECT current_setting('node_worker.heap_limit_mb', true) AS v")).rows[0].v as string | null,
    pgVersion: (require('pg/package.json') as { version: string }).version,
  };

  // ---- 1. SELECT 1
  const select1Timeout = SELECT1_MS + SELECT1_WARMUP_MS + 30000;
  status(`SELECT 1: TS worker, ${SELECT1_MS} ms per loop`);
  const tsEach = values(await tsJob('select1_each', SELECT1_MS, select1Timeout), 'calls_per_s')[0];
  const tsXact = values(await tsJob('select1_xact', SELECT1_MS, select1Timeout), 'calls_per_s')[0];
  status('SELECT 1: C reference bgworker');
  const cEach = values((await cJob('select1_each', SELECT1_MS, select1Timeout)).figs, 'calls_per_s')[0];
  const cXact = values((await cJob('select1_xact', SELECT1_MS, select1Timeout)).figs, 'calls_per_s')[0];
  status('SELECT 1: node-postgres');
  const client = await c.client();
  const pgLoop = async (ms: number) => {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    do {
      for (let k = 0; k < 16; k++) await client.query('SELECT 1');
      n += 16;
      t = performance.now();
    } while (t - t0 < ms);
    return n / ((t - t0) / 1000);
  };
  await pgLoop(SELECT1_WARMUP_MS);
  const pgEach = await pgLoop(SELECT1_MS);
  await client.query('BEGIN');
  await pgLoop(SELECT1_WARMUP_MS);
  const pgXact = await pgLoop(SELECT1_MS);
  await client.query('COMMIT');

  // ---- 2. 1M rows
  status(`1M-row fetch x${FETCH_RUNS}: TS worker`);
  const tsFetchFigs = await tsJob('fetch', FETCH_RUNS, 120000);
  const tsFetch = values(tsFetchFigs, 'rows_per_s');
  status(`1M-row fetch x${FETCH_RUNS}: C reference`);
  const cFetchFigs = (await cJob('fetch', FETCH_RUNS, 120000)).figs;
  const cFetch = values(cFetchFigs, 'rows_per_s');
  const cExecMs = median(values(cFetchFigs, 'exec_ms'));
  const cDeformMs = median(values(cFetchFigs, 'deform_ms'));
  status(`1M-row fetch x${FETCH_RUNS}: node-postgres`);
  const pgFetch: number[] = [];
  for (let i = 0; i < FETCH_RUNS; i++) {
    const t0 = performance.now();
    const r = await client.query(FETCH_SQL);
    const dt = performance.now() - t0;
    if (r.rows.length !== 1000000) throw new Error(`node-postgres got ${r.rows.length} rows`);
    pgFetch.push(r.rows.length / (dt / 1000));
  }

  // ---- 3. fork -> first line
  status(`fork -> first line: ${STARTUP_RESTARTS} x pg_terminate_backend + restart (restart: 1 s) of the TS worker`);
  interface StartRow { id: number; pid: number; first_line_ms: number; bundle_ms: number; node_version: string }
  const startRows = async () => (await admin!.query<StartRow>('SELECT * FROM bench_startup ORDER BY id')).rows;
  for (let i = 0; i < STARTUP_RESTARTS; i++) {
    const before = await startRows();
    const last = before[before.length - 1];
    await admin.query('SELECT pg_terminate_backend($1)', [last.pid]);
    await waitFor('the TS startup worker to come back', async () => (await startRows()).length > before.length, 30000, 20);
  }
  const allStarts = await startRows();
  const restarts = allStarts.slice(1); // the first ran at server start, beside the other worker starting
  const tsFirst = restarts.map((r) => r.first_line_ms);
  const tsBundle = restarts.map((r) => r.bundle_ms);
  const idleTsPid = allStarts[allStarts.length - 1].pid;
  const idleTsSince = Date.now();

  status(`fork -> first line: ${STARTUP_RESTARTS} C reference bgworkers`);
  const cMain: number[] = [], cConn: number[] = [];
  for (let i = 0; i < STARTUP_RESTARTS; i++) {
    const { figs } = await cJob('startup', 0, 30000);
    cMain.push(values(figs, 'fork_to_main_ms')[0]);
    cConn.push(values(figs, 'fork_to_connected_ms')[0]);
  }

  // ---- 4. memory
  status('memory: idle TS worker, idle C bgworker, client backend');
  const idleC = await cJob('idle', 0, 30000);
  const backendPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  await sleep(Math.max(0, 2000 - (Date.now() - idleTsSince)));
  const [memTs, memC, memBackend] = await Promise.all([settledMem(idleTsPid), settledMem(idleC.pid), settledMem(backendPid, 1000)]);
  const memBench = memOf(benchWorkerPid);
  await client.end();

  // ---- print
  const out: string[] = [];
  const p = (s = '') => out.push(s);
  p();
  p(`pg_node_worker bench  ${new Date().toISOString()}`);
  p(`  machine: nproc ${facts.nproc}, ${facts.cpu}, ${facts.memGb} GiB, ${facts.kernel}`);
  p(`  server:  PostgreSQL ${facts.server}, shared_buffers ${facts.sharedBuffers}, fsync ${facts.fsync}, node_worker.heap_limit_mb ${facts.heapLimit ?? '?'}`);
  p(`  worker:  Node ${workerNode} (process.version inside the worker, embedded libnode)`);
  p(`  client:  node-postgres ${facts.pgVersion} on Node ${process.version} (this process), unix socket`);
  const loadEnd = loadavg();
  p(`  load:    1-min loadavg ${loadStart.toFixed(2)} before the run, ${loadEnd.toFixed(2)} after it (this includes the bench's own load)`);
  if (loadStart > 0.5)
    p(`  WARNING: other processes were using the CPU when the run began: figures may be lower and noisier than on an idle machine`);
  p();
  p(`1. SELECT 1, calls/s (${SELECT1_MS / 1000} s loop after a ${SELECT1_WARMUP_MS} ms warm-up; one run each)`);
  p(table(
    ['what', 'calls/s', 'us/call', 'vs C', 'vs node-pg'],
    [
      ['TS worker: ctx.sql`SELECT 1`, own transaction per call', int(tsEach), (1e6 / tsEach).toFixed(2), ratio(tsEach, cEach), ratio(tsEach, pgEach)],
      ['TS worker: tx.sql`SELECT 1` inside one ctx.transaction', int(tsXact), (1e6 / tsXact).toFixed(2), ratio(tsXact, cXact), ratio(tsXact, pgXact)],
      ['C bgworker SPI, own transaction per call (baseline)', int(cEach), (1e6 / cEach).toFixed(2), '1.00x', ratio(cEach, pgEach)],
      ['C bgworker SPI, one transaction (baseline)', int(cXact), (1e6 / cXact).toFixed(2), '1.00x', ratio(cXact, pgXact)],
      ['node-postgres client.query, autocommit (1 round trip/call)', int(pgEach), (1e6 / pgEach).toFixed(2), ratio(pgEach, cEach), '1.00x'],
      ['node-postgres client.query, inside BEGIN ... COMMIT', int(pgXact), (1e6 / pgXact).toFixed(2), ratio(pgXact, cXact), '1.00x'],
    ],
    ['l', 'r', 'r', 'r', 'r'],
  ));
  p('     C rows: a dynamic bgworker making, per call, the same PostgreSQL calls as the runtime (native/guard.c):');
  p('     pgstat_report_activity, [StartTransactionCommand], PushActiveSnapshot, SPI_connect, SPI_execute_plan');
  p('     of a kept plan, SPI_getbinval, SPI_finish, PopActiveSnapshot, [CommitTransactionCommand]; ctx.sql with');
  p('     no parameters also runs a kept plan (plan cache by SQL text). Ratios compare the same transaction mode.');
  p();
  p(`2. 1M-row fetch (${FETCH_SQL}), rows/s, ${FETCH_RUNS} runs each`);
  const fetchRow = (what: string, xs: number[]) => {
    const best = Math.max(...xs), med = median(xs);
    return [what, int(best), int(med), ms1(1e9 / med / 1e3), ratio(med, median(cFetch)), ratio(med, median(pgFetch))];
  };
  p(table(
    ['what', 'best', 'median', 'ms (median)', 'vs C', 'vs node-pg'],
    [
      fetchRow('TS worker: ctx.sql -> 1M row objects {i, md5}', tsFetch),
      fetchRow('C bgworker SPI: execute kept plan + heap_deform_tuple, read all text bytes', cFetch),
      fetchRow('node-postgres client.query -> 1M row objects (unix socket)', pgFetch),
    ],
    ['l', 'r', 'r', 'r', 'r', 'r'],
  ));
  p('     ratios use the medians; every figure is end to end (execution in the server included).');
  p(`     C split (medians): SPI_execute_plan until it returned (the query ran, SPI holds 1M tuples) ${ms1(cExecMs)} ms;`);
  p(`     the deform loop alone ${ms1(cDeformMs)} ms (${int(1e6 / (cDeformMs / 1000))} rows/s). So the SQL side bounds every row of this table.`);
  p(`     TS worker after the fetches: heapUsed ${ms1(values(tsFetchFigs, 'heap_used_mb')[0])} MB, rss ${ms1(values(tsFetchFigs, 'rss_mb')[0])} MB (process.memoryUsage)`);
  p();
  p(`3. fork -> first line of user code, ms (${STARTUP_RESTARTS} starts each)`);
  const stRow = (what: string, xs: number[]) => [what, ms1(Math.min(...xs)), ms1(median(xs)), ms1(Math.max(...xs)), ratio(median(xs), median(cConn))];
  p(table(
    ['what', 'min', 'median', 'max', 'vs C connected'],
    [
      stRow('TS worker: first line of main (Date.now() - ctx.worker.startedAt)', tsFirst),
      stRow('TS worker: first line of the bundle (module top level)', tsBundle),
      stRow('C bgworker: first line of its main function', cMain),
      stRow('C bgworker: after BackgroundWorkerInitializeConnection', cConn),
    ],
    ['l', 'r', 'r', 'r', 'r'],
  ));
  p(`     TS: pg_terminate_backend, restarted by the postmaster after restart: 1 s (fork time = MyStartTimestamp).`);
  p(`     Not counted: its first start at server start-up (beside the other TS worker starting): ${ms1(allStarts[0].first_line_ms)} ms.`);
  p('     C: dynamic bgworkers started from SQL (RegisterDynamicBackgroundWorker), same clock.');
  p();
  p('4. memory of an idle process, MB (/proc/<pid>/smaps_rollup Pss, /proc/<pid>/status VmRSS)');
  const memRow = (what: string, m: Mem) => [what, mb(m.pssKb), mb(m.rssKb), mb(m.ussKb), mb(m.pssAnonKb), mb(m.pssFileKb), mb(m.pssShmemKb), ratio(m.pssKb, memBackend.pssKb)];
  p(table(
    ['what', 'PSS', 'RSS', 'USS', 'PSS anon', 'PSS file', 'PSS shmem', 'PSS vs backend'],
    [
      memRow(`TS worker idle in ctx.sleep (pid ${idleTsPid})`, memTs),
      memRow(`C bgworker idle on its latch (pid ${idleC.pid})`, memC),
      memRow(`client backend of a pg connection (pid ${backendPid})`, memBackend),
      memRow(`(TS bench worker after all the runs above, pid ${benchWorkerPid})`, memBench),
    ],
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  ));
  p('     sampled until PSS moved < 0.5% over 1 s (TS worker: >= 2 s after it started). USS = Private_Clean +');
  p('     Private_Dirty (freed if the process exits). PSS file divides libnode/postgres pages among the processes');
  p('     mapping them, so it moves with what else runs: here a second TS worker (pgnw_bench) is alive, and node');
  p('     workers of any other cluster on the machine share libnode too; a lone node worker has a higher PSS. USS is the stable figure.');
  p();
  p(`total ${((Date.now() - tStart) / 1000).toFixed(0)} s`);
  process.stdout.write(out.join('\n') + '\n');
}

main()
  .catch((err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    if (cluster) process.stderr.write(`----- server log (last 60 lines) -----\n${cluster.logTail(60)}\n-----\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    try {
      await admin?.end();
    } catch {
      /* the server may be gone */
    }
    cleanup();
  });
