/**
 * The 1M-job memory mode of bench/jobs.ts: `PGNW_BENCH_JOBS_MILLION=1 npm run bench:jobs` (not
 * run by default; ~2 min 15 s on the shared 2-core machine at a load average of ~4). Does the worker's memory stay flat,
 * and does pruning keep the queue's table bounded, while a queue is drained for a long time?
 *
 * One worker (bench/workers/jobsmem.ts) drains "jobsmem" with a no-op synchronous handler (batch
 * as PGNW_BENCH_JOBS_BATCH), with node_worker.jobs_keep_done_s = 5 (the cluster's setting). The
 * bench enqueues TOTAL jobs in transactions of CHUNK (run_at now), each as soon as fewer than
 * CHUNK are left undone, so the worker drains at full speed with a backlog of CHUNK..2 CHUNK
 * (a queue that never goes idle: the case where pruning has to keep up with completions).
 * PGNW_BENCH_JOBS_MILLION_UPFRONT=1: all chunks in one transaction first (its time is in t), so
 * that the worker drains the backlog at full speed without the bench's enqueueing beside it.
 * Every SAMPLE_EVERY jobs handled, and then each second for POST_S seconds after the last one, a
 * sample: the worker's RSS (VmRSS), PSS, PSS anon and PSS shmem (/proc/<pid>/smaps_rollup), its JS heap
 * (process.memoryUsage() through node_worker.call('jobsmem')), pg_total_relation_size of
 * node_worker.job_store and its rows by state. RSS and PSS also count the shared_buffers pages the
 * worker touched (they grow with the table, up to shared_buffers); its own memory (V8, malloc, its
 * memory contexts) is PSS anon. The worker's count of handled jobs comes from the
 * same call(), between its batches.
 *
 * Prints the samples and a summary (start / after the first 200k / min / max / end, and the
 * largest deviation from the after-200k value in %), writes bench/results/jobs-million.json
 * (jobs-million-upfront.json).
 * Environment: PGNW_BENCH_JOBS_MILLION_TOTAL (1000000), PGNW_BENCH_JOBS_MILLION_CHUNK (10000),
 * PGNW_BENCH_JOBS_MILLION_SAMPLE (50000), PGNW_BENCH_JOBS_MILLION_POST_S (20).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Cluster, REPO, sleep } from '../test/helpers/cluster';
import { benchWorker } from './deploy';
import { count } from './env';


const TOTAL = count('PGNW_BENCH_JOBS_MILLION_TOTAL', 1_000_000);
const CHUNK = count('PGNW_BENCH_JOBS_MILLION_CHUNK', 10_000);
const SAMPLE_EVERY = count('PGNW_BENCH_JOBS_MILLION_SAMPLE', 50_000);
const POST_S = count('PGNW_BENCH_JOBS_MILLION_POST_S', 20);
/**
 * The reference point of the ±% figures: after the warm-up. The worker's own memory rises by
 * about 3 MB over the first 100k-200k jobs (the pruning's first passes: its memory contexts and
 * malloc keep their largest working set) and is flat after; the start is in the table too.
 */
const REF_JOBS = 200_000;
/** enqueue all TOTAL jobs in one transaction first: the worker then drains at full speed */
const UPFRONT = process.env.PGNW_BENCH_JOBS_MILLION_UPFRONT === '1';

const status = (msg: string) => process.stderr.write(`bench:jobs (1M): ${msg}\n`);

interface WorkerState {
  pid: number;
  handled: number;
  heapUsed: number;
  heapTotal: number;
  newSpace: number;
  oldSpace: number;
  external: number;
  arrayBuffers: number;
}

interface Sample {
  /** seconds since the first enqueue */
  t: number;
  handled: number;
  rssKb: number;
  pssKb: number;
  pssAnonKb: number;
  pssShmemKb: number;
  heapUsedKb: number;
  heapTotalKb: number;
  newSpaceKb: number;
  oldSpaceKb: number;
  externalKb: number;
  tableKb: number;
  pending: number;
  done: number;
}

function kbField(text: string, field: string): number {
  const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : NaN;
}

/** Runs the memory mode on a created, not yet started cluster (jobs_keep_done_s already set). */
export async function million(c: Cluster, batch: number): Promise<void> {
  const loadStart = os.loadavg()[0];
  await c.deployFile(benchWorker('jobsmem.ts'));
  await c.start();
  await c.query('CREATE EXTENSION pg_node_worker');
  await c.waitForLog(/jobsmem: jobsmem ready/, 30000);
  const keep = (await c.query<{ v: string }>("SELECT current_setting('node_worker.jobs_keep_done_s') AS v"))[0].v;
  const sharedBuffers = (await c.query<{ v: string }>("SELECT current_setting('shared_buffers') AS v"))[0].v;
  const client = await c.client();
  const call = async (): Promise<WorkerState> => (await client.query<{ r: WorkerState }>("SELECT node_worker.call('jobsmem', '{}'::jsonb, 30000) AS r")).rows[0].r;
  const t0 = performance.now();
  const sample = async (st: WorkerState): Promise<Sample> => {
    const rollup = fs.readFileSync(`/proc/${st.pid}/smaps_rollup`, 'utf8');
    const vm = fs.readFileSync(`/proc/${st.pid}/status`, 'utf8');
    const [tb] = (
      await client.query<{ kb: number; pending: number; done: number }>(
        `SELECT (pg_total_relation_size('node_worker.job_store') / 1024)::float8 AS kb,
                count(*) FILTER (WHERE state = 'pending')::int AS pending, count(*) FILTER (WHERE state = 'done')::int AS done
           FROM node_worker.job_store`,
      )
    ).rows;
    return {
      t: (performance.now() - t0) / 1000,
      handled: st.handled,
      rssKb: kbField(vm, 'VmRSS'),
      pssKb: kbField(rollup, 'Pss'),
      pssAnonKb: kbField(rollup, 'Pss_Anon'),
      pssShmemKb: kbField(rollup, 'Pss_Shmem'),
      heapUsedKb: st.heapUsed / 1024,
      heapTotalKb: st.heapTotal / 1024,
      newSpaceKb: st.newSpace / 1024,
      oldSpaceKb: st.oldSpace / 1024,
      externalKb: st.external / 1024,
      tableKb: tb.kb,
      pending: tb.pending,
      done: tb.done,
    };
  };
  const samples: Sample[] = [];
  try {
    let st = await call();
    samples.push(await sample(st));
    status(`worker pid ${st.pid}; ${TOTAL} jobs in chunks of ${CHUNK}${UPFRONT ? ', all in one transaction first' : ''}, batch ${batch}, jobs_keep_done_s ${keep}`);
    let enqueued = 0;
    let commitS = 0;
    if (UPFRONT) {
      await client.query('BEGIN');
      for (; enqueued < TOTAL; enqueued += CHUNK)
        await client.query(`SELECT count(node_worker.enqueue('jobsmem', '{}')) FROM generate_series(1, ${Math.min(CHUNK, TOTAL - enqueued)})`);
      await client.query('COMMIT');
      enqueued = TOTAL;
      commitS = (performance.now() - t0) / 1000;
      status(`${TOTAL} jobs committed at ${commitS.toFixed(1)} s`);
    }
    let nextSample = SAMPLE_EVERY;
    while (st.handled < TOTAL) {
      if (enqueued < TOTAL && enqueued - st.handled <= CHUNK) {
        const n = Math.min(CHUNK, TOTAL - enqueued);
        await client.query(`SELECT count(node_worker.enqueue('jobsmem', '{}')) FROM generate_series(1, ${n})`);
        enqueued += n;
      } else await sleep(100);
      st = await call();
      if (st.handled >= nextSample) {
        const s = await sample(st);
        samples.push(s);
        status(`${s.handled} handled, ${s.t.toFixed(1)} s: PSS ${(s.pssKb / 1024).toFixed(1)} MB, heap ${(s.heapUsedKb / 1024).toFixed(1)} MB, table ${(s.tableKb / 1024).toFixed(1)} MB, ${s.done} done rows`);
        while (nextSample <= st.handled) nextSample += SAMPLE_EVERY;
      }
    }
    const drainS = (performance.now() - t0) / 1000 - commitS;
    status(`all ${TOTAL} handled in ${drainS.toFixed(1)} s; sampling ${POST_S} s more with the queue idle`);
    for (let i = 0; i < POST_S; i++) {
      await sleep(1000);
      samples.push(await sample(await call()));
    }
    report(samples, { loadStart, loadEnd: os.loadavg()[0], commitS, drainS, keep, batch, sharedBuffers });
  } finally {
    await client.end();
  }
}

function report(samples: Sample[], f: { loadStart: number; loadEnd: number; commitS: number; drainS: number; keep: string; batch: number; sharedBuffers: string }): void {
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  const keys = ['rssKb', 'pssKb', 'pssAnonKb', 'pssShmemKb', 'heapUsedKb', 'heapTotalKb', 'newSpaceKb', 'oldSpaceKb', 'tableKb'] as const;
  const ref = samples.find((s) => s.handled >= REF_JOBS) ?? samples[samples.length - 1];
  const after = samples.filter((s) => s.handled >= ref.handled);
  const summary = (key: (typeof keys)[number]) => {
    const v = after.map((s) => s[key]);
    const min = Math.min(...v), max = Math.max(...v);
    return {
      start: samples[0][key],
      ref: ref[key],
      min,
      max,
      end: samples[samples.length - 1][key],
      minPct: ((min - ref[key]) / ref[key]) * 100,
      maxPct: ((max - ref[key]) / ref[key]) * 100,
    };
  };
  const sums = Object.fromEntries(keys.map((k) => [k, summary(k)]));
  const out: string[] = [
    '',
    `pg_node_worker jobs bench, 1M-job memory mode  ${new Date().toISOString()}`,
    `  ${TOTAL} no-op jobs, synchronous handler (batch ${f.batch}), chunks of ${CHUNK}${UPFRONT ? ' all committed in one transaction first' : ''}, jobs_keep_done_s ${f.keep}; ${UPFRONT ? `committed in ${f.commitS.toFixed(1)} s, then ` : ''}drained in ${f.drainS.toFixed(1)} s (${Math.round(TOTAL / f.drainS)} jobs/s with the sampling)`,
    `  nproc ${os.cpus().length}; 1-min loadavg ${f.loadStart.toFixed(2)} before, ${f.loadEnd.toFixed(2)} after`,
    '',
    '        t s    handled   RSS MB   PSS MB  anon MB shmem MB  heap used MB  heap total MB  new sp MB  old sp MB  table MB   pending      done',
    ...samples.map(
      (s) =>
        `  ${s.t.toFixed(1).padStart(9)} ${String(s.handled).padStart(10)} ${mb(s.rssKb).padStart(8)} ${mb(s.pssKb).padStart(8)} ${mb(s.pssAnonKb).padStart(8)} ${mb(s.pssShmemKb).padStart(8)} ${mb(s.heapUsedKb).padStart(13)} ${mb(s.heapTotalKb).padStart(14)} ${mb(s.newSpaceKb).padStart(10)} ${mb(s.oldSpaceKb).padStart(10)} ${mb(s.tableKb).padStart(9)} ${String(s.pending).padStart(9)} ${String(s.done).padStart(9)}`,
    ),
    '',
    `  from ${ref.handled} handled on (the reference), MB:    start    ref      min      max      end    min %    max %`,
    ...keys.map((k) => {
      const s = sums[k];
      return `    ${k.replace(/Kb$/, '').padEnd(40)} ${mb(s.start).padStart(8)} ${mb(s.ref).padStart(6)} ${mb(s.min).padStart(8)} ${mb(s.max).padStart(8)} ${mb(s.end).padStart(8)} ${s.minPct.toFixed(1).padStart(8)} ${s.maxPct.toFixed(1).padStart(8)}`;
    }),
    '',
    `  shared_buffers ${f.sharedBuffers}: RSS and PSS count the shared_buffers pages the worker touched (PSS shmem), which grow`,
    '  with the table; the worker\'s own memory (V8 heap, malloc, its memory contexts) is PSS anon.',
    `  PSS anon after the first ${ref.handled} jobs ${mb(ref.pssAnonKb)} MB, ${mb(sums.pssAnonKb.min)}..${mb(sums.pssAnonKb.max)} MB while draining and after,` +
      ` ${mb(sums.pssAnonKb.end)} MB at the end (${(((sums.pssAnonKb.end - ref.pssAnonKb) / ref.pssAnonKb) * 100).toFixed(1)}%).`,
    `  job_store: at most ${mb(sums.tableKb.max)} MB and ${Math.max(...samples.map((s) => s.done))} done rows; ${samples[samples.length - 1].done} done rows left ${POST_S} s after the queue went idle.`,
    '',
  ];
  process.stdout.write(out.join('\n') + '\n');
  const resultsDir = path.join(REPO, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(
    path.join(resultsDir, UPFRONT ? 'jobs-million-upfront.json' : 'jobs-million.json'),
    JSON.stringify({ facts: { date: new Date().toISOString(), nproc: os.cpus().length, ...f }, config: { TOTAL, CHUNK, SAMPLE_EVERY, POST_S, REF_JOBS, UPFRONT }, summary: sums, samples }, null, 2) + '\n',
  );
  status(`wrote bench/results/${UPFRONT ? 'jobs-million-upfront.json' : 'jobs-million.json'}`);
}
