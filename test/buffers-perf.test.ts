/**
 * ctx.buffers figures, on demand: PGNW_PERF=1 npx vitest run test/buffers-perf.test.ts
 *   - snapshot() of 1 GB shared_buffers (131072 buffers, mostly in use) vs
 *     SELECT count(*) FROM pg_buffercache, both run in the same worker process;
 *   - prewarm() MB/s vs pg_prewarm() on the same 256 MB table, each after a server restart (the
 *     blocks come from the OS page cache in both cases), alternating, median of 5.
 * Prints the figures and whether they meet their targets (snapshot >= 1x, prewarm >= 0.9x); asserts
 * only what the operations return: speed is reported, not asserted (a busy machine is not a bug).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from './helpers/cluster';
import { evaluatorCluster, inWorker } from './helpers/evalWorker';

const RUN = process.env.PGNW_PERF === '1';
let cluster: Cluster;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function restart(): Promise<void> {
  const from = cluster.log().length;
  await cluster.restart();
  await cluster.waitForLog(/evaluator: evaluator ready/, 60000, from);
}

describe.runIf(RUN)('ctx.buffers performance (1 GB shared_buffers)', () => {
  beforeAll(async () => {
    cluster = await evaluatorCluster({ settings: { shared_buffers: "'1GB'", autovacuum: 'off', max_wal_size: "'4GB'" } });
    await cluster.query('CREATE EXTENSION pg_buffercache; CREATE EXTENSION pg_prewarm');
    // ~900 MB to fill shared_buffers, and a 256 MB table to prewarm
    await cluster.query(`CREATE UNLOGGED TABLE big AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 6000000) g`);
    await cluster.query(`CREATE UNLOGGED TABLE pw AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 1700000) g`);
  }, 600000);
  afterAll(async () => cluster?.destroy());

  it('snapshot() vs SELECT count(*) FROM pg_buffercache', async () => {
    await cluster.query("SELECT pg_prewarm('big')");
    const r = await inWorker(
      cluster,
      `const t = (fn) => { const t0 = process.hrtime.bigint(); fn(); return Number(process.hrtime.bigint() - t0) / 1e6; };
       const snap = [], sql = [];
       let count = 0, total = 0, rows = 0;
       ctx.buffers.snapshot(); ctx.sql\`SELECT count(*) FROM pg_buffercache\`;
       for (let i = 0; i < 9; i++) {
         snap.push(t(() => { const s = ctx.buffers.snapshot(); count = s.count; total = s.total; }));
         sql.push(t(() => { rows = Number(ctx.sql\`SELECT count(*) AS n FROM pg_buffercache\`[0].n); }));
       }
       return { snap, sql, count, total, rows };`,
      'postgres',
      120000,
    );
    const snapMs = median(r.snap);
    const sqlMs = median(r.sql);
    console.log(
      `snapshot() of ${r.total} buffers (${r.count} valid): median ${snapMs.toFixed(2)} ms; ` +
        `SELECT count(*) FROM pg_buffercache (${r.rows} rows): median ${sqlMs.toFixed(2)} ms; ratio ${(sqlMs / snapMs).toFixed(1)}x ` +
        `(target >= 1x: ${sqlMs / snapMs >= 1 ? 'met' : 'NOT met'})`,
    );
    expect(r.total).toBe(131072);
    expect(r.count).toBeGreaterThan(100000);
  });

  it('prewarm() vs pg_prewarm()', async () => {
    const mine: number[] = [];
    const theirs: number[] = [];
    let blocks = 0;
    for (let round = 0; round < 5; round++) {
      await restart();
      const a = await inWorker(cluster, `const t0 = process.hrtime.bigint(); const n = ctx.buffers.prewarm('pw'); return [n, Number(process.hrtime.bigint() - t0) / 1e6]`, 'postgres', 120000);
      await restart();
      const b = await inWorker(cluster, `const t0 = process.hrtime.bigint(); const n = Number(ctx.sql\`SELECT pg_prewarm('pw') AS n\`[0].n); return [n, Number(process.hrtime.bigint() - t0) / 1e6]`, 'postgres', 120000);
      expect(a[0]).toBe(b[0]);
      blocks = a[0];
      mine.push(a[1]);
      theirs.push(b[1]);
    }
    const mb = (blocks * 8192) / 1048576;
    const mineMBs = mb / (median(mine) / 1000);
    const theirMBs = mb / (median(theirs) / 1000);
    console.log(
      `prewarm of ${mb.toFixed(0)} MB (${blocks} blocks): ctx.buffers.prewarm ${mineMBs.toFixed(0)} MB/s ` +
        `(${mine.map((x) => x.toFixed(0)).join('/')} ms), pg_prewarm ${theirMBs.toFixed(0)} MB/s ` +
        `(${theirs.map((x) => x.toFixed(0)).join('/')} ms); ratio ${(mineMBs / theirMBs).toFixed(2)}x ` +
        `(target >= 0.9x: ${mineMBs / theirMBs >= 0.9 ? 'met' : 'NOT met'})`,
    );
    expect(blocks).toBeGreaterThan(0);
  });
});
