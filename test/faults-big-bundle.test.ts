/**
 * A 50 MB bundle: deploy takes it (under the 64 MiB limit) and the worker starts; in a cluster
 * whose heap limit is smaller than the bundle, the worker says it ran out of heap and exits 1.
 * The source is written from a string on purpose: its point is a 50 MB literal, made at run time.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BUNDLE_BYTES } from '../src/cli/deploy';
import { Cluster, waitFor } from './helpers/cluster';
import { ABORT, exitOf, OUT_OF_MEMORY, RESET, rssKb, seconds, whyItLeft, workerDir, writeOwned } from './helpers/faults';

describe('a 50 MB bundle', () => {
  let cluster: Cluster;
  let small: Cluster;
  let deploySeconds: number;
  const BLOB_BYTES = 50 * 1024 * 1024;

  beforeAll(async () => {
    cluster = await Cluster.create();
    // 37.5 MiB of random bytes as base64: a 50 MiB string literal, which no minifier shrinks
    const blob = randomBytes((BLOB_BYTES / 4) * 3).toString('base64');
    const src = `import { defineWorker } from 'pg-node-worker';
const BLOB = ${JSON.stringify(blob)};
export default defineWorker({ searchPath: ['public'], name: 'big', restart: 1, async main(ctx) {
  ctx.log.info('big: running with a blob of ' + BLOB.length + ' characters');
  while (!ctx.signal.aborted) await ctx.sleep(60000);
} });\n`;
    const t0 = process.hrtime.bigint();
    await cluster.deploySource('big', src);
    deploySeconds = seconds(t0);
    // the same bundle in a cluster whose heap limit is smaller than the bundle
    small = await Cluster.create({ settings: { 'node_worker.heap_limit_mb': 64 } });
    await small.deployTemplate('idle', 'steady');
    for (const f of ['big.js', 'big.json']) writeOwned(small, f, fs.readFileSync(path.join(workerDir(cluster), f)));
  }, 120000);
  afterAll(async () => {
    await cluster?.destroy();
    await small?.destroy();
  });

  it('deploys (under the 64 MiB limit) and the worker starts', async () => {
    const size = fs.statSync(path.join(workerDir(cluster), 'big.js')).size;
    expect(size).toBeGreaterThan(BLOB_BYTES);
    expect(size).toBeLessThan(MAX_BUNDLE_BYTES);
    const t0 = process.hrtime.bigint();
    await cluster.start();
    const m = await cluster.waitForLog(/\[(\d+)\] LOG:  big: big: running with a blob of (\d+) characters/, 30000);
    const started = seconds(t0);
    const pid = Number(m[1]);
    expect(Number(m[2])).toBe(BLOB_BYTES);
    const rss = rssKb(pid)!;
    console.log(
      `[50 MB bundle] ${(size / 1e6).toFixed(1)} MB: deploy ${deploySeconds.toFixed(2)} s; ` +
        `pg_ctl start -> first JS line ${started.toFixed(2)} s; worker RSS ${(rss / 1024).toFixed(0)} MB`,
    );
    expect(await cluster.workerPid('big')).toBe(pid);
    expect(cluster.log()).not.toMatch(RESET);
  });

  it('with node_worker.heap_limit_mb = 64 the worker logs that it ran out of heap and exits 1; the cluster is untouched', async () => {
    await small.start();
    const steady = await small.waitForWorker('steady');
    const m = await small.waitForLog(/\[(\d+)\] (LOG:  node worker "big"[: ]|ERROR:  big: )/, 30000);
    const pid = Number(m[1]);
    const exit = await waitFor('the big worker to exit', () => exitOf(small.log(), pid), 15000);
    const why = whyItLeft(small.log(), pid, 'big');
    console.log(`[50 MB bundle] heap_limit_mb = 64: "${why?.split('\n')[0].replace(/^.*\[\d+\] /, '')}" -> ${exit}`);
    expect(exit).toBe('exited with exit code 1');
    expect(why).toMatch(OUT_OF_MEMORY);
    expect(small.log()).not.toMatch(RESET);
    expect(small.log()).not.toMatch(ABORT);
    expect(await small.workerPid('steady')).toBe(steady);
  });
});
