/**
 * Memory outside the V8 heap: Buffers/ArrayBuffers are malloc'd, not on the JS heap, so
 * node_worker.heap_limit_mb does not bound them; node_worker.buffer_limit_mb (default 1 GB,
 * test/memory.test.ts) does. What happens beyond that:
 *
 * - buffer_limit_mb = -1 and no OS limit: the worker gets what it asks for (2 GB here, then
 *   released: it is freed when the Buffers are collected); past the machine's memory the kernel's
 *   OOM killer would SIGKILL some process, and a SIGKILLed backend resets the cluster, as for any
 *   PostgreSQL backend.
 * - with a data-segment limit on the server (RLIMIT_DATA: `ulimit -d`, systemd `LimitDATA=`) the
 *   worker sizes its budgets to fit: the JS heap at most half of what is left after start-up and a
 *   reserve, ArrayBuffers the rest (logged at start). Filling memory then ends in
 *   `RangeError: Array buffer allocation failed`, which JS can catch, while the process still has
 *   room for the GC, Node and PostgreSQL; uncaught, the worker logs it with its stack and exits 1
 *   (restarted). SQL that needs more memory than is left fails with PgError 53200. Never a reset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, installedNodeVersion, waitFor } from '../helpers/cluster';
import { evaluatorCluster, evaluatorReady, GC, inWorker, restartEvaluator, submit } from '../helpers/evalWorker';
import { ABORT, BUFFER_REFUSED, BUFFER_REFUSED_TEXT, exitOf, OUT_OF_MEMORY, RESET, rssKb, seconds, startWithDataLimit, whyItLeft } from '../helpers/faults';

const MB = 1024 * 1024;
const NODE_24 = Number(installedNodeVersion().split('.')[0]) >= 24;

describe('Buffers with no limit at all (buffer_limit_mb = -1, no OS limit)', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await evaluatorCluster({ settings: { 'node_worker.heap_limit_mb': 64, 'node_worker.buffer_limit_mb': -1 }, bystander: true });
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('2 GB of Buffers with a 64 MB JS heap limit: allocated, resident, freed when collected; the worker carries on', async () => {
    const pid = await cluster.waitForWorker('evaluator');
    const bystander = await cluster.waitForWorker('bystander');
    const rss0 = rssKb(pid)!;
    const t0 = process.hrtime.bigint();
    // allocate 32 x 64 MB, filled (resident), and report the peak; keep them until the next job
    const r = await inWorker(
      cluster,
      `const keep = globalThis.__keep = [];
       for (let i = 0; i < 32; i++) keep.push(Buffer.alloc(64 * 1024 * 1024, i + 1));
       const m = process.memoryUsage();
       return { n: keep.length, rss: m.rss, external: m.external, heapUsed: m.heapUsed, sum: keep.reduce((s, b) => s + b[b.length - 1], 0) };`,
      'postgres',
      60000,
    );
    const allocSeconds = seconds(t0);
    const peak = rssKb(pid)!;
    expect(r.n).toBe(32);
    expect(r.sum).toBe((32 * 33) / 2);
    expect(r.external).toBeGreaterThanOrEqual(2048 * MB);
    expect(r.heapUsed).toBeLessThan(64 * MB);
    expect(peak).toBeGreaterThan(2048 * 1024);
    // release and collect
    const after = await inWorker(cluster, `${GC} globalThis.__keep = null; gc(); gc(); return { rss: process.memoryUsage().rss, one: ctx.sql\`SELECT 1 AS one\`[0].one };`);
    const released = rssKb(pid)!;
    console.log(
      `[memory] no OS limit, heap_limit_mb 64: 2 GB of Buffers in ${allocSeconds.toFixed(2)} s; worker RSS ${(rss0 / 1024).toFixed(0)} MB -> ` +
        `${(peak / 1024).toFixed(0)} MB -> ${(released / 1024).toFixed(0)} MB after release + GC`,
    );
    expect(after.one).toBe(1);
    expect(released).toBeLessThan(rss0 + 256 * 1024);
    expect(await cluster.workerPid('evaluator')).toBe(pid);
    expect(await cluster.workerPid('bystander')).toBe(bystander);
    expect(cluster.log()).not.toMatch(RESET);
  });
});

describe('Buffers under a 1 GB data-segment limit (ulimit -d on the server)', () => {
  let cluster: Cluster;
  const LIMIT_KB = 1024 * 1024;

  beforeAll(async () => {
    cluster = await evaluatorCluster({ bystander: true, start: (c) => startWithDataLimit(c, LIMIT_KB) });
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('the limit applies to the worker (and the whole server)', async () => {
    const pid = await cluster.waitForWorker('evaluator');
    const limits = (await import('node:fs')).readFileSync(`/proc/${pid}/limits`, 'utf8');
    expect(limits).toMatch(new RegExp(`Max data size\\s+${LIMIT_KB * 1024}\\s+${LIMIT_KB * 1024}\\s+bytes`));
  });

  it('the worker fits its budgets into the limit and says so in the log', async () => {
    const budget = bufferBudgetMb(cluster);
    console.log(`[memory] 1 GB RLIMIT_DATA: "${cluster.log().match(/ArrayBuffers limited to .*/)?.[0]}"`);
    expect(budget).toBeGreaterThan(256);
    expect(budget).toBeLessThan(1024);
    // and the worker sees the limits in effect
    expect(await inWorker(cluster, 'const m = ctx.worker.memory(); return [m.heapLimitMb, m.bufferLimitMb];')).toEqual([256, budget]);
  });

  it('an allocation past the budget is a RangeError JS can catch; memory is usable again after release', async () => {
    const pid = await cluster.waitForWorker('evaluator');
    const budget = bufferBudgetMb(cluster);
    const r = await inWorker(
      cluster,
      `${GC}
       const keep = []; let err = null;
       try { for (let i = 0; i < 64; i++) keep.push(Buffer.alloc(64 * 1024 * 1024, 1)); }
       catch (e) { err = { name: e.name, message: e.message }; }
       const got = keep.length;
       const m = process.memoryUsage();
       // PostgreSQL's own allocations fail cleanly when they need more than is left
       let sqlErr = null;
       try { ctx.sql\`SELECT length(repeat('x', 700000000)) AS n\`; } catch (e) { sqlErr = { code: e.code, message: e.message, isPgError: e instanceof PgError }; }
       // small allocations and SQL still work while the budget is used up
       const small = ctx.sql\`SELECT decode('00ff', 'hex') AS b, repeat('y', 100000) AS s\`[0];
       keep.length = 0; gc(); gc();
       const again = Buffer.alloc(256 * 1024 * 1024, 2).length;
       return { got, err, rss: m.rss, arrayBuffers: m.arrayBuffers, sqlErr, small: [small.b.length, small.s.length], again, n: ctx.sql\`SELECT length(repeat('x', 200000000)) AS n\`[0].n };`,
      'postgres',
      60000,
    );
    console.log(
      `[memory] 1 GB RLIMIT_DATA, ArrayBuffer budget ${budget} MB: ${r.got} x 64 MB Buffers, then ${r.err?.name}: ${r.err?.message} ` +
        `(arrayBuffers ${(r.arrayBuffers / MB).toFixed(0)} MB, worker RSS ${(r.rss / MB).toFixed(0)} MB); ` +
        `SQL needing 700 MB meanwhile: PgError ${r.sqlErr?.code} ${r.sqlErr?.message}; after release: 256 MB Buffer and 200 MB SQL string OK`,
    );
    expect(r.err).toEqual({ name: 'RangeError', message: expect.stringMatching(BUFFER_REFUSED) });
    expect(r.got).toBe(Math.floor((budget * MB - r.arrayBuffers + r.got * 64 * MB) / (64 * MB)));
    expect(r.got * 64).toBeGreaterThan(budget - 128);
    expect(r.sqlErr).toMatchObject({ code: '53200', isPgError: true });
    expect(r.small).toEqual([2, 100000]);
    expect(r.again).toBe(256 * MB);
    expect(r.n).toBe(200000000);
    expect(await cluster.workerPid('evaluator')).toBe(pid);
    expect(cluster.log()).not.toMatch(RESET);
  });

  // On Node 24 this case ended in a cluster reset 3 times in 450 runs on a loaded machine (0 in
  // 160 unloaded): after the Worker's thread aborted as it should, the main thread did not leave
  // within the watchdog's 10 s, and the watchdog's abort reset the cluster. The cause is not
  // found (README, Limitations); the case stays off on Node 24 until it is.
  it.skipIf(NODE_24)('a worker_threads Worker filling memory with Buffers (outside the budget): the worker leaves with exit 1 and says why; no reset', async () => {
    const pid = await restartEvaluator(cluster);
    const bystander = await cluster.waitForWorker('bystander');
    const from = cluster.log().length;
    await submit(
      cluster,
      `const { Worker } = require('worker_threads');
       new Worker('const keep = []; for (;;) keep.push(Buffer.alloc(1024 * 1024, 1));', { eval: true });
       return 1;`,
    );
    const exit = await waitFor('the evaluator to exit', () => exitOf(cluster.log().slice(from), pid), 60000, 50);
    const log = cluster.log().slice(from);
    const why = whyItLeft(log, pid, 'evaluator');
    console.log(`[memory] worker_threads Buffers under 1 GB: "${log.match(/FATAL ERROR: .*/)?.[0]}", then "${why?.split('\n')[0].replace(/^.*LOG:  /, '')}" -> ${exit}`);
    // which thread noticed first (the Worker's abort, or a failed allocation on the main thread) is
    // not the point: the worker leaves with exit 1, the log and the view say memory ran out
    expect(exit).toBe('exited with exit code 1');
    expect(log).not.toMatch(RESET);
    expect(why, 'a log entry saying why').not.toBeNull();
    expect(why).toMatch(OUT_OF_MEMORY);
    const row = (await cluster.query<{ last_error: string | null }>("SELECT last_error FROM node_worker.workers WHERE name = 'evaluator'"))[0];
    expect(row.last_error).toEqual(expect.any(String));
    await cluster.waitForWorker('evaluator', 20000, pid);
    expect(await cluster.workerPid('bystander')).toBe(bystander);
  }, 90000);

  /*
   * Node's own C++ mallocs outside the ArrayBuffer allocator: hashing or writing a big string
   * copies it into a native buffer, ICU normalises into its own, the serializer reallocs. With
   * the budget used up (the process near its OS limit), each must end in a result, an error JS
   * sees, or exit 1 with a log line; never a signal (a failed CHECK, an uncaught bad_alloc).
   */
  const NATIVE_CASES: [string, string][] = [
    ['a crypto hash of a 120 MB string', "require('crypto').createHash('sha256').update('é'.repeat(60e6)).digest('hex').length"],
    ['fs.writeFileSync of a 120 MB string', "(require('fs').writeFileSync('/dev/null', 'é'.repeat(60e6)), 1)"],
    ['TextEncoder of a 120 MB string', "new TextEncoder().encode('é'.repeat(60e6)).length"],
    ['v8.serialize of 3M strings', "require('v8').serialize(new Array(3e6).fill('abcdefghij')).length"],
    ['String.normalize of 60M chars (ICU)', "'é'.repeat(60e6).normalize('NFD').length"],
    ['structuredClone of 2M objects', "structuredClone(new Array(2e6).fill({ a: 'x' })).length"],
    ['zlib.gzipSync of 16 MB', "require('zlib').gzipSync(keep[0]).length"],
    // the URL parser copies into std::strings (operator new): the first failure gets the 16 MB
    // reserve; the next one must not throw std::bad_alloc through libnode (built without
    // exceptions: std::terminate, SIGABRT, a cluster reset)
    ['three URLs of 100 MB (C++ operator new)', "[1, 2, 3].map(() => new URL('http://x/' + 'a'.repeat(100e6))).length"],
    // Node copies a string argument into a C string through node::Realloc, whose CHECK aborts
    // when the allocation fails: SIGABRT on the main thread, which must end in exit 1, not a
    // cluster reset
    ['fs.existsSync of a 200 MB file name (node::Realloc CHECK)', "require('fs').existsSync('a'.repeat(200e6))"],
    ['a crypto hash of a 200 MB string (node::Realloc CHECK)', "require('crypto').createHash('sha256').update('a'.repeat(200e6)).digest('hex').length"],
    ['url.domainToASCII of 200 MB (node::Realloc CHECK)', "require('url').domainToASCII('a'.repeat(200e6)).length"],
  ];

  it.each(NATIVE_CASES)('with the budget used up, %s: a result, a JS error or exit 1; never a signal', async (what, expr) => {
    const pid = await restartEvaluator(cluster);
    const from = cluster.log().length;
    await submit(
      cluster,
      `setTimeout(() => {
         const keep = []; try { for (;;) keep.push(Buffer.alloc(16 * 1024 * 1024, 1)); } catch {}
         let out;
         try { out = 'result ' + (${expr}); } catch (e) { out = 'threw ' + e.name + ': ' + e.message; }
         keep.length = 0;
         console.log('native case ended: ' + out);
       }, 0);
       return 1;`,
    );
    const ended = new RegExp(`\\[${pid}\\] LOG:  evaluator: native case ended: (.*)`);
    const outcome = await waitFor(
      'the case to end or the evaluator to exit',
      () => cluster.log().slice(from).match(ended)?.[1] ?? exitOf(cluster.log().slice(from), pid),
      60000,
      50,
    );
    const log = cluster.log().slice(from);
    const why = log.match(new RegExp(`\\[${pid}\\] (LOG:  node worker "evaluator"[: ].*|ERROR:  evaluator: uncaught .*)`))?.[1];
    console.log(`[memory] budget used up, then ${what}: ${outcome}${why ? ` ("${why}")` : ''}`);
    expect(log).not.toMatch(RESET);
    expect(outcome).not.toMatch(/signal/);
    if (/^exited/.test(outcome)) {
      expect(outcome).toBe('exited with exit code 1');
      expect(why, 'a log line saying why').toBeDefined();
      await cluster.waitForWorker('evaluator', 20000, pid);
      await evaluatorReady(cluster, from);
    } else {
      expect(outcome).toMatch(/^(result (\d+|true|false)|threw \w*Error: .+)$/);
      expect(await cluster.workerPid('evaluator')).toBe(pid);
    }
    expect(await inWorker(cluster, 'return ctx.sql`SELECT 41 + 1 AS x`[0].x')).toBe(42);
  }, 120000);

  // the same on a worker_threads thread: the new_handler's reserve (URLs), node::Realloc's CHECK
  const THREAD_CASES: [string, string][] = [
    ['three URLs of 100 MB', "const u = [1, 2, 3].map(() => new URL('http://x/' + 'a'.repeat(100e6))); console.log(u.length);"],
    ['fs.existsSync of a 200 MB file name', "require('fs').existsSync('a'.repeat(200e6));"],
  ];

  it.each(THREAD_CASES)('with the budget used up, a worker_threads thread doing %s: exit 1, no signal, the log says why', async (what, body) => {
    const pid = await restartEvaluator(cluster);
    const from = cluster.log().length;
    await submit(
      cluster,
      `globalThis.keep = []; try { for (;;) keep.push(Buffer.alloc(16 * 1024 * 1024, 1)); } catch {}
       // a heap limit of its own far above the data limit: memory, not V8's heap sizing (which
       // follows the machine's RAM), is what runs out
       new (require('worker_threads').Worker)(${JSON.stringify(body)}, { eval: true, resourceLimits: { maxOldGenerationSizeMb: 4096 } });
       return 1;`,
    );
    const exit = await waitFor('the evaluator to exit', () => exitOf(cluster.log().slice(from), pid), 60000, 50);
    const log = cluster.log().slice(from);
    const why = whyItLeft(log, pid, 'evaluator');
    console.log(`[memory] budget used up, a thread doing ${what}: ${exit} ("${why?.split('\n')[0].replace(/^.*LOG:  /, '')}")`);
    expect(exit).toBe('exited with exit code 1');
    expect(log).not.toMatch(RESET);
    expect(why, 'a log entry saying why').not.toBeNull();
    expect(why).toMatch(OUT_OF_MEMORY);
    await cluster.waitForWorker('evaluator', 20000, pid);
    await evaluatorReady(cluster, from);
  }, 120000);

  /*
   * Filling memory up to the OS limit without catching anything. Without the ArrayBuffer budget
   * (extension/runtime.cc) a process dies there inside V8's GC (a failed mprotect: "Check failed:
   * reservation_.SetPermissions") or by an uncaught std::bad_alloc, nondeterministically, and the
   * signal resets the cluster: the budget must make each case a logged exit 1 and nothing aborts.
   * Each case runs twice, for that nondeterminism.
   */
  const FILL_CASES: [string, string][] = [
    ['64 MB Buffers', 'const keep = []; for (;;) keep.push(Buffer.alloc(64 * 1024 * 1024, 1));'],
    ['1 MB Buffers', 'const keep = []; for (;;) keep.push(Buffer.alloc(1024 * 1024, 1));'],
    ['16 kB Buffers', 'const keep = []; for (;;) keep.push(Buffer.alloc(16 * 1024, 1));'],
    ['Buffers and SQL', "const keep = []; for (;;) { keep.push(Buffer.alloc(1024 * 1024, 1)); ctx.sql`SELECT repeat('x', 100000) AS s`; }"],
    ['Uint8Arrays in an async loop', 'const keep = []; for (;;) { keep.push(new Uint8Array(4 * 1024 * 1024).fill(1)); await null; }'],
    ['JS objects (the heap)', 'const keep = []; for (;;) keep.push(new Array(100000).fill(0).map((_, i) => ({ i })));'],
    ['strings and Buffers', "const keep = []; for (let i = 0; ; i++) { keep.push('x'.repeat(1 << 20) + i); keep.push(Buffer.alloc(1 << 20, 1)); }"],
  ];

  it.each([...FILL_CASES, ...FILL_CASES])('filling memory with %s, uncaught: logged, exit 1, restarted; no reset', async (_what, code) => {
    // a fresh evaluator: each case is one failure, not the next in a crash loop (backoff)
    const pid = await restartEvaluator(cluster);
    const bystander = await cluster.waitForWorker('bystander');
    const from = cluster.log().length;
    const t0 = process.hrtime.bigint();
    await submit(cluster, `setTimeout(async () => { ${code} }, 0); return 1;`);
    const exit = await waitFor('the evaluator to exit', () => exitOf(cluster.log().slice(from), pid), 60000, 50);
    const gone = seconds(t0);
    const again = await cluster.waitForWorker('evaluator', 20000, pid);
    await evaluatorReady(cluster, from);
    const back = seconds(t0);
    const log = cluster.log().slice(from);
    const why = whyItLeft(log, pid, 'evaluator');
    // what V8/libnode write straight to stderr when they abort
    const raw = [/^# Check failed: .*$/m, /^terminate called .*$/m, /^FATAL ERROR: .*$/m, /^# Fatal error.*$/m].map((re) => log.match(re)?.[0]).find(Boolean);
    console.log(
      `[memory] ${_what} under 1 GB: "${why?.split('\n')[0].replace(/^.*\[\d+\] /, '') ?? raw}" -> ${exit} after ${gone.toFixed(2)} s; ` +
        `running again (pid ${again}) after ${back.toFixed(2)} s${RESET.test(log) ? ' AFTER A CLUSTER RESET' : ''}`,
    );
    expect(exit, raw ?? why ?? undefined).toBe('exited with exit code 1');
    expect(log).not.toMatch(RESET);
    expect(log).not.toMatch(ABORT);
    expect(why, 'a log entry saying why').not.toBeNull();
    expect(why).toMatch(OUT_OF_MEMORY);
    expect(await cluster.workerPid('bystander')).toBe(bystander);
    expect(await inWorker(cluster, 'return ctx.sql`SELECT 41 + 1 AS x`[0].x')).toBe(42);
  }, 120000);
});

/** The ArrayBuffer budget the evaluator logged at start (MB). */
function bufferBudgetMb(cluster: Cluster): number {
  const m = cluster.log().match(/"evaluator": ArrayBuffers limited to (\d+) MB/g);
  if (!m) throw new Error('the evaluator did not log its ArrayBuffer budget');
  return Number(/(\d+) MB/.exec(m[m.length - 1])![1]);
}

describe('under a 384 MB data-segment limit: the heap limit is lowered to fit', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await evaluatorCluster({ start: (c) => startWithDataLimit(c, 384 * 1024) });
  }, 60000);
  afterAll(async () => cluster?.destroy());

  // on Node 24 a new isolate's code range counts against the limit from the start (512 MB by
  // default): a Worker must get one that fits, as the worker's own isolate does
  it('a worker_threads Worker starts and runs under the limit', async () => {
    const pid = await cluster.waitForWorker('evaluator');
    const r = await inWorker(
      cluster,
      `const { Worker } = require('worker_threads');
       const w = new Worker("require('worker_threads').parentPort.postMessage(6 * 7)", { eval: true });
       const limits = { ...w.resourceLimits };
       const v = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
       await w.terminate();
       return { v, codeRangeSizeMb: limits.codeRangeSizeMb, one: ctx.sql\`SELECT 1 AS one\`[0].one };`,
    );
    console.log(`[memory] 384 MB RLIMIT_DATA: a worker_threads Worker ran (code range ${r.codeRangeSizeMb} MB)`);
    expect(r.v).toBe(42);
    expect(r.one).toBe(1);
    expect(await cluster.workerPid('evaluator')).toBe(pid);
    expect(cluster.log()).not.toMatch(RESET);
  });

  // the plan lowers the old generation's limit; V8's whole heap may add at most Node 18 and 20's
  // young generation (3 x 16 MB) to it, never the one Node 24 sizes by the machine's memory for an
  // isolate without constraints (up to 3 x 64 MB)
  it('the heap can grow to the lowered limit and a young generation of at most 48 MB, no more', async () => {
    const r = await inWorker(cluster, `return require('v8').getHeapStatistics().heap_size_limit / (1024 * 1024);`);
    const lowered = [...cluster.log().matchAll(/JavaScript heap limit lowered from 256 MB to (\d+) MB/g)].pop();
    console.log(`[memory] 384 MB RLIMIT_DATA: heap limit ${lowered?.[1]} MB, V8's heap size limit ${r} MB`);
    expect(lowered).toBeDefined();
    expect(r).toBeGreaterThanOrEqual(Number(lowered![1]));
    expect(r).toBeLessThanOrEqual(Number(lowered![1]) + 48 + 1);
  });

  it.each([
    ['JS objects', 'const keep = []; for (;;) keep.push(new Array(100000).fill(0).map((_, i) => ({ i })));', /reached its JavaScript heap limit \(\d+ MB\)/],
    ['1 MB Buffers', 'const keep = []; for (;;) keep.push(Buffer.alloc(1024 * 1024, 1));', new RegExp(BUFFER_REFUSED_TEXT)],
  ])('filling memory with %s: logged, exit 1, restarted; no reset', async (_what, code, expected) => {
    const from = cluster.log().length;
    const pid = await restartEvaluator(cluster);
    const lowered = cluster.log().slice(from).match(/JavaScript heap limit lowered from 256 MB to (\d+) MB to fit the data segment limit of 384 MB/);
    const budget = cluster.log().slice(from).match(/ArrayBuffers limited to (\d+) MB/);
    await submit(cluster, `setTimeout(async () => { ${code} }, 0); return 1;`);
    const exit = await waitFor('the evaluator to exit', () => exitOf(cluster.log().slice(from), pid), 60000, 50);
    const log = cluster.log().slice(from);
    console.log(`[memory] 384 MB RLIMIT_DATA: heap limit ${lowered?.[1]} MB, ArrayBuffers ${budget?.[1]} MB; ${_what}: ${log.match(expected)?.[0]} -> ${exit}`);
    expect(lowered).not.toBeNull();
    expect(Number(budget?.[1])).toBeGreaterThan(32);
    expect(exit).toBe('exited with exit code 1');
    expect(log).toMatch(expected);
    expect(log).not.toMatch(RESET);
    expect(log).not.toMatch(ABORT);
    await cluster.waitForWorker('evaluator', 20000, pid);
  }, 90000);
});
