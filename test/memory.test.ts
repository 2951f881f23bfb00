/**
 * The ArrayBuffer budget (node_worker.buffer_limit_mb, defineWorker's bufferLimitMb): memory held
 * in Buffers, ArrayBuffers and typed arrays lives outside the V8 heap, so the heap limit does not
 * bound it. Past the budget an allocation is a RangeError JS can catch, whether JS or the bridge
 * (a big SQL result) asked for it; uncaught, the worker logs it and exits 1. The OS-limit cases
 * (ulimit -d) are in test/faults/memory.faults.ts.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './helpers/cluster';
import { evaluatorCluster, evaluatorReady, GC, inWorker, submit } from './helpers/evalWorker';
import { ABORT, BUFFER_REFUSED, BUFFER_REFUSED_TEXT, exitOf, RESET } from './helpers/faults';

const MB = 1024 * 1024;

/** A field of /proc/<pid>/status, in kB. */
function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** When a worker process started (ms since the epoch), from pg_stat_activity. */
async function startedAt(cluster: Cluster, pid: number): Promise<number> {
  const rows = await cluster.query<{ t: string }>('SELECT backend_start::text AS t FROM pg_stat_activity WHERE pid = $1', [pid]);
  return Date.parse(rows[0].t.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00'));
}

describe('node_worker.buffer_limit_mb and bufferLimitMb', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await evaluatorCluster({ settings: { 'node_worker.buffer_limit_mb': 256 }, bystander: true });
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('an idle worker unmaps the start-up pages of its libraries (file-backed RSS); they come back as used', async () => {
    // the bystander has been idle since it started: its settle step (1 s after start) ran
    const bystander = await cluster.waitForWorker('bystander');
    await waitFor('the bystander to settle', async () => Date.now() - (await startedAt(cluster, bystander)) > 2000, 10000, 100);
    const idleFileKb = statusKb(bystander, 'RssFile');
    const r = await inWorker(
      cluster,
      `const fs = require('fs');
       const rssFile = () => Number(/^RssFile:\\s+(\\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
       const before = rssFile();
       const dropped = require('pg-node-worker').__internal.releaseMemory(true);
       const after = rssFile();
       // code and data of PostgreSQL, libnode, ICU, OpenSSL and zlib are mapped again when used
       const work = [
         ctx.sql\`SELECT count(*)::int AS n FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid WHERE c.relname = 'pg_class'\`[0].n > 0,
         require('crypto').createHash('sha256').update('x').digest('hex').slice(0, 8),
         new Intl.DateTimeFormat('de-DE', { timeZone: 'UTC' }).format(new Date(0)),
         'É'.normalize('NFD').length,
         require('zlib').gunzipSync(require('zlib').gzipSync('abc')).toString(),
         JSON.stringify(structuredClone({ a: [1, { b: 2 }] })),
       ];
       return { before, dropped, after, again: rssFile(), work };`,
    );
    console.log(
      `[memory] idle bystander RssFile ${(idleFileKb / 1024).toFixed(1)} MB; evaluator RssFile ${(r.before / 1024).toFixed(1)} MB -> ` +
        `${(r.after / 1024).toFixed(1)} MB after releaseMemory (dropped ${(r.dropped / 1024).toFixed(1)} MB), ${(r.again / 1024).toFixed(1)} MB after more work`,
    );
    expect(r.work).toEqual([true, '2d711642', '1.1.1970', 2, 'abc', '{"a":[1,{"b":2}]}']);
    expect(r.dropped).toBeGreaterThan(4096);
    expect(r.after).toBeLessThan(r.before - 4096);
    // an idle worker keeps few file pages mapped: it unmapped its libraries' start-up pages
    expect(idleFileKb).toBeLessThan(20 * 1024);
    expect(await cluster.workerPid('bystander')).toBe(bystander);
  });

  it('past the budget a Buffer is a RangeError JS can catch; memoryUsage() counts; released memory is usable again', async () => {
    const pid = await cluster.waitForWorker('evaluator');
    const r = await inWorker(
      cluster,
      `${GC}
       const keep = []; let err = null;
       try { for (let i = 0; i < 64; i++) keep.push(Buffer.alloc(16 * 1024 * 1024, 1)); }
       catch (e) { err = { name: e.name, message: e.message }; }
       const held = process.memoryUsage().arrayBuffers;
       // a typed array and an ArrayBuffer are refused too
       const more = [() => new Uint8Array(32 * 1024 * 1024), () => new ArrayBuffer(32 * 1024 * 1024), () => Buffer.allocUnsafe(32 * 1024 * 1024)]
         .map((f) => { try { f(); return 'allocated'; } catch (e) { return e.name; } });
       const got = keep.length;
       const mem = ctx.worker.memory();
       keep.length = 0; gc(); gc();
       const again = Buffer.alloc(200 * 1024 * 1024, 2).length;
       return { got, err, held, more, again, mem, after: ctx.worker.memory() };`,
    );
    console.log(`[buffer budget] 256 MB: ${r.got} x 16 MB Buffers, then ${r.err?.name}: ${r.err?.message}; arrayBuffers ${(r.held / MB).toFixed(0)} MB`);
    expect(r.err).toEqual({ name: 'RangeError', message: expect.stringMatching(BUFFER_REFUSED) });
    expect(r.got).toBeGreaterThanOrEqual(15);
    expect(r.got).toBeLessThanOrEqual(16);
    expect(r.held).toBeGreaterThanOrEqual(r.got * 16 * MB);
    expect(r.held).toBeLessThanOrEqual(256 * MB);
    expect(r.more).toEqual(['RangeError', 'RangeError', 'RangeError']);
    expect(r.again).toBe(200 * MB);
    // ctx.worker.memory(): the limits in effect and what is held
    expect(r.mem).toMatchObject({ heapLimitMb: 256, bufferLimitMb: 256 });
    expect(r.mem.buffersRefused).toBeGreaterThanOrEqual(4); // V8 retries each after a GC
    expect(r.mem.buffersMb * MB).toBeCloseTo(r.held, -5);
    expect(r.after.buffersPeakMb).toBeGreaterThanOrEqual(r.got * 16);
    expect(r.after.buffersMb).toBeGreaterThanOrEqual(200);
    expect(r.after.buffersMb).toBeLessThan(r.mem.buffersMb);
    expect(await cluster.workerPid('evaluator')).toBe(pid);
  });

  it('a SQL result that does not fit is a RangeError from ctx.sql, and the worker goes on', async () => {
    const pid = await cluster.waitForWorker('evaluator');
    const r = await inWorker(
      cluster,
      `${GC}
       let keep = Buffer.alloc(240 * 1024 * 1024, 1);
       let err = null;
       try { ctx.sql\`SELECT decode(repeat('ab', 32 * 1024 * 1024), 'hex') AS b\`; }
       catch (e) { err = { name: e.name, message: e.message }; }
       // small results still work while the budget is used up
       const small = ctx.sql\`SELECT decode('0102', 'hex') AS b\`[0].b.length;
       keep = null; gc(); gc();
       const big = ctx.sql\`SELECT decode(repeat('ab', 32 * 1024 * 1024), 'hex') AS b\`[0].b.length;
       return { err, small, big };`,
    );
    expect(r.err).toEqual({ name: 'RangeError', message: expect.stringMatching(BUFFER_REFUSED) });
    expect(r.small).toBe(2);
    expect(r.big).toBe(32 * MB);
    expect(await cluster.workerPid('evaluator')).toBe(pid);
  });

  it("a big result's column buffers serve the next big result and are given back once no result needs them", async () => {
    const pid = await cluster.waitForWorker('evaluator');
    // the evaluator keeps running small statements (it polls for work): those do not hold them
    const held = async () => (await inWorker(cluster, 'return ctx.worker.memory().resultBuffersMb;')) as number;
    await waitFor('the buffers of earlier tests given back', async () => (await held()) < 1, 10000, 250);
    const r = await inWorker(
      cluster,
      `const fetch = () => ctx.sql\`SELECT i, md5(i::text) AS t FROM generate_series(1, 200000) i\`.length;
       const small = () => ctx.sql\`SELECT 1 AS x\`.length;
       const before = ctx.worker.memory().resultBuffersMb;
       const rows = fetch();
       const kept = ctx.worker.memory().resultBuffersMb;
       small();
       const afterSmall = ctx.worker.memory().resultBuffersMb;
       fetch();
       const again = ctx.worker.memory().resultBuffersMb;
       return { before, rows, kept, afterSmall, again };`,
    );
    // 200k md5 texts: 6.4 MB of bytes and 0.8 MB of offsets, in buffers that double as they grow
    expect(r.rows).toBe(200000);
    expect(r.before).toBeLessThan(1);
    expect(r.kept).toBeGreaterThan(7);
    // the same buffers (a small result may add a few small ones)
    expect(r.afterSmall).toBeCloseTo(r.kept, 1);
    expect(r.again).toBeCloseTo(r.kept, 1);
    await waitFor('the result buffers given back', async () => (await held()) < 1, 10000, 250);
    // a failing big statement does not keep them either
    const failed = await inWorker(
      cluster,
      `try { ctx.sql\`SELECT CASE WHEN i < 200000 THEN md5(i::text) ELSE (1 / (i - 200000))::text END AS t FROM generate_series(1, 200000) i\`; }
       catch (e) { return { code: e.code, held: ctx.worker.memory().resultBuffersMb }; }
       return null;`,
    );
    expect(failed).toMatchObject({ code: '22012' });
    expect(failed.held).toBeGreaterThan(5);
    await waitFor('the result buffers of the failed statement given back', async () => (await held()) < 1, 10000, 250);
    expect(await cluster.workerPid('evaluator')).toBe(pid);
  });

  it("a worker's bufferLimitMb overrides the setting; filling it uncaught is logged, exit 1, restarted; nothing else is touched", async () => {
    const bystander = await cluster.waitForWorker('bystander');
    const from = cluster.log().length;
    await cluster.deployFile('memory-filler.ts');
    await cluster.query("CREATE EXTENSION IF NOT EXISTS pg_node_worker; SELECT node_worker.launch('filler')");
    const first = Number((await cluster.waitForLog(/filler: filling from pid (\d+)/, 20000, from))[1]);
    const exit = await waitFor('the filler to exit', () => exitOf(cluster.log().slice(from), first), 20000);
    const log = cluster.log().slice(from);
    const why = log.match(new RegExp(`\\[${first}\\] ERROR:  filler: main failed: ${BUFFER_REFUSED_TEXT}`));
    console.log(`[buffer budget] bufferLimitMb 64, filled uncaught: "${why?.[0]}" -> ${exit}`);
    expect(exit).toBe('exited with exit code 1');
    expect(why).not.toBeNull();
    // it failed at its own 64 MB, not at the 256 MB of the setting
    const held = [...log.matchAll(new RegExp(`\\[${first}\\] LOG:  filler: held (\\d+) MB`, 'g'))].map((m) => Number(m[1]));
    expect(Math.max(...held)).toBe(48);
    const row = (await cluster.query<{ last_error: string }>("SELECT last_error FROM node_worker.workers WHERE name = 'filler'"))[0];
    expect(row.last_error).toMatch(new RegExp(BUFFER_REFUSED_TEXT));
    await cluster.waitForLog(new RegExp(`filler: filling from pid (?!${first}\\b)\\d+`), 20000, from);
    await cluster.query("SELECT node_worker.stop('filler')");
    expect(cluster.log()).not.toMatch(RESET);
    expect(cluster.log()).not.toMatch(ABORT);
    expect(await cluster.workerPid('bystander')).toBe(bystander);
    expect(await inWorker(cluster, 'return ctx.sql`SELECT 41 + 1 AS x`[0].x')).toBe(42);
  }, 60000);

  it("youngGenerationMb bounds V8's young generation while many objects survive", async () => {
    await cluster.deployFile('memory-young.ts');
    await cluster.query("CREATE EXTENSION IF NOT EXISTS pg_node_worker; SELECT node_worker.launch('young')");
    const [{ r }] = await cluster.query<{ r: { largest: number } }>("SELECT node_worker.call('young', 'null', 60000) AS r");
    // the same work without the cap, for the log: V8 grows the new space as objects survive
    const uncapped = await inWorker(
      cluster,
      `const v8 = require('v8');
       const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
       const ring = new Array(50000);
       let largest = newSpace();
       for (let i = 0; i < 3000000; i++) {
         ring[i % ring.length] = { i, s: 'x' + i };
         if (i % 10000 === 0) largest = Math.max(largest, newSpace());
       }
       return largest;`,
    );
    console.log(`[young generation] new space at most ${(r.largest / MB).toFixed(1)} MB with youngGenerationMb 3; ${(Number(uncapped) / MB).toFixed(1)} MB without`);
    expect(r.largest).toBeGreaterThan(0);
    // V8 sizes its spaces in whole pages and reports what it committed: with a 3 MB cap the new
    // space reached 2.0 MB on Node 18/20 and 2.8-3.75 MB on Node 24, against 32 and 64 MB uncapped
    expect(r.largest).toBeLessThanOrEqual(2 * 3 * MB);
    expect(r.largest).toBeLessThan(Number(uncapped) / 2);
    await cluster.query("SELECT node_worker.stop('young')");
    expect(cluster.log()).not.toMatch(RESET);
  }, 90000);

  it('a worker_threads Worker that runs out of heap: the Worker fails (ERR_WORKER_OUT_OF_MEMORY), uncaught it is exit 1; no reset', async () => {
    const pid = await cluster.waitForWorker('evaluator');
    const bystander = await cluster.waitForWorker('bystander');
    const from = cluster.log().length;
    await submit(
      cluster,
      `const { Worker } = require('worker_threads');
       new Worker('const keep = []; for (;;) keep.push(new Array(100000).fill(0).map((_, i) => ({ i })));', { eval: true });
       return 1;`,
    );
    const exit = await waitFor('the evaluator to exit', () => exitOf(cluster.log().slice(from), pid), 60000);
    const log = cluster.log().slice(from);
    const line = log.match(new RegExp(`\\[${pid}\\] ERROR:  evaluator: uncaught exception: Error \\[ERR_WORKER_OUT_OF_MEMORY\\]: .*`));
    console.log(`[worker_threads] heap exhausted in a Worker: "${line?.[0]}" -> ${exit}`);
    expect(exit).toBe('exited with exit code 1');
    expect(line).not.toBeNull();
    expect(log).not.toMatch(RESET);
    expect(log).not.toMatch(ABORT);
    await cluster.waitForWorker('evaluator', 20000, pid);
    await evaluatorReady(cluster, from);
    expect(await cluster.workerPid('bystander')).toBe(bystander);
    expect(await inWorker(cluster, 'return ctx.sql`SELECT 41 + 1 AS x`[0].x')).toBe(42);
  }, 90000);
});
