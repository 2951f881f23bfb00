/**
 * `npm run bench:call` (also run by `npm run bench`, after bench/run.ts):
 * node_worker.call() round trips (target 7 of bench/run.ts's table: a
 * synchronous call from SQL into a worker, p50 under 100 us and ten times the
 * usual alternative) beside that alternative, measured in ONE run on ONE throwaway cluster
 * (test/helpers/cluster.ts: initdb in a temp dir, unix socket only, run as
 * `postgres` when we are root). Figures, not a test: nothing asserts on speed.
 *
 * The cluster runs one worker, `svc` (bench/workers/svc.ts), whose handler is
 * `ctx.onCall((p) => ({ echo: p }))`; every payload is `{"i": <n>}`.
 *
 * 1. call() inside the backend (no client in the measurement):
 *    - latency: a PL/pgSQL DO loop, clock_timestamp() around each
 *      `PERFORM node_worker.call('svc', jsonb_build_object('i', i), 5000)`,
 *      the durations kept in an array, p50/p99 by percentile_cont in SQL
 *      (LAT_CALLS calls after WARMUP warm-up calls);
 *    - throughput: DO loops of TP1_CALLS calls in 1 session, and of
 *      TP4_CALLS calls in each of 4 concurrent sessions (released together by
 *      an advisory lock after their own warm-up); each loop records its
 *      clock_timestamp() start and end; calls/s = all calls / (last end -
 *      first start).
 * 2. The same from a client, with process.hrtime around each query
 *    (node-postgres over the unix socket, named prepared statements):
 *    - call(): `SELECT node_worker.call('svc', $1::jsonb, 5000)`;
 *    - the alternative: an external daemon (a `node` child process with
 *      node-postgres) LISTENs on `req`. Per call the caller (its own
 *      connection, LISTENing on its own channel rep_<k>) runs
 *      `SELECT pg_notify('req', '{"id", "ch", "payload"}')` in autocommit
 *      (NOTIFY is delivered at commit), waits for the notification on rep_<k>,
 *      then `DELETE FROM replies WHERE id = $1 RETURNING body`. The daemon,
 *      per request, in one statement and one transaction from a pool of 4
 *      connections: `WITH r AS (INSERT INTO replies (id, body) VALUES ($1, $2)
 *      RETURNING id) SELECT pg_notify($3, r.id::text) FROM r`.
 *      That is 3 client round trips and 2 notification deliveries per call.
 *    - latency over LAT_CALLS calls after WARMUP from 1 caller (its calls/s is
 *      that loop's calls / wall time); then 4 callers on 4 connections
 *      (CLIENT4_CALLS / ALT4_CALLS each, started together), all calls / wall
 *      time, and the p50 over the 4 callers' calls.
 *    - the client's floor: node-postgres `SELECT 1` round trip (same loop).
 * Every reply is checked against its payload.
 *
 * It prints one table (call(), alternative, how many times faster, target,
 * met) and writes bench/results/call.json. About 11 s on a quiet 2-core
 * machine, up to ~60 s on a busy one. The cluster (fsync = off, which favours
 * the alternative's commits) and the daemon are removed on exit, on error and
 * on Ctrl-C / SIGTERM / SIGHUP; the daemon also exits when its stdin (a pipe
 * from this process) closes.
 *
 * Needs: the extension built and installed (`make install`, as root) and the
 * CLI built (`npm run build`). Environment: PGNW_BENCH_CALL_LAT (5000),
 * PGNW_BENCH_CALL_WARMUP (500), PGNW_BENCH_CALL_TP1 (20000),
 * PGNW_BENCH_CALL_TP4 (10000 per session), PGNW_BENCH_CALL_CLIENT4 (2500 per
 * caller), PGNW_BENCH_CALL_ALT4 (1000 per caller).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type pg from 'pg';
import { Cluster, REPO, waitFor } from '../test/helpers/cluster';
import { benchWorker } from './deploy';
import { count } from './env';


const LAT_CALLS = count('PGNW_BENCH_CALL_LAT', 5000);
const WARMUP = count('PGNW_BENCH_CALL_WARMUP', 500);
const TP1_CALLS = count('PGNW_BENCH_CALL_TP1', 20000);
const TP4_CALLS = count('PGNW_BENCH_CALL_TP4', 10000);
const CLIENT4_CALLS = count('PGNW_BENCH_CALL_CLIENT4', 2500);
const ALT4_CALLS = count('PGNW_BENCH_CALL_ALT4', 1000);
const SESSIONS = 4;
const CALL_TIMEOUT_MS = 5000;
/** advisory lock key that releases the concurrent DO loops together */
const BARRIER_KEY = 4242;
const P50_TARGET_US = 100;
const FASTER_TARGET = 10;

/** The alternative's daemon: `node -e DAEMON <config json>`, prints `ready` once it LISTENs. */
const DAEMON = `
const { Client, Pool } = require(${JSON.stringify(require.resolve('pg'))});
const cfg = JSON.parse(process.argv[1]);
const fail = (err) => { process.stderr.write('daemon: ' + (err && err.stack || err) + '\\n'); process.exit(1); };
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
(async () => {
  const pool = new Pool({ ...cfg, max: cfg.poolSize });
  pool.on('error', fail);
  // open every pooled connection now, not during the measurement
  const held = await Promise.all(Array.from({ length: cfg.poolSize }, () => pool.connect()));
  held.forEach((c) => c.release());
  const listener = new Client(cfg);
  listener.on('error', fail);
  listener.on('end', () => process.exit(0));
  await listener.connect();
  listener.on('notification', (n) => {
    const req = JSON.parse(n.payload);
    pool.query({
      name: 'reply',
      text: 'WITH r AS (INSERT INTO replies (id, body) VALUES ($1, $2::jsonb) RETURNING id) SELECT pg_notify($3, r.id::text) FROM r',
      values: [req.id, JSON.stringify({ echo: req.payload }), req.ch],
    }).catch(fail);
  });
  await listener.query('LISTEN req');
  process.stdout.write('ready\\n');
})().catch(fail);
`;

// ------------------------------------------------------------------ cleanup

let cluster: Cluster | null = null;
let daemon: ChildProcess | null = null;
let daemonErr = '';
const clients: pg.Client[] = [];

function cleanup(): void {
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    try {
      daemon.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  daemon = null;
  const c = cluster;
  cluster = null;
  if (c) {
    try {
      void c.destroy(); // synchronous inside: pg_ctl stop -m immediate, rm -rf
    } catch (err) {
      process.stderr.write(`bench:call: could not destroy the cluster in ${c.dir}: ${String(err)}\n`);
    }
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench:call: ${sig}: stopping the daemon and removing the cluster\n`);
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}
process.on('exit', cleanup);

function status(msg: string): void {
  process.stderr.write(`bench:call: ${msg}\n`);
}

// ------------------------------------------------------------------ statistics

/** As percentile_cont: linear interpolation between the closest ranks. */
function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

interface Latency {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
  /** calls / wall time of the same loop */
  callsPerS: number;
}

function latencyOf(us: number[], wallS: number): Latency {
  const s = [...us].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 0.5),
    p99: percentile(s, 0.99),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    max: s[s.length - 1],
    callsPerS: s.length / wallS,
  };
}

const nowNs = () => process.hrtime.bigint();
const usSince = (t0: bigint) => Number(nowNs() - t0) / 1000;

// ------------------------------------------------------------------ 1. inside the backend

async function inBackendLatency(c: pg.Client): Promise<Latency> {
  await c.query('CREATE TEMP TABLE call_lat (us float8)');
  await c.query('CREATE TEMP TABLE call_lat_wall (s float8)');
  await c.query(`
    DO $$
    DECLARE
      t0 timestamptz;
      w0 timestamptz;
      d float8[] := '{}';
      r jsonb;
    BEGIN
      FOR i IN 1..${WARMUP} LOOP
        PERFORM node_worker.call('svc', jsonb_build_object('i', i), ${CALL_TIMEOUT_MS});
      END LOOP;
      r := node_worker.call('svc', jsonb_build_object('i', 7), ${CALL_TIMEOUT_MS});
      IF r IS DISTINCT FROM '{"echo": {"i": 7}}'::jsonb THEN
        RAISE EXCEPTION 'unexpected reply %', r;
      END IF;
      w0 := clock_timestamp();
      FOR i IN 1..${LAT_CALLS} LOOP
        t0 := clock_timestamp();
        PERFORM node_worker.call('svc', jsonb_build_object('i', i), ${CALL_TIMEOUT_MS});
        d := array_append(d, extract(epoch FROM clock_timestamp() - t0)::float8 * 1e6);
      END LOOP;
      INSERT INTO call_lat_wall VALUES (extract(epoch FROM clock_timestamp() - w0)::float8);
      INSERT INTO call_lat SELECT unnest(d);
    END $$`);
  const r = await c.query<{ n: string; p50: number; p99: number; mean: number; max: number; wall_s: number }>(`
    SELECT count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY us) AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY us) AS p99,
           avg(us) AS mean,
           max(us) AS max,
           (SELECT s FROM call_lat_wall) AS wall_s
      FROM call_lat`);
  await c.query('DROP TABLE call_lat, call_lat_wall');
  const x = r.rows[0];
  if (Number(x.n) !== LAT_CALLS) throw new Error(`in-backend latency loop recorded ${x.n} calls`);
  // the wall time includes the clock_timestamp()/array_append bookkeeping: calls/s here is approximate
  return { n: Number(x.n), p50: x.p50, p99: x.p99, mean: x.mean, max: x.max, callsPerS: LAT_CALLS / x.wall_s };
}

/** `sessions` concurrent DO loops of `calls` each, released together; all calls / wall time. */
async function inBackendThroughput(admin: pg.Client, sessions: pg.Client[], calls: number, run: string): Promise<number> {
  await admin.query('SELECT pg_advisory_lock($1)', [BARRIER_KEY]);
  const loops = sessions.map((s, k) =>
    s.query(`
      DO $$
      DECLARE t0 timestamptz; t1 timestamptz;
      BEGIN
        FOR i IN 1..200 LOOP
          PERFORM node_worker.call('svc', jsonb_build_object('i', i), ${CALL_TIMEOUT_MS});
        END LOOP;
        PERFORM pg_advisory_lock_shared(${BARRIER_KEY});
        PERFORM pg_advisory_unlock_shared(${BARRIER_KEY});
        t0 := clock_timestamp();
        FOR i IN 1..${calls} LOOP
          PERFORM node_worker.call('svc', jsonb_build_object('i', i), ${CALL_TIMEOUT_MS});
        END LOOP;
        t1 := clock_timestamp();
        INSERT INTO call_tp VALUES ('${run}', ${k}, ${calls}, t0, t1);
      END $$`),
  );
  // a failed loop must not leave the others waiting on the barrier
  let failed: unknown = null;
  const settled = Promise.allSettled(loops.map((l) => l.catch((err) => {
    failed = err;
    throw err;
  })));
  try {
    await waitFor(
      `${sessions.length} sessions at the barrier`,
      async () => {
        if (failed) return true;
        const r = await admin.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1",
          [BARRIER_KEY],
        );
        return Number(r.rows[0].n) === sessions.length;
      },
      30000,
      5,
    );
  } finally {
    await admin.query('SELECT pg_advisory_unlock($1)', [BARRIER_KEY]);
  }
  for (const r of await settled) if (r.status === 'rejected') throw r.reason;
  const r = await admin.query<{ calls: string; wall_s: number }>(
    'SELECT sum(calls) AS calls, extract(epoch FROM max(t1) - min(t0))::float8 AS wall_s FROM call_tp WHERE run = $1',
    [run],
  );
  return Number(r.rows[0].calls) / r.rows[0].wall_s;
}

// ------------------------------------------------------------------ 2. from a client

type CallFn = (i: number) => Promise<void>;

function callVia(c: pg.Client): CallFn {
  return async (i) => {
    const r = await c.query<{ r: any }>({
      name: 'call',
      text: `SELECT node_worker.call('svc', $1::jsonb, ${CALL_TIMEOUT_MS}) AS r`,
      values: [`{"i":${i}}`],
    });
    if (r.rows[0].r?.echo?.i !== i) throw new Error(`call(): unexpected reply ${JSON.stringify(r.rows[0].r)} to ${i}`);
  };
}

function select1Via(c: pg.Client): CallFn {
  return async () => {
    const r = await c.query<{ one: number }>({ name: 'select1', text: 'SELECT 1 AS one' });
    if (r.rows[0].one !== 1) throw new Error('SELECT 1 returned something else');
  };
}

let nextAltId = 1;

/** The alternative's caller side on one connection, LISTENing on its own channel. */
async function altCaller(c: pg.Client, k: number): Promise<CallFn> {
  const ch = `rep_${k}`;
  const waiters = new Map<number, () => void>();
  c.on('notification', (n) => {
    if (n.channel !== ch) return;
    const id = Number(n.payload);
    const w = waiters.get(id);
    if (w) {
      waiters.delete(id);
      w();
    }
  });
  await c.query(`LISTEN ${ch}`);
  return async (i) => {
    const id = nextAltId++;
    let timer: NodeJS.Timeout | undefined;
    const replied = new Promise<void>((resolve, reject) => {
      waiters.set(id, resolve);
      timer = setTimeout(() => {
        waiters.delete(id);
        reject(new Error(`alternative: no reply to request ${id} within ${CALL_TIMEOUT_MS} ms${daemonErr ? `; daemon: ${daemonErr}` : ''}`));
      }, CALL_TIMEOUT_MS);
    });
    try {
      await c.query({ name: 'req', text: "SELECT pg_notify('req', $1)", values: [JSON.stringify({ id, ch, payload: { i } })] });
      await replied;
    } finally {
      clearTimeout(timer);
    }
    const r = await c.query<{ body: any }>({ name: 'take', text: 'DELETE FROM replies WHERE id = $1 RETURNING body', values: [id] });
    if (r.rows[0]?.body?.echo?.i !== i) throw new Error(`alternative: unexpected reply ${JSON.stringify(r.rows[0])} to ${i}`);
  };
}

/** WARMUP calls, then `n` calls timed one by one; the loop's wall time gives calls/s. */
async function clientLatency(fn: CallFn, n: number, warmup = WARMUP): Promise<Latency> {
  for (let i = 0; i < warmup; i++) await fn(i);
  const us = new Array<number>(n);
  const w0 = nowNs();
  for (let i = 0; i < n; i++) {
    const t0 = nowNs();
    await fn(i);
    us[i] = usSince(t0);
  }
  return latencyOf(us, usSince(w0) / 1e6);
}

/** Every fn runs `n` timed calls concurrently (after a short warm-up each): all calls / wall time, p50 over all. */
async function clientConcurrent(fns: CallFn[], n: number): Promise<Latency> {
  await Promise.all(fns.map(async (fn) => {
    for (let i = 0; i < 100; i++) await fn(i);
  }));
  const all: number[][] = fns.map(() => new Array<number>(n));
  const w0 = nowNs();
  await Promise.all(
    fns.map(async (fn, k) => {
      for (let i = 0; i < n; i++) {
        const t0 = nowNs();
        await fn(i);
        all[k][i] = usSince(t0);
      }
    }),
  );
  return latencyOf(all.flat(), usSince(w0) / 1e6);
}

// ------------------------------------------------------------------ output

function table(head: string[], rows: string[][], align: ('l' | 'r')[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (align[i] === 'r' ? (c ?? '').padStart(widths[i]) : (c ?? '').padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)].map((l) => '  ' + l).join('\n');
}

const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const us1 = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} us` : 'n/a');
const cps = (x: number) => (Number.isFinite(x) ? `${int(x)}/s` : 'n/a');
const times = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)}x` : '-');

interface Row {
  id: string;
  what: string;
  unit: 'us' | 'calls/s';
  call: number;
  alt: number | null;
  /** how many times faster call() is than the alternative */
  faster: number | null;
  target: string | null;
  met: boolean | null;
}

// ------------------------------------------------------------------ main

async function startDaemon(c: Cluster): Promise<void> {
  const cfg = { host: c.dir, port: c.port, user: 'postgres', database: 'postgres', poolSize: SESSIONS };
  const child = spawn(process.execPath, ['-e', DAEMON, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'], cwd: REPO });
  daemon = child;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    daemonErr = (daemonErr + d).slice(-4000);
  });
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the daemon did not start within 15 s: ${daemonErr}`)), 15000);
    child.stdout!.on('data', (d: string) => {
      out += d;
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`the daemon exited (${code ?? sig}): ${daemonErr}`));
    });
  });
  child.removeAllListeners('exit');
  child.on('exit', (code, sig) => {
    if (daemon === child) status(`the daemon exited (${code ?? sig}) ${daemonErr}`);
  });
}

async function main(): Promise<void> {
  const tStart = Date.now();
  const loadStart = os.loadavg()[0];
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js')))
    throw new Error('the CLI is not built: run `npm run build` (and `make install` as root) first');

  status('creating the cluster, deploying svc');
  const c = await Cluster.create();
  cluster = c;
  await c.deployFile(benchWorker('svc.ts'));
  await c.start();
  const connect = async () => {
    const cl = await c.client();
    clients.push(cl);
    return cl;
  };
  const admin = await connect();
  await admin.query('CREATE EXTENSION pg_node_worker');
  await admin.query('CREATE TABLE replies (id bigint PRIMARY KEY, body jsonb NOT NULL)');
  await admin.query('CREATE TABLE call_tp (run text, session int, calls int, t0 timestamptz, t1 timestamptz)');
  await waitFor(
    'svc to serve calls',
    async () => (await admin.query("SELECT node_worker.call('svc', '1', 1000) AS r")).rows[0].r?.echo === 1,
    30000,
    100,
  );
  const server = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v;
  const sessions = await Promise.all(Array.from({ length: SESSIONS }, connect));

  const f: Record<string, any> = {};
  status(`1. in the backend: latency (${WARMUP} + ${LAT_CALLS} calls in a DO loop)`);
  f.backendLatency = await inBackendLatency(sessions[0]);
  status(`1. in the backend: calls/s, 1 session x ${TP1_CALLS}`);
  f.backendTp1 = await inBackendThroughput(admin, sessions.slice(0, 1), TP1_CALLS, 'tp1');
  status(`1. in the backend: calls/s, ${SESSIONS} sessions x ${TP4_CALLS}`);
  f.backendTp4 = await inBackendThroughput(admin, sessions, TP4_CALLS, 'tp4');

  status(`2. from the client: call() (${WARMUP} + ${LAT_CALLS}), then ${SESSIONS} callers x ${CLIENT4_CALLS}`);
  f.clientSelect1 = await clientLatency(select1Via(sessions[0]), LAT_CALLS);
  f.clientCall1 = await clientLatency(callVia(sessions[0]), LAT_CALLS);
  f.clientCall4 = await clientConcurrent(sessions.map(callVia), CLIENT4_CALLS);

  status(`2. the alternative: daemon (LISTEN req) + replies table; ${WARMUP} + ${LAT_CALLS}, then ${SESSIONS} callers x ${ALT4_CALLS}`);
  await startDaemon(c);
  const altCallers = await Promise.all(sessions.map((s, k) => altCaller(s, k)));
  f.alt1 = await clientLatency(altCallers[0], LAT_CALLS);
  f.alt4 = await clientConcurrent(altCallers, ALT4_CALLS);
  const left = Number((await admin.query<{ n: string }>('SELECT count(*) AS n FROM replies')).rows[0].n);
  if (left !== 0) throw new Error(`the alternative left ${left} reply rows behind`);

  // ---- rows
  const bl = f.backendLatency as Latency, c1 = f.clientCall1 as Latency, c4 = f.clientCall4 as Latency;
  const a1 = f.alt1 as Latency, a4 = f.alt4 as Latency, s1 = f.clientSelect1 as Latency;
  const row = (r: Omit<Row, 'faster' | 'met'> & { targetMet?: boolean | null }): Row => {
    const faster = r.alt === null ? null : r.unit === 'us' ? r.alt / r.call : r.call / r.alt;
    let met: boolean | null = r.targetMet ?? null;
    if (r.target?.startsWith('>=') && faster !== null) met = faster >= FASTER_TARGET;
    const { targetMet: _, ...rest } = r;
    return { ...rest, faster, met };
  };
  const rows: Row[] = [
    row({ id: '1a', what: 'in backend: p50 latency, 1 session', unit: 'us', call: bl.p50, alt: null, target: `<= ${P50_TARGET_US} us`, targetMet: bl.p50 <= P50_TARGET_US }),
    row({ id: '1b', what: 'in backend: p99 latency, 1 session', unit: 'us', call: bl.p99, alt: null, target: null }),
    row({ id: '1c', what: 'in backend: calls/s, 1 session', unit: 'calls/s', call: f.backendTp1, alt: null, target: null }),
    row({ id: '1d', what: `in backend: calls/s, ${SESSIONS} sessions`, unit: 'calls/s', call: f.backendTp4, alt: null, target: null }),
    row({ id: '2a', what: 'client: p50 latency, 1 caller', unit: 'us', call: c1.p50, alt: a1.p50, target: `>= ${FASTER_TARGET}x` }),
    row({ id: '2b', what: 'client: p99 latency, 1 caller', unit: 'us', call: c1.p99, alt: a1.p99, target: null }),
    row({ id: '2c', what: 'client: calls/s, 1 caller', unit: 'calls/s', call: c1.callsPerS, alt: a1.callsPerS, target: `>= ${FASTER_TARGET}x` }),
    row({ id: '2d', what: `client: calls/s, ${SESSIONS} callers`, unit: 'calls/s', call: c4.callsPerS, alt: a4.callsPerS, target: `>= ${FASTER_TARGET}x` }),
    row({ id: '2e', what: `client: p50 latency, ${SESSIONS} callers`, unit: 'us', call: c4.p50, alt: a4.p50, target: null }),
    row({ id: '2f', what: 'client: call() p50 minus SELECT 1 p50', unit: 'us', call: c1.p50 - s1.p50, alt: a1.p50 - s1.p50, target: null }),
  ];

  const facts = {
    date: new Date().toISOString(),
    nproc: execFileSync('nproc', { encoding: 'utf8' }).trim(),
    cpu: (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? os.cpus()[0]?.model ?? '?').trim(),
    kernel: `${os.type()} ${os.release()}`,
    server,
    clientNode: process.version,
    pgVersion: (require('pg/package.json') as { version: string }).version,
    loadStart,
    loadEnd: os.loadavg()[0],
  };

  const out: string[] = [];
  const p = (s = '') => out.push(s);
  p();
  p(`pg_node_worker call() bench  ${facts.date}`);
  p(`  machine: nproc ${facts.nproc}, ${facts.cpu}, ${facts.kernel}`);
  p(`  server:  PostgreSQL ${facts.server}, fsync off; client and daemon: node-postgres ${facts.pgVersion} on Node ${facts.clientNode}, unix socket`);
  p(`  load:    1-min loadavg ${facts.loadStart.toFixed(2)} before the run, ${facts.loadEnd.toFixed(2)} after it (this includes the bench's own load)`);
  if (facts.loadStart > 0.5)
    p('  WARNING: other processes were using the CPU when the run began: figures may be lower and noisier than on an idle machine');
  p();
  p('call() round trip vs pg_notify to an external node-postgres daemon replying through a table row + NOTIFY');
  p(table(
    ['#', 'what', 'call()', 'alternative', 'faster', 'target', 'met'],
    rows.map((r) => {
      const v = (x: number | null) => (x === null ? '-' : r.unit === 'us' ? us1(x) : cps(x));
      return [r.id, r.what, v(r.call), v(r.alt), r.faster === null ? '-' : times(r.faster), r.target ?? '', r.met === null ? '' : r.met ? 'yes' : 'NO'];
    }),
    ['l', 'l', 'r', 'r', 'r', 'l', 'l'],
  ));
  p(`  faster = alternative / call() for latencies, call() / alternative for calls/s.`);
  p(`  in backend: PL/pgSQL loops, clock_timestamp() per call (${WARMUP} + ${LAT_CALLS} calls), ${TP1_CALLS} calls in 1 session, ${SESSIONS} x ${TP4_CALLS} concurrently.`);
  p(`  client: node-postgres, hrtime per query; ${WARMUP} + ${LAT_CALLS} calls from 1 caller, ${SESSIONS} callers x ${CLIENT4_CALLS} (call()) / x ${ALT4_CALLS} (alternative).`);
  p(`  client floor: node-postgres SELECT 1 p50 ${us1(s1.p50)}, p99 ${us1(s1.p99)}, ${cps(s1.callsPerS)}; the alternative cannot run inside one`);
  p(`  statement (its request is sent at commit): from SQL, call() p50 ${us1(bl.p50)} vs the alternative's client p50 ${us1(a1.p50)} is ${times(a1.p50 / bl.p50)}.`);
  p(`  in backend, mean ${us1(bl.mean)}, max ${us1(bl.max)}; client call() mean ${us1(c1.mean)}, max ${us1(c1.max)}; alternative mean ${us1(a1.mean)}, max ${us1(a1.max)}.`);
  p();
  p(`total ${((Date.now() - tStart) / 1000).toFixed(0)} s`);
  const text = out.join('\n') + '\n';
  process.stdout.write(text);

  const resultsDir = path.join(REPO, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(
    path.join(resultsDir, 'call.json'),
    JSON.stringify({ facts, rows, figures: f, config: { LAT_CALLS, WARMUP, TP1_CALLS, TP4_CALLS, CLIENT4_CALLS, ALT4_CALLS, SESSIONS } }, null, 2) + '\n',
  );
  status('wrote bench/results/call.json');
}

main()
  .catch((err) => {
    process.stderr.write(`bench:call failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    if (daemonErr) process.stderr.write(`----- daemon stderr -----\n${daemonErr}\n-----\n`);
    if (cluster) process.stderr.write(`----- server log (last 60 lines) -----\n${cluster.logTail(60)}\n-----\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    if (daemon) daemon.stdin?.end();
    await Promise.all(clients.map((cl) => cl.end().catch(() => undefined)));
    cleanup();
  });
