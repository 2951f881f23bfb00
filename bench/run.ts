/**
 * `npm run bench`: figures, not a test (nothing here asserts on speed).
 *
 * One process, two throwaway clusters (test/helpers/cluster.ts: initdb in a
 * temp dir, unix socket only, run as `postgres` when we are root):
 *   A (shared_buffers = 512MB) runs the throughput figures:
 *     1. SELECT 1 calls/s: TS worker (ctx.sql per call / inside one
 *        ctx.transaction), the C reference bgworker (SPI_execute_plan of a kept
 *        plan, and the naive SPI_execute of the text per call), node-postgres
 *        over the unix socket; the TS and kept-plan loops in SELECT1_ROUNDS
 *        short rounds, each TS loop next to its C loop, which one runs first
 *        alternating (medians; ratio: the median of the rounds' ratios, with
 *        their middle half);
 *     2. fetches from pre-filled tables (so the query itself is cheap and the
 *        conversion to JS shows): 1M (int4, text) rows and N (int4, int8,
 *        float8, bool, text, timestamptz, jsonb, numeric) rows, FETCH_RUNS
 *        times each, every field of every row read (TS and node-postgres);
 *        min / median / max of each side, the ratio of the medians, the
 *        lowest ratio of the k-th runs of the two sides (run by run) and the
 *        worst ratio (slowest TS run / fastest node-postgres run);
 *     3. a cursor over 10M rows in a fresh worker: its peak RSS (VmHWM) vs idle;
 *   B (max_worker_processes = 40) runs start-up, memory and scale:
 *     4. fork -> first line of user code over 8 restarts of the worker on
 *        the running server (4s: over 5 server starts), vs a bare
 *        `node -e ''` spawned by this process, also between the restarts
 *        (PGNW_BENCH_NODE, else /usr/bin/node; marked "other Node build" when
 *        its major is not the embedded Node's);
 *     5. idle PSS with 2 and with 4 workers running; idle CPU;
 *     6. 32 workers: time from `pg_ctl start` returning to 32 node_worker rows
 *        in pg_stat_activity; pgbench -C connection time with the extension
 *        preloaded (0 workers) vs without it.
 * It prints one table (figure, baseline, ratio, target, met?) and writes it to
 * bench/results/latest.json and bench/results/latest.svg.
 *
 * The TS workers are files of bench/workers/ (typechecked by bench/tsconfig.json),
 * deployed with the CLI: as they are, or through a two-line entry calling a
 * template with this run's values (bench/deploy.ts).
 *
 * The C reference (bench/spi_reference.c) is built by `make -C bench`
 * (PGXS), copied into cluster A's temp dir and loaded by absolute path, so
 * nothing is installed into the server's pkglibdir.  The extension itself
 * must be installed (`make install`), the CLI built (`npm run build`).
 *
 * Environment: PGNW_BENCH_SELECT1_MS (2000), PGNW_BENCH_CURSOR_ROWS (10000000),
 * PGNW_BENCH_ROWS8 (500000), PGNW_BENCH_NODE (the bare node of row 4;
 * /usr/bin/node), PGNW_BENCH_ONLY (comma list of phases:
 * select1,fetch,cursor,startup,memory,scale; default all),
 * PGNW_BENCH_PRELOAD_RUNTIME (on; off: the start-up, memory and scale cluster
 * runs with node_worker.preload_runtime = off, for comparing the two).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { Cluster, cpuMs, installedNodeVersion, PG_BIN, REPO, sleep, waitFor } from '../test/helpers/cluster';
import { benchWorker, deployBenchTemplate } from './deploy';
import { cursorSql, FETCH2_SQL, FETCH8_SQL, readRows2, readRows8, type Row2, type Row8 } from './workers/queries';

const SELECT1_MS = Number(process.env.PGNW_BENCH_SELECT1_MS ?? 2000);
const SELECT1_WARMUP_MS = 300;
/**
 * Rounds of the TS and C kept-plan SELECT 1 loops, each TS loop next to its C loop, and each
 * loop's length. The speed of a 2-core VM moves by up to 2x from one second to the next (the C
 * loop alone: 419k-821k calls/s in consecutive 600 ms loops), so many short pairs give a
 * steadier median than a few long ones (9 x 600 ms: 1c 0.77-0.87 over 7 runs; 3 x 2 s: 0.61-0.84).
 */
const SELECT1_ROUNDS = 9;
const SELECT1_ROUND_MS = 600;
const FETCH_RUNS = 5;
const ROWS2 = 1000000;
const ROWS8 = Number(process.env.PGNW_BENCH_ROWS8 ?? 500000);
const CURSOR_ROWS = Number(process.env.PGNW_BENCH_CURSOR_ROWS ?? 10000000);
const CURSOR_BATCH = 1000;
const STARTUP_RUNS = 5;
const BARE_NODE_RUNS = 10;
const RESTART_RUNS = 8;
const SCALE_WORKERS = 32;
const PGBENCH_SECONDS = 3;
const ONLY = new Set((process.env.PGNW_BENCH_ONLY ?? 'select1,fetch,cursor,startup,memory,scale').split(',').map((x) => x.trim()));
const CURSOR_SQL = cursorSql(CURSOR_ROWS);
/** the bare node of the start-up row: best the same build as the embedded libnode */
const NODE_BIN = process.env.PGNW_BENCH_NODE || '/usr/bin/node';

const SCHEMA_A = `
CREATE TABLE bench_rows AS SELECT i::int4 AS i, md5(i::text) AS t FROM generate_series(1, ${ROWS2}) i;
CREATE TABLE bench_rows8 AS
  SELECT i::int4 AS a, i::int8 * 1000003 AS b, i / 7.0::float8 AS c, i % 3 = 0 AS d, md5(i::text) AS e,
         timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS f,
         jsonb_build_object('id', i, 'tag', 'x' || (i % 100)) AS g, round(i / 3.0, 4)::numeric AS h
  FROM generate_series(1, ${ROWS8}) i;
VACUUM ANALYZE bench_rows;
VACUUM ANALYZE bench_rows8;
`;

const SCHEMA_B = `
CREATE TABLE bench_startup (id serial PRIMARY KEY, pid int, first_line_ms float8, bundle_ms float8, node_version text, phases jsonb);
CREATE TABLE bench_alive (name text, pid int, at timestamptz DEFAULT clock_timestamp());
`;

// ------------------------------------------------------------------ helpers

const clusters = new Set<Cluster>();
let admin: pg.Client | null = null;
let current: Cluster | null = null;

function cleanup(): void {
  for (const c of [...clusters]) {
    clusters.delete(c);
    try {
      void c.destroy(); // synchronous inside: pg_ctl stop -m immediate, rm -rf
    } catch (err) {
      process.stderr.write(`bench: could not destroy the cluster in ${c.dir}: ${String(err)}\n`);
    }
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}: stopping and removing the clusters\n`);
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
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
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

/** Runs a job in a TS bench worker ('bench' or 'cursor'). */
async function tsJob(kind: string, arg: number, timeoutMs: number, worker = 'bench'): Promise<Figure[]> {
  const run = `ts_${kind}_${++runSeq}`;
  await admin!.query('INSERT INTO bench_jobs(run, worker, kind, arg) VALUES ($1, $2, $3, $4)', [run, worker, kind, arg]);
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
}

function memOf(pid: number): Mem {
  const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (text: string, field: string): number | null => {
    const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  };
  return {
    pssKb: kb(rollup, 'Pss') ?? NaN,
    rssKb: kb(st, 'VmRSS') ?? NaN,
    ussKb: (kb(rollup, 'Private_Clean') ?? NaN) + (kb(rollup, 'Private_Dirty') ?? NaN),
    pssAnonKb: kb(rollup, 'Pss_Anon'),
    pssFileKb: kb(rollup, 'Pss_File'),
  };
}

/** Samples every 500 ms until the summed PSS moved < 0.5% over 1 s (at least minMs, at most 10 s). */
async function settledMems(pids: number[], minMs = 2000): Promise<Mem[]> {
  const t0 = Date.now();
  const samples: Mem[][] = [];
  for (;;) {
    samples.push(pids.map(memOf));
    const n = samples.length;
    const total = (i: number) => samples[i].reduce((s, m) => s + m.pssKb, 0);
    if (Date.now() - t0 >= minMs && n >= 3) {
      const a = total(n - 3), b = total(n - 1);
      if (Math.abs(b - a) <= 0.005 * b) return samples[n - 1];
    }
    if (Date.now() - t0 > 10000) return samples[n - 1];
    await sleep(500);
  }
}

/** pids of the running node workers (pg_stat_activity) */
async function nodeWorkerPids(client: pg.Client): Promise<number[]> {
  const r = await client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE backend_type = 'node_worker' ORDER BY pid");
  return r.rows.map((x) => x.pid);
}

/** The data directory owner's uid/gid (the cluster's OS user). */
function ownerOf(dir: string): { uid: number; gid: number } {
  const st = fs.statSync(dir);
  return { uid: st.uid, gid: st.gid };
}

/**
 * Copies a deployed worker (bundle + manifest) under other names: deploying
 * each with the CLI (esbuild) would take ~0.3 s apiece.
 */
function cloneWorker(c: Cluster, from: string, names: string[]): void {
  const dir = path.join(c.datadir, 'node_worker');
  const code = fs.readFileSync(path.join(dir, `${from}.js`), 'utf8');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, `${from}.json`), 'utf8')) as Record<string, unknown>;
  const owner = ownerOf(c.datadir);
  for (const name of names) {
    const js = code.split(JSON.stringify(from)).join(JSON.stringify(name)).split(`'${from}'`).join(`'${name}'`);
    const m = { ...manifest, name, bundle: `${name}.js`, sha256: createHash('sha256').update(js, 'utf8').digest('hex') };
    for (const [file, text] of [[`${name}.js`, js], [`${name}.json`, JSON.stringify(m, null, 2) + '\n']] as const) {
      const p = path.join(dir, file);
      fs.writeFileSync(p, text, { mode: 0o600 });
      fs.chownSync(p, owner.uid, owner.gid);
    }
  }
}

/** Removes deployed workers (bundle + manifest) but `keep`. */
function undeployAll(c: Cluster, keep: string[] = []): void {
  const dir = path.join(c.datadir, 'node_worker');
  for (const f of fs.readdirSync(dir)) {
    const base = f.replace(/\.(js|json)$/, '');
    if (!keep.includes(base) && /\.(js|json)$/.test(f)) fs.rmSync(path.join(dir, f));
  }
}

/** Sets a line of postgresql.auto.conf (as ALTER SYSTEM would, with the server down). */
function setAutoConf(c: Cluster, key: string, value: string): void {
  const file = path.join(c.datadir, 'postgresql.auto.conf');
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => !l.startsWith(`${key} `) && !l.startsWith(`${key}=`)) : [];
  lines.push(`${key} = '${value}'`);
  const owner = ownerOf(c.datadir);
  fs.writeFileSync(file, lines.filter((l, i) => l !== '' || i < lines.length - 1).join('\n') + '\n');
  fs.chownSync(file, owner.uid, owner.gid);
}

/** `pgbench -n -C -T s` of SELECT 1 as the server's OS user; average connection time in ms. */
function pgbenchConnMs(c: Cluster): { connMs: number; tps: number } {
  const script = path.join(c.dir, 'select1.sql');
  fs.writeFileSync(script, 'SELECT 1;\n');
  fs.chmodSync(script, 0o644);
  const out = c.run(path.join(PG_BIN, 'pgbench'), ['-n', '-C', '-T', String(PGBENCH_SECONDS), '-f', script, '-h', c.dir, '-p', String(c.port), '-U', 'postgres', 'postgres']);
  const conn = out.match(/average connection time = ([\d.]+) ms/);
  const tps = out.match(/tps = ([\d.]+)/);
  if (!conn) throw new Error(`pgbench printed no connection time:\n${out}`);
  return { connMs: Number(conn[1]), tps: tps ? Number(tps[1]) : NaN };
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
/** `min / median / max` rows/s of repeated runs, in M (or k below a million) */
function spread(xs: number[]): string {
  if (!xs || xs.length === 0) return 'n/a';
  const big = median(xs) >= 1e6;
  const u = (x: number) => (big ? (x / 1e6).toFixed(2) : (x / 1e3).toFixed(0));
  return `${u(Math.min(...xs))} / ${u(median(xs))} / ${u(Math.max(...xs))} ${big ? 'M' : 'k'} rows/s`;
}
const x2 = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a');

/** One line of the summary: a figure, what it is compared with, the ratio and the target. */
interface Target {
  id: string;
  what: string;
  figure: string;
  baseline: string;
  /** figure / baseline (or figure / limit for absolute targets) */
  ratio: number;
  /** ratio must be >= (or <=) this */
  target: number;
  dir: '>=' | '<=';
  met: boolean | null;
  /** for figures measured several times: the least favourable ratio of two runs */
  worst?: number;
  /** for figures measured several times on both sides: the lowest ratio of the k-th runs */
  paired?: number;
  /** for a ratio measured in many pairs: the middle half of the pairs' ratios (quartiles) */
  middle?: [number, number];
  note?: string;
}

/**
 * The ratio as printed: `2.90`, or `2.90 (run by run 2.52, worst 2.41)` when the runs give a
 * lowest k-th-run ratio and a worst ratio, or `0.85 (middle half of the pairs 0.77-0.93)`.
 */
function ratioCell(t: Target): string {
  if (!Number.isFinite(t.ratio)) return 'n/a';
  const fix = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
  const extra = [
    t.paired === undefined ? '' : `run by run ${fix(t.paired)}`,
    t.middle === undefined ? '' : `middle half of the pairs ${fix(t.middle[0])}-${fix(t.middle[1])}`,
    t.worst === undefined ? '' : `worst ${fix(t.worst)}`,
  ].filter(Boolean);
  return extra.length === 0 ? t.ratio.toFixed(2) : `${t.ratio.toFixed(2)} (${extra.join(', ')})`;
}

function target(t: Omit<Target, 'met'>): Target {
  const met = Number.isFinite(t.ratio) ? (t.dir === '>=' ? t.ratio >= t.target : t.ratio <= t.target) : null;
  return { ...t, met };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A bar per target: how far the figure is from its target on a log scale
 * (score = ratio / target for >=, target / ratio for <=; 1 = exactly met).
 */
function svgChart(targets: Target[], title: string): string {
  const W = 980, labelW = 430, barX = labelW + 10, barW = 380, rowH = 26, top = 56;
  const H = top + rowH * targets.length + 40;
  const lo = Math.log10(0.1), hi = Math.log10(10);
  const xOf = (score: number) => Math.round((barX + ((Math.log10(Math.min(10, Math.max(0.1, score))) - lo) / (hi - lo)) * barW) * 10) / 10;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`);
  parts.push(`<text x="10" y="38" fill="#555">bar: figure vs target on a log scale (the line at 1 = target exactly met; right of it = met). green met, red not met, grey not measured</text>`);
  for (const s of [0.1, 0.25, 0.5, 1, 2, 4, 10]) {
    const x = xOf(s);
    parts.push(`<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${top + rowH * targets.length}" stroke="${s === 1 ? '#000' : '#ddd'}" stroke-width="${s === 1 ? 1.5 : 1}"/>`);
    parts.push(`<text x="${x}" y="${top + rowH * targets.length + 14}" text-anchor="middle" fill="#555">${s}</text>`);
  }
  targets.forEach((t, i) => {
    const y = top + i * rowH;
    const score = !Number.isFinite(t.ratio) ? NaN : t.dir === '>=' ? t.ratio / t.target : t.ratio <= 0 ? 10 : t.target / t.ratio;
    const color = t.met === null ? '#bbb' : t.met ? '#2e9d48' : '#d0453a';
    parts.push(`<text x="10" y="${y + 16}">${esc(`${t.id} ${t.what}`)}</text>`);
    const x0 = xOf(0.1);
    const x1 = Number.isFinite(score) ? xOf(score) : x0 + 4;
    parts.push(`<rect x="${x0}" y="${y + 5}" width="${Math.max(2, x1 - x0)}" height="${rowH - 10}" fill="${color}"/>`);
    parts.push(`<text x="${barX + barW + 10}" y="${y + 16}">${esc(`${ratioCell(t)} (target ${t.dir} ${t.target})`)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

// ------------------------------------------------------------------ main

const loadavg = () => os.loadavg()[0];

/** The Node version the installed runtime embeds (pkglibdir/pg_node_worker/node-version), as `vX.Y.Z`. */
function embeddedNodeVersion(): string {
  try {
    const v = installedNodeVersion();
    return v.startsWith('v') ? v : `v${v}`;
  } catch {
    return '?';
  }
}

/** The major of a `vX.Y.Z` version, or NaN. */
const majorOf = (v: string) => Number(/^v?(\d+)\./.exec(v)?.[1] ?? NaN);

async function clusterA(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  status('cluster A: creating (shared_buffers 512MB)');
  const c = await Cluster.create({ settings: { shared_buffers: '512MB', work_mem: '4MB' } });
  clusters.add(c);
  current = c;
  const so = path.join(c.dir, 'pgnw_bench.so');
  fs.copyFileSync(path.join(REPO, 'bench', 'pgnw_bench.so'), so);
  fs.chmodSync(so, 0o755);
  await c.start();
  admin = await c.client();
  await admin.query(`CREATE TABLE bench_jobs (id serial PRIMARY KEY, run text NOT NULL, worker text NOT NULL DEFAULT 'bench', kind text NOT NULL, arg int NOT NULL, taken bool NOT NULL DEFAULT false);
                     CREATE TABLE bench_results (id serial PRIMARY KEY, run text NOT NULL, key text NOT NULL, value float8, note text);
                     CREATE FUNCTION pgnw_bench_launch(mode text, run text, arg int) RETURNS int AS '${so}', 'pgnw_bench_launch' LANGUAGE C STRICT`);
  await admin.end();
  admin = null;
  status('cluster A: deploying the TS workers and restarting');
  await deployBenchTemplate(c, 'bench', 'pgnw_bench', { rows2: ROWS2, rows8: ROWS8, select1WarmupMs: SELECT1_WARMUP_MS });
  if (ONLY.has('cursor')) await deployBenchTemplate(c, 'cursor', 'pgnw_cursor', { rows: CURSOR_ROWS, batch: CURSOR_BATCH });
  await c.restart();
  admin = await c.client();
  if (ONLY.has('fetch')) {
    status(`cluster A: filling bench_rows (${ROWS2} rows) and bench_rows8 (${ROWS8} rows)`);
    for (const stmt of SCHEMA_A.split(';').map((x) => x.trim()).filter(Boolean)) await admin.query(stmt);
    // into shared_buffers (both are < 1/4 of it, so a seq scan does not use a ring buffer)
    await admin.query('SELECT count(*) FROM bench_rows; SELECT count(*) FROM bench_rows8');
  }
  const boot = await waitFor('the TS bench worker to start', async () => {
    const r = await admin!.query<Figure>("SELECT key, value, note FROM bench_results WHERE run = 'ts_boot'");
    return r.rows[0] ?? null;
  }, 30000);
  out.workerNode = boot.note ?? '?';
  out.benchWorkerPid = boot.value;
  out.server = (await admin.query('SHOW server_version')).rows[0].server_version;
  out.sharedBuffers = (await admin.query('SHOW shared_buffers')).rows[0].shared_buffers;
  out.heapLimit = (await admin.query("SELECT current_setting('node_worker.heap_limit_mb', true) AS v")).rows[0].v;

  const client = await c.client();
  if (ONLY.has('select1')) {
    const timeout = SELECT1_MS + SELECT1_WARMUP_MS + 30000;
    // the machine's speed moves within seconds: each TS loop runs next to its C loop, in many rounds
    const rounds: Record<'tsEach' | 'cEach' | 'tsXact' | 'cXact', number[]> = { tsEach: [], cEach: [], tsXact: [], cXact: [] };
    for (let r = 1; r <= SELECT1_ROUNDS; r++) {
      status(`SELECT 1: round ${r} of ${SELECT1_ROUNDS}, TS worker and C reference bgworker (kept plan), ${SELECT1_ROUND_MS} ms per loop`);
      const ts = async (kind: string) => values(await tsJob(kind, SELECT1_ROUND_MS, timeout), 'calls_per_s')[0];
      const cl = async (kind: string) => values((await cJob(kind, SELECT1_ROUND_MS, timeout)).figs, 'calls_per_s')[0];
      // odd rounds run the TS loop first, even rounds the C loop: a drift within a round favours
      // neither side
      const pair = async (kind: string): Promise<[number, number]> => {
        if (r % 2 === 1) {
          const t = await ts(kind);
          return [t, await cl(kind)];
        }
        const c0 = await cl(kind);
        return [await ts(kind), c0];
      };
      const [tsEach, cEach] = await pair('select1_each');
      const [tsXact, cXact] = await pair('select1_xact');
      rounds.tsEach.push(tsEach);
      rounds.cEach.push(cEach);
      rounds.tsXact.push(tsXact);
      rounds.cXact.push(cXact);
    }
    out.select1Rounds = rounds;
    out.tsEach = median(rounds.tsEach);
    out.tsXact = median(rounds.tsXact);
    out.cEach = median(rounds.cEach);
    out.cXact = median(rounds.cXact);
    status('SELECT 1: C reference bgworker, SPI_execute of the text');
    out.cNaiveEach = values((await cJob('select1_naive_each', SELECT1_MS, timeout)).figs, 'calls_per_s')[0];
    out.cNaiveXact = values((await cJob('select1_naive_xact', SELECT1_MS, timeout)).figs, 'calls_per_s')[0];
    status('SELECT 1: node-postgres');
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
    out.pgEach = await pgLoop(SELECT1_MS);
    await client.query('BEGIN');
    await pgLoop(SELECT1_WARMUP_MS);
    out.pgXact = await pgLoop(SELECT1_MS);
    await client.query('COMMIT');
  }

  if (ONLY.has('fetch')) {
    status(`fetch x${FETCH_RUNS}: TS worker (${FETCH2_SQL}; ${FETCH8_SQL})`);
    const ts2 = await tsJob('fetch2', FETCH_RUNS, 120000);
    out.ts2 = values(ts2, 'rows_per_s');
    out.ts2Read = values(ts2, 'read_ms');
    out.ts2Fetch = values(ts2, 'fetch_ms');
    out.ts2Faults = values(ts2, 'page_faults');
    out.ts2Heap = values(ts2, 'heap_used_mb')[0];
    out.ts2Rss = values(ts2, 'rss_mb')[0];
    out.ts8 = values(await tsJob('fetch8', FETCH_RUNS, 120000), 'rows_per_s');
    status(`fetch x${FETCH_RUNS}: C reference`);
    const c2 = (await cJob('fetch2', FETCH_RUNS, 120000)).figs;
    out.c2 = values(c2, 'rows_per_s');
    out.c2Exec = median(values(c2, 'exec_ms'));
    out.c2Deform = median(values(c2, 'deform_ms'));
    const c8 = (await cJob('fetch8', FETCH_RUNS, 120000)).figs;
    out.c8 = values(c8, 'rows_per_s');
    out.c8Exec = median(values(c8, 'exec_ms'));
    out.c8Deform = median(values(c8, 'deform_ms'));
    status(`fetch x${FETCH_RUNS}: node-postgres`);
    // end to end as in the TS worker: the query, then a loop reading every field of every row
    const pgFetch = async <R>(sql: string, expect: number, read: (rows: R[]) => number) => {
      const xs: number[] = [];
      for (let i = 0; i < FETCH_RUNS; i++) {
        const t0 = performance.now();
        const rows = (await client.query(sql)).rows as R[];
        read(rows);
        const dt = performance.now() - t0;
        if (rows.length !== expect) throw new Error(`node-postgres got ${rows.length} rows`);
        xs.push(rows.length / (dt / 1000));
      }
      return xs;
    };
    out.pg2 = await pgFetch<Row2>(FETCH2_SQL, ROWS2, readRows2);
    out.pg8 = await pgFetch<Row8>(FETCH8_SQL, ROWS8, readRows8);
  }

  if (ONLY.has('cursor')) {
    status(`cursor: ${CURSOR_ROWS} rows in batches of ${CURSOR_BATCH} in a fresh worker`);
    const cursorPid = await waitFor('the cursor worker', async () => (await admin!.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'pgnw_cursor'")).rows[0]?.pid, 20000);
    const figs = await tsJob('cursor', CURSOR_ROWS, 600000, 'cursor');
    out.cursor = {
      pid: cursorPid,
      idleRssKb: values(figs, 'idle_rss_kb')[0],
      hwmStartKb: values(figs, 'hwm_start_kb')[0],
      hwmKb: values(figs, 'hwm_kb')[0],
      rowsPerS: values(figs, 'rows_per_s')[0],
      seconds: values(figs, 'seconds')[0],
    };
  }

  if (ONLY.has('select1')) {
    status('fork -> first line: C reference bgworkers (dynamic)');
    const cMain: number[] = [], cConn: number[] = [];
    for (let i = 0; i < STARTUP_RUNS; i++) {
      const { figs } = await cJob('startup', 0, 30000);
      cMain.push(values(figs, 'fork_to_main_ms')[0]);
      cConn.push(values(figs, 'fork_to_connected_ms')[0]);
    }
    out.cMain = cMain;
    out.cConn = cConn;
  }
  await client.end();
  await admin.end();
  admin = null;
  clusters.delete(c);
  await c.destroy();
  return out;
}

/** One `node -e ''` spawned from here: wall time from spawn to exit, ms. */
function bareNodeMs(): number {
  const t0 = performance.now();
  const r = spawnSync(NODE_BIN, ['-e', ''], { stdio: 'ignore' });
  const dt = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node -e '' exited ${r.status}`);
  return dt;
}

async function clusterB(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  status(`cluster B: creating (max_worker_processes ${SCALE_WORKERS + 8})`);
  const c = await Cluster.create({
    settings: { max_worker_processes: SCALE_WORKERS + 8, 'node_worker.preload_runtime': process.env.PGNW_BENCH_PRELOAD_RUNTIME === 'off' ? 'off' : 'on' },
  });
  clusters.add(c);
  current = c;
  await c.start();
  await c.query(SCHEMA_B);

  // bare node, spawned from here: wall time from spawn to exit
  status(`bare node: ${BARE_NODE_RUNS} x ${NODE_BIN} -e ''`);
  const bare: number[] = [];
  let bareVersion = '?';
  try {
    bareVersion = execFileSync(NODE_BIN, ['--version'], { encoding: 'utf8' }).trim();
    for (let i = 0; i < BARE_NODE_RUNS + 2; i++) {
      const dt = bareNodeMs();
      if (i >= 2) bare.push(dt); // the first two warm the page cache
    }
  } catch (err) {
    status(`bare node failed: ${String(err)}`);
  }
  out.bare = bare;
  out.bareVersion = bareVersion;
  out.embeddedVersion = embeddedNodeVersion();
  // a bare node of another major is another build (snapshot, code cache, bootstrap JS): say so
  const [bareMajor, embeddedMajor] = [majorOf(bareVersion), majorOf(out.embeddedVersion as string)];
  out.bareOtherBuild = Number.isFinite(bareMajor) && Number.isFinite(embeddedMajor) && bareMajor !== embeddedMajor;

  if (ONLY.has('startup')) {
    status(`fork -> first line: ${STARTUP_RUNS} server starts with one TS worker`);
    await c.deployFile(benchWorker('startup.ts'));
    const count = async () => Number((await c.query('SELECT count(*)::int AS n FROM bench_startup'))[0].n);
    for (let i = 0; i < STARTUP_RUNS; i++) {
      const before = i === 0 ? 0 : await count();
      await c.restart();
      await waitFor('the TS startup worker', async () => (await count()) > before, 30000, 20);
    }
    type StartupRow = { first_line_ms: number; bundle_ms: number; phases: Record<string, number> };
    const rows = await c.query<StartupRow>('SELECT first_line_ms, bundle_ms, phases FROM bench_startup ORDER BY id');
    out.tsFirst = rows.map((r) => r.first_line_ms);
    out.tsBundle = rows.map((r) => r.bundle_ms);
    // the same worker restarted on the running, otherwise idle server: the conditions the bare node
    // runs in (at a server start, the server's own processes start on the same cores beside it)
    status(`fork -> first line: ${RESTART_RUNS} restarts of the TS worker on the running server, 2 bare nodes before each`);
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_node_worker');
    const lastId = Number((await c.query('SELECT coalesce(max(id), 0)::int AS n FROM bench_startup'))[0].n);
    for (let i = 0; i < RESTART_RUNS; i++) {
      const before = await count();
      await sleep(300);
      // bare nodes in between: both sides see the machine as it is now
      if (bare.length > 0) for (let k = 0; k < 2; k++) bare.push(bareNodeMs());
      await c.query("SELECT node_worker.restart('pgnw_startup')");
      await waitFor('the restarted TS startup worker', async () => (await count()) > before, 30000, 20);
    }
    const again = await c.query<StartupRow>('SELECT first_line_ms, bundle_ms, phases FROM bench_startup WHERE id > $1 ORDER BY id', [lastId]);
    out.tsFirstRestart = again.map((r) => r.first_line_ms);
    out.tsBundleRestart = again.map((r) => r.bundle_ms);
    const phases = (xs: StartupRow[]) => Object.fromEntries(['origin', 'v8Start', 'environment', 'bootstrapComplete'].map((k) => [k, median(xs.map((r) => r.phases[k]))]));
    out.tsPhases = phases(rows);
    out.tsPhasesRestart = phases(again);
    undeployAll(c);
  }

  if (ONLY.has('memory')) {
    await deployBenchTemplate(c, 'idle', 'idle_0');
    for (const n of [2, 4]) {
      status(`memory: ${n} idle workers`);
      cloneWorker(c, 'idle_0', Array.from({ length: n - 1 }, (_, k) => `idle_${k + 1}`));
      await c.query('TRUNCATE bench_alive');
      await c.restart();
      const cl = await c.client();
      try {
        await waitFor(`${n} workers running JS`, async () => Number((await cl.query('SELECT count(*)::int AS n FROM bench_alive')).rows[0].n) >= n, 30000, 50);
        const pids = await waitFor(`${n} node workers`, async () => {
          const p = await nodeWorkerPids(cl);
          return p.length === n ? p : null;
        }, 30000, 50);
        await sleep(1500);
        const mems = await settledMems(pids);
        out[`mem${n}`] = mems;
        if (n === 2) {
          const t0 = pids.map(cpuMs);
          await sleep(3000);
          out.idleCpuMs = pids.map((p, k) => cpuMs(p) - t0[k]);
        }
      } finally {
        await cl.end();
      }
    }
    undeployAll(c);
  }

  if (ONLY.has('scale')) {
    status(`scale: ${SCALE_WORKERS} workers`);
    await deployBenchTemplate(c, 'idle', 'idle_0');
    cloneWorker(c, 'idle_0', Array.from({ length: SCALE_WORKERS - 1 }, (_, k) => `idle_${k + 1}`));
    await c.query('TRUNCATE bench_alive');
    c.stop();
    await c.start();
    const t0 = performance.now();
    const cl = await c.client();
    let n = 0;
    try {
      await waitFor(`${SCALE_WORKERS} node workers`, async () => {
        n = (await nodeWorkerPids(cl)).length;
        return n >= SCALE_WORKERS;
      }, 60000, 20);
      out.scaleS = (performance.now() - t0) / 1000;
      await waitFor(`${SCALE_WORKERS} workers running JS`, async () => {
        n = Number((await cl.query('SELECT count(*)::int AS n FROM bench_alive')).rows[0].n);
        return n >= SCALE_WORKERS;
      }, 60000, 20);
      out.scaleJsS = (performance.now() - t0) / 1000;
      const pids = await nodeWorkerPids(cl);
      await sleep(1000);
      const mems = pids.map(memOf);
      out.scalePssKb = mems.reduce((s, m) => s + m.pssKb, 0) / mems.length;
    } catch (err) {
      out.scaleS = NaN;
      out.scaleReached = n;
      status(String(err));
    } finally {
      await cl.end();
    }
    undeployAll(c);

    status(`pgbench -C: preloaded with 0 workers vs not preloaded, 2 rounds of ${PGBENCH_SECONDS} s each`);
    const withExt: number[] = [], without: number[] = [];
    for (let round = 0; round < 2; round++) {
      for (const preload of [true, false]) {
        c.stop();
        setAutoConf(c, 'shared_preload_libraries', preload ? 'pg_node_worker' : '');
        await c.start();
        (preload ? withExt : without).push(pgbenchConnMs(c).connMs);
      }
    }
    out.pgbenchWith = withExt;
    out.pgbenchWithout = without;
  }
  clusters.delete(c);
  await c.destroy();
  return out;
}

async function main(): Promise<void> {
  const tStart = Date.now();
  const loadStart = loadavg();

  status('make -C bench (C SPI reference, PGXS)');
  const mk = spawnSync('make', ['-C', path.join(REPO, 'bench'), '--no-print-directory'], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`make -C bench failed (${mk.status ?? mk.signal}):\n${mk.stderr}${mk.stdout}`);
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js')))
    throw new Error('the CLI is not built: run `npm run build` (and `make install` as root) first');

  const A = ONLY.has('select1') || ONLY.has('fetch') || ONLY.has('cursor') ? await clusterA() : {};
  const B = await clusterB();
  const f = { ...A, ...B } as Record<string, any>;

  const facts = {
    date: new Date().toISOString(),
    nproc: execFileSync('nproc', { encoding: 'utf8' }).trim(),
    cpu: (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? os.cpus()[0]?.model ?? '?').trim(),
    kernel: `${os.type()} ${os.release()}`,
    memGb: (os.totalmem() / 2 ** 30).toFixed(1),
    server: f.server ?? '?',
    workerNode: f.workerNode ?? embeddedNodeVersion(),
    bareNode: `${NODE_BIN} ${f.bareVersion ?? '?'}`,
    clientNode: process.version,
    pgVersion: (require('pg/package.json') as { version: string }).version,
    loadStart,
    loadEnd: loadavg(),
  };

  // ---- targets
  const med = (xs: number[] | undefined) => (xs && xs.length ? median(xs) : NaN);
  const targets: Target[] = [];
  // min / median / max over the runs on each side; ratio of the medians; run by run = the lowest
  // ratio of the k-th TS run to the k-th node-pg run (both sides' first run is their first fetch of
  // the shape); worst = slowest TS run / fastest node-pg run
  const fetchTarget = (id: string, what: string, ts: number[], pg: number[], goal: number) =>
    target({
      id, what, figure: spread(ts), baseline: `node-pg ${spread(pg)}`, ratio: med(ts) / med(pg),
      paired: Math.min(...ts.map((x, k) => x / pg[k])), worst: Math.min(...ts) / Math.max(...pg), target: goal, dir: '>=',
    });
  // SELECT 1 against the C kept-plan loop: medians of the rounds; the ratio is the median of the
  // rounds' ratios (each TS loop next to its C loop), with the middle half of them
  const keptPlanTarget = (id: string, what: string, ts: number[], c: number[]) => {
    const ratios = ts.map((x, k) => x / c[k]).sort((a, b) => a - b);
    const q = (p: number) => ratios[Math.round(p * (ratios.length - 1))];
    return target({
      id, what, figure: `${int(med(ts))}/s`, baseline: `C plan ${int(med(c))}/s`, ratio: med(ratios),
      middle: [q(0.25), q(0.75)], target: 0.8, dir: '>=',
    });
  };
  if (ONLY.has('select1')) {
    targets.push(
      target({ id: '1a', what: 'SELECT 1 own xact: TS vs naive C (SPI_execute)', figure: `${int(f.tsEach)}/s`, baseline: `C naive ${int(f.cNaiveEach)}/s`, ratio: f.tsEach / f.cNaiveEach, target: 1.0, dir: '>=' }),
      target({ id: '1b', what: 'SELECT 1 in one xact: TS vs naive C', figure: `${int(f.tsXact)}/s`, baseline: `C naive ${int(f.cNaiveXact)}/s`, ratio: f.tsXact / f.cNaiveXact, target: 1.0, dir: '>=' }),
      keptPlanTarget('1c', 'SELECT 1 own xact: TS vs C kept plan', f.select1Rounds.tsEach, f.select1Rounds.cEach),
      keptPlanTarget('1d', 'SELECT 1 in one xact: TS vs C kept plan', f.select1Rounds.tsXact, f.select1Rounds.cXact),
      target({ id: '1e', what: 'SELECT 1 own xact: TS vs node-pg autocommit', figure: `${int(f.tsEach)}/s`, baseline: `node-pg ${int(f.pgEach)}/s`, ratio: f.tsEach / f.pgEach, target: 20, dir: '>=' }),
      target({ id: '1f', what: 'SELECT 1 in one xact: TS vs node-pg in BEGIN', figure: `${int(f.tsXact)}/s`, baseline: `node-pg ${int(f.pgXact)}/s`, ratio: f.tsXact / f.pgXact, target: 20, dir: '>=' }),
    );
  }
  if (ONLY.has('fetch')) {
    targets.push(
      fetchTarget('2a', `${ROWS2 / 1e6}M rows (int4, text): TS vs node-pg`, f.ts2, f.pg2, 2.0),
      fetchTarget('2b', `${ROWS8 / 1e3}k rows x 8 columns: TS vs node-pg`, f.ts8, f.pg8, 1.5),
    );
  }
  if (ONLY.has('cursor') && f.cursor) {
    const delta = (f.cursor.hwmKb - f.cursor.idleRssKb) / 1024;
    targets.push(target({ id: '3', what: `cursor over ${CURSOR_ROWS / 1e6}M rows: peak RSS - idle RSS`, figure: `+${delta.toFixed(1)} MB`, baseline: `limit 100 MB (idle ${mb(f.cursor.idleRssKb)} MB)`, ratio: delta / 100, target: 1.0, dir: '<=' }));
  }
  if (ONLY.has('startup')) {
    const bareBaseline = `node ${f.bareVersion}${f.bareOtherBuild ? ' (other Node build)' : ''} ${ms1(med(f.bare))} ms`;
    targets.push(target({ id: '4', what: "fork -> first line vs bare node -e '', restart", figure: `${ms1(med(f.tsFirstRestart))} ms`, baseline: bareBaseline, ratio: med(f.tsFirstRestart) / med(f.bare), target: 1.0, dir: '<=' }));
    targets.push(target({ id: '4s', what: "the same at a server start", figure: `${ms1(med(f.tsFirst))} ms`, baseline: bareBaseline, ratio: med(f.tsFirst) / med(f.bare), target: 1.0, dir: '<=' }));
  }
  if (ONLY.has('memory') && f.mem2) {
    const max2 = Math.max(...(f.mem2 as Mem[]).map((m) => m.pssKb)) / 1024;
    const max4 = Math.max(...(f.mem4 as Mem[]).map((m) => m.pssKb)) / 1024;
    targets.push(
      target({ id: '5a', what: 'idle PSS per worker, 2 workers (max)', figure: `${max2.toFixed(1)} MB`, baseline: 'limit 30 MB', ratio: max2 / 30, target: 1.0, dir: '<=' }),
      target({ id: '5b', what: 'idle PSS per worker, 4 workers (max)', figure: `${max4.toFixed(1)} MB`, baseline: 'limit 20 MB', ratio: max4 / 20, target: 1.0, dir: '<=' }),
      target({ id: '5c', what: 'idle CPU over 3 s, 2 workers', figure: `${(f.idleCpuMs as number[]).map((x) => x.toFixed(1)).join(', ')} ms`, baseline: 'limit 10 ms (1 clock tick)', ratio: Math.max(...(f.idleCpuMs as number[])) / 10, target: 1.0, dir: '<=' }),
    );
  }
  if (ONLY.has('scale')) {
    targets.push(
      target({ id: '6a', what: `${SCALE_WORKERS} workers running JS after pg_ctl start`, figure: `${Number.isFinite(f.scaleJsS) ? f.scaleJsS.toFixed(2) : `only ${f.scaleReached} in 60`} s`, baseline: 'limit 10 s', ratio: f.scaleJsS / 10, target: 1.0, dir: '<=' }),
      target({ id: '6b', what: 'pgbench -C connection: preloaded (0 workers) vs not', figure: `${med(f.pgbenchWith).toFixed(3)} ms`, baseline: `not preloaded ${med(f.pgbenchWithout).toFixed(3)} ms`, ratio: med(f.pgbenchWith) / med(f.pgbenchWithout), target: 1.15, dir: '<=' }),
    );
  }
  targets.push({ id: '7', what: 'call() round trip p50', figure: 'see below', baseline: 'bench/call.ts (runs next)', ratio: NaN, target: 1.0, dir: '<=', met: null });

  // ---- print
  const out: string[] = [];
  const p = (s = '') => out.push(s);
  p();
  p(`pg_node_worker bench  ${facts.date}`);
  p(`  machine: nproc ${facts.nproc}, ${facts.cpu}, ${facts.memGb} GiB, ${facts.kernel}`);
  p(`  server:  PostgreSQL ${facts.server}; cluster A shared_buffers ${f.sharedBuffers ?? '?'}, fsync off; node_worker.heap_limit_mb ${f.heapLimit ?? '?'}`);
  p(`  worker:  Node ${facts.workerNode} (embedded libnode); client: node-postgres ${facts.pgVersion} on Node ${facts.clientNode}, unix socket`);
  p(`  bare:    node ${facts.bareNode} for row 4 (PGNW_BENCH_NODE), embedded Node ${f.embeddedVersion ?? embeddedNodeVersion()}${f.bareOtherBuild ? ': other Node build (another major)' : ''}`);
  p(`  load:    1-min loadavg ${facts.loadStart.toFixed(2)} before the run, ${facts.loadEnd.toFixed(2)} after it (this includes the bench's own load)`);
  if (facts.loadStart > 0.5)
    p('  WARNING: other processes were using the CPU when the run began: figures may be lower and noisier than on an idle machine');
  p();
  p('Targets (the project\'s performance goals); ratio = figure / baseline (or / limit)');
  if (ONLY.has('select1'))
    p(`  1c, 1d: medians of ${SELECT1_ROUNDS} rounds of ${SELECT1_ROUND_MS} ms loops, each TS loop next to its C loop; ratio: the median of the rounds' ratios`);
  if (ONLY.has('fetch')) {
    p(`  2a, 2b: min / median / max rows/s over ${FETCH_RUNS} runs on each side; ratio of the medians (run by run: the lowest ratio of`);
    p(`          the k-th TS run to the k-th node-pg run, each side's first run being its first fetch of the shape; worst: slowest TS run / fastest node-pg run)`);
  }
  p(table(
    ['#', 'what', 'figure', 'baseline', 'ratio', 'target', 'met'],
    targets.map((t) => [t.id, t.what, t.figure, t.baseline, ratioCell(t), `${t.dir} ${t.target}`, t.met === null ? '-' : t.met ? 'yes' : 'NO']),
    ['l', 'l', 'r', 'l', 'r', 'l', 'l'],
  ));
  p();
  if (ONLY.has('select1')) {
    p(`1. SELECT 1, calls/s (each loop after a ${SELECT1_WARMUP_MS} ms warm-up: the TS and C kept-plan loops the medians of ${SELECT1_ROUNDS} rounds of ${SELECT1_ROUND_MS} ms, the others one ${SELECT1_MS / 1000} s loop)`);
    p(table(
      ['what', 'calls/s', 'us/call'],
      [
        ['TS worker: ctx.sql`SELECT 1`, own transaction per call', int(f.tsEach), (1e6 / f.tsEach).toFixed(2)],
        ['TS worker: tx.sql`SELECT 1` inside one ctx.transaction', int(f.tsXact), (1e6 / f.tsXact).toFixed(2)],
        ['C SPI_execute_plan of a kept plan, own transaction per call', int(f.cEach), (1e6 / f.cEach).toFixed(2)],
        ['C SPI_execute_plan of a kept plan, one transaction', int(f.cXact), (1e6 / f.cXact).toFixed(2)],
        ['C SPI_execute("SELECT 1") (naive), own transaction per call', int(f.cNaiveEach), (1e6 / f.cNaiveEach).toFixed(2)],
        ['C SPI_execute("SELECT 1") (naive), one transaction', int(f.cNaiveXact), (1e6 / f.cNaiveXact).toFixed(2)],
        ['node-postgres client.query, autocommit', int(f.pgEach), (1e6 / f.pgEach).toFixed(2)],
        ['node-postgres client.query, inside BEGIN ... COMMIT', int(f.pgXact), (1e6 / f.pgXact).toFixed(2)],
      ],
      ['l', 'r', 'r'],
    ));
    p('     C: a dynamic bgworker making per call pgstat_report_activity, [StartTransactionCommand], PushActiveSnapshot,');
    p('     SPI_connect, SPI_execute_plan (or SPI_execute), SPI_getbinval, SPI_finish, PopActiveSnapshot, [Commit].');
    p();
  }
  if (ONLY.has('fetch')) {
    p(`2. fetch from pre-filled tables (in shared_buffers, so executing the query is cheap), rows/s, ${FETCH_RUNS} runs each`);
    const fr = (what: string, xs: number[], base: number[], rows: number) =>
      [what, int(Math.min(...xs)), int(median(xs)), int(Math.max(...xs)), ms1((1e3 * rows) / median(xs)), x2(median(xs) / median(base))];
    p(table(
      ['what', 'min', 'median', 'max', 'ms', 'vs node-pg'],
      [
        fr(`TS ctx.sql -> ${ROWS2 / 1e6}M row objects {i, t}, every field read`, f.ts2, f.pg2, ROWS2),
        fr('C SPI_execute_plan + heap_deform_tuple, all text bytes read', f.c2, f.pg2, ROWS2),
        fr('node-postgres client.query -> row objects, every field read', f.pg2, f.pg2, ROWS2),
        fr(`TS ctx.sql -> ${ROWS8 / 1e3}k rows {a..h} (8 columns), every field read`, f.ts8, f.pg8, ROWS8),
        fr('C: same + jsonb/numeric output functions', f.c8, f.pg8, ROWS8),
        fr('node-postgres (int8/numeric as strings, Date, JSON.parse), every field read', f.pg8, f.pg8, ROWS8),
      ],
      ['l', 'r', 'r', 'r', 'r', 'r'],
    ));
    p(`     (int4, text): SELECT i, t FROM bench_rows; 8 columns: int4, int8, float8, bool, text(32), timestamptz, jsonb {id, tag}, numeric.`);
    p(`     TS values: int8 as bigint, numeric as string, timestamptz as Date, jsonb parsed. Every figure is end to end: for TS and`);
    p(`     node-postgres the statement and then a loop reading every field of every row (bench/workers/queries.ts, the same code).`);
    p(`     C split (medians): executing until SPI_execute_plan returned ${ms1(f.c2Exec)} ms / ${ms1(f.c8Exec)} ms; the deform loop ${ms1(f.c2Deform)} ms / ${ms1(f.c8Deform)} ms.`);
    p(`     TS ${ROWS2 / 1e6}M rows: ctx.sql ${(f.ts2Fetch as number[]).map(ms1).join(', ')} ms, then reading i and t.length of every row ${(f.ts2Read as number[]).map(ms1).join(', ')} ms (fast-property rows);`);
    p(`     minor page faults of the worker during each fetch and read: ${(f.ts2Faults as number[]).map(int).join(', ')}; after the fetches heapUsed ${ms1(f.ts2Heap)} MB, rss ${ms1(f.ts2Rss)} MB.`);
    p();
  }
  if (ONLY.has('cursor') && f.cursor) {
    p(`3. cursor: ${CURSOR_ROWS.toLocaleString('en-US')} rows (${CURSOR_SQL.replace(/\s+/g, ' ')}) in batches of ${CURSOR_BATCH}, fresh worker`);
    p(`     idle RSS ${mb(f.cursor.idleRssKb)} MB, peak RSS (VmHWM, reset before) ${mb(f.cursor.hwmKb)} MB: +${mb(f.cursor.hwmKb - f.cursor.idleRssKb)} MB; ${int(f.cursor.rowsPerS)} rows/s, ${f.cursor.seconds.toFixed(1)} s`);
    p('     with SET LOCAL jit = off: PostgreSQL would JIT-compile this plan, and mapping libLLVM adds ~50 MB of file-backed RSS');
    p('     to whichever process runs it (measured: +51.6 MB in /proc/<pid>/smaps), which is not what this figure is about.');
    p();
  }
  if (ONLY.has('startup')) {
    p(`4. start-up, ms (${STARTUP_RUNS} server starts and ${RESTART_RUNS} node_worker.restart() of the TS worker; ${(f.bare as number[]).length} spawns of node, 2 before each restart)`);
    const stRow = (what: string, xs: number[]) => [what, ms1(Math.min(...xs)), ms1(median(xs)), ms1(Math.max(...xs))];
    const rowsSt = [
      stRow('TS worker restarted: fork -> first line of main (Date.now() - ctx.worker.startedAt)', f.tsFirstRestart),
      stRow('TS worker restarted: fork -> first line of the bundle (module top level)', f.tsBundleRestart),
      stRow('TS worker at a server start: fork -> first line of main', f.tsFirst),
      stRow('TS worker at a server start: fork -> first line of the bundle', f.tsBundle),
      stRow(`bare ${NODE_BIN} -e '' (${f.bareVersion}${f.bareOtherBuild ? ', other Node build' : ''}): spawn -> exit, wall time`, f.bare),
    ];
    if (f.cMain) rowsSt.push(stRow('C bgworker: fork -> first line of its main', f.cMain), stRow('C bgworker: fork -> connected', f.cConn));
    p(table(['what', 'min', 'median', 'max'], rowsSt, ['l', 'r', 'r', 'r']));
    const ph = f.tsPhasesRestart as Record<string, number>;
    if (ph.origin >= 0) {
      p(`     TS worker restarted, medians: fork -> libnode initialised (performance.timeOrigin) ${ms1(ph.origin)} ms; then V8 started +${ms1(ph.v8Start)},`);
      p(`     environment +${ms1(ph.environment)}, Node's bootstrap JS done +${ms1(ph.bootstrapComplete)} ms; the rest is runtime.js + the bundle.`);
    } else {
      // node_worker.preload_runtime: libnode was loaded (and its clock origin set) in the postmaster
      const at = (ms: number) => ms1(ms + ph.origin);
      p(`     TS worker restarted, medians: libnode preloaded in the postmaster (node_worker.preload_runtime); after the fork V8 started at ${at(ph.v8Start)} ms,`);
      p(`     environment ${at(ph.environment)}, Node's bootstrap JS done ${at(ph.bootstrapComplete)} ms; the rest is runtime.js + the bundle.`);
    }
    p(majorOf(f.embeddedVersion) < 20
      ? '     Node 18 has no start-up snapshot for embedders: every worker compiles Node\'s bootstrap JS.'
      : '     From Node 20 the worker starts from a start-up snapshot (libnode\'s own, or snapshot-<MB>.blob made at install).');
    const sameMajor = majorOf(f.bareVersion) === majorOf(f.embeddedVersion);
    p(`     Embedded Node ${f.embeddedVersion}; bare node ${NODE_BIN} ${f.bareVersion}` + (f.bareOtherBuild
      ? ': another major, so another build (its own start-up snapshot and bootstrap JS); PGNW_BENCH_NODE=<a node of the embedded version> compares like with like.'
      : sameMajor ? ' (same major as the embedded Node; PGNW_BENCH_NODE chooses it).' : ' (its version is unknown: it did not run).'));
    p();
  }
  if (ONLY.has('memory') && f.mem2) {
    p('5. idle workers, MB (/proc/<pid>/smaps_rollup; sampled until the summed PSS is steady)');
    const memRows: Cell[][] = [];
    for (const n of [2, 4]) (f[`mem${n}`] as Mem[]).forEach((m, k) => memRows.push([`${n} workers: #${k + 1}`, mb(m.pssKb), mb(m.rssKb), mb(m.ussKb), mb(m.pssAnonKb), mb(m.pssFileKb)]));
    if (Number.isFinite(f.scalePssKb)) memRows.push([`${SCALE_WORKERS} workers: average`, mb(f.scalePssKb), '', '', '', '']);
    p(table(['what', 'PSS', 'RSS', 'USS', 'PSS anon', 'PSS file'], memRows, ['l', 'r', 'r', 'r', 'r', 'r']));
    p();
  }
  if (ONLY.has('scale')) {
    p(`6. scale: after pg_ctl start returned, ${SCALE_WORKERS} node_worker rows in pg_stat_activity (connected) in ${Number.isFinite(f.scaleS) ? f.scaleS.toFixed(2) : 'n/a'} s,`);
    p(`   all ${SCALE_WORKERS} running JS (each inserted a row from the first line of main) in ${Number.isFinite(f.scaleJsS) ? f.scaleJsS.toFixed(2) : 'n/a'} s;`);
    p(`   pgbench -n -C -T ${PGBENCH_SECONDS} (SELECT 1) average connection time, ms: preloaded, 0 workers ${(f.pgbenchWith as number[]).map((x) => x.toFixed(3)).join(', ')};`);
    p(`   not preloaded ${(f.pgbenchWithout as number[]).map((x) => x.toFixed(3)).join(', ')}`);
    p();
  }
  p(`total ${((Date.now() - tStart) / 1000).toFixed(0)} s`);
  const text = out.join('\n') + '\n';
  process.stdout.write(text);

  const resultsDir = path.join(REPO, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify({ facts, targets, figures: f, config: { NODE_BIN, SELECT1_MS, SELECT1_ROUNDS, SELECT1_ROUND_MS, FETCH_RUNS, ROWS2, ROWS8, CURSOR_ROWS, CURSOR_BATCH, STARTUP_RUNS, SCALE_WORKERS, ONLY: [...ONLY] } }, null, 2) + '\n');
  fs.writeFileSync(path.join(resultsDir, 'latest.svg'), svgChart(targets, `pg_node_worker bench ${facts.date.slice(0, 10)}: nproc ${facts.nproc}, ${facts.cpu}`));
  fs.writeFileSync(path.join(resultsDir, 'latest.txt'), text);
  const md = [
    `Measured ${facts.date.slice(0, 10)} on nproc ${facts.nproc}, ${facts.cpu}, ${facts.memGb} GiB, ${facts.kernel}; PostgreSQL ${facts.server}; worker Node ${facts.workerNode}; bare node ${facts.bareNode}${f.bareOtherBuild ? ' (other Node build)' : ''}; node-postgres ${facts.pgVersion} on Node ${facts.clientNode}; 1-min loadavg ${facts.loadStart.toFixed(2)} before the run.`,
    '',
    '| # | what | figure | baseline | ratio | target | met |',
    '|---|---|---:|---|---:|---|---|',
    ...targets.map((t) => `| ${t.id} | ${t.what} | ${t.figure} | ${t.baseline} | ${ratioCell(t)} | ${t.dir} ${t.target} | ${t.met === null ? '-' : t.met ? 'yes' : '**no**'} |`),
  ].join('\n') + '\n';
  fs.writeFileSync(path.join(resultsDir, 'latest.md'), md);
  status(`wrote bench/results/latest.{json,svg,txt,md}`);
}

main()
  .catch((err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    if (current) process.stderr.write(`----- server log (last 60 lines) -----\n${current.logTail(60)}\n-----\n`);
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
