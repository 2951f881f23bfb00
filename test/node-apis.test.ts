/**
 * Node inside the worker: the event loop driven from the latch runs timers,
 * promises, fs, http and fetch; crypto works without OpenSSL's config.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, cpuMs, installedNodeVersion } from './helpers/cluster';
import { evaluatorCluster, inWorker } from './helpers/evalWorker';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await evaluatorCluster();
}, 60000);
afterAll(async () => cluster?.destroy());

describe('Node APIs in a worker', () => {
  it('runs timers, immediates, nextTick and promises in order', async () => {
    const order = await inWorker(
      cluster,
      `const seen = [];
       await new Promise((resolve) => {
         setTimeout(() => { seen.push('timeout'); resolve(); }, 30);
         setImmediate(() => seen.push('immediate'));
         process.nextTick(() => seen.push('tick'));
         Promise.resolve().then(() => seen.push('microtask'));
       });
       return seen;`,
    );
    // inside an async function (a microtask), Node drains microtasks before the nextTick queue
    expect(order).toEqual(['microtask', 'tick', 'immediate', 'timeout']);
  });

  it('reads and writes files with fs.promises (libuv threadpool)', async () => {
    const r = await inWorker(
      cluster,
      `const fs = require('fs'); const os = require('os'); const path = require('path');
       const file = path.join(os.tmpdir(), 'pgnw-' + process.pid + '.txt');
       await fs.promises.writeFile(file, 'hello from the worker');
       const text = await fs.promises.readFile(file, 'utf8');
       await fs.promises.unlink(file);
       return text;`,
    );
    expect(r).toBe('hello from the worker');
  });

  it('serves http and fetches it over loopback', async () => {
    const r = await inWorker(
      cluster,
      `const http = require('http');
       const server = http.createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ path: req.url })); });
       await new Promise((r) => server.listen(0, '127.0.0.1', r));
       const { port } = server.address();
       try {
         const res = await fetch('http://127.0.0.1:' + port + '/ping?x=1');
         return { status: res.status, body: await res.json() };
       } finally { server.close(); }`,
    );
    expect(r).toEqual({ status: 200, body: { path: '/ping?x=1' } });
  });

  it('has crypto (random, hashes, HMAC, UUID)', async () => {
    const r = await inWorker(
      cluster,
      `const c = require('crypto');
       return { uuid: c.randomUUID(), sha: c.createHash('sha256').update('abc').digest('hex'),
                hmac: c.createHmac('sha256', 'k').update('m').digest('hex').length, rnd: c.randomBytes(8).length };`,
    );
    expect(r.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.sha).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(r.hmac).toBe(64);
    expect(r.rnd).toBe(8);
  });

  it('reports the installed Node version and sets the ps display through process.title', async () => {
    const pid = await cluster.waitForWorker('evaluator');
    const version = await inWorker(cluster, "process.title = 'node_worker evaluator: busy'; return process.version");
    expect(version).toBe(`v${installedNodeVersion()}`);
    const fs = await import('node:fs');
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toMatch(/node_worker evaluator: busy/);
  });

  it('does not spin when only a far timer is pending (CPU stays near zero)', async () => {
    const pid = await cluster.waitForWorker('evaluator');
    await inWorker(cluster, 'globalThis.__farTimer = setTimeout(() => {}, 3600000); return 1');
    // what the job left to V8's threads (a GC, a compile) is not the loop's
    await new Promise((r) => setTimeout(r, 300));
    const before = cpuMs(pid);
    await new Promise((r) => setTimeout(r, 2000));
    const used = cpuMs(pid) - before;
    console.log(`[node-apis] evaluator with a far timer pending: ${used.toFixed(1)} ms of CPU in 2 s`);
    // the evaluator polls its jobs table every 20 ms, so allow some CPU; a busy spin would use ~2000 ms
    expect(used).toBeLessThan(600);
  });
});
