/**
 * Diagnostic, not part of `npm run bench`: where a ctx.sql call spends its
 * time inside a worker.
 *
 *   node --import tsx bench/hotspots.ts          per-call microbenchmarks
 *   PERF=1 node --import tsx bench/hotspots.ts   + `perf record -g` of the worker
 *                                                during an 8 s SELECT 1 loop
 *                                                (needs perf; prints a summary)
 *
 * It reaches past the public API: the worker takes the bridge object from
 * Node's module cache (the runtime loaded pg_node_worker_bridge.node there)
 * and times native.execute() alone next to ctx.sql, so it depends on the
 * runtime's internals of the day (src/runtime/native.ts) and may need
 * updating when they change.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster, sleep, waitFor } from '../test/helpers/cluster';

const WORKER = `
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'pgnw_hotspots',
  restart: 'never',
  async main(ctx) {
    const M: any = require('module');
    const key = Object.keys(M._cache).find((k) => k.endsWith('pg_node_worker_bridge.node'));
    if (!key) throw new Error('the bridge is not in the module cache');
    const native = M._cache[key].exports;
    const rec = (k: string, v: number) => ctx.sql\`INSERT INTO hs(k, v) VALUES (\${k}, \${v})\`;
    rec('pid', ctx.worker.pid);

    const N = 200000;
    const time = (name: string, fn: () => unknown) => {
      for (let i = 0; i < 20000; i++) fn();
      const t0 = performance.now();
      for (let i = 0; i < N; i++) fn();
      rec(name, ((performance.now() - t0) * 1000) / N);
    };
    const plan = native.prepare('SELECT 1');
    const fields = ['?column?'];
    time('us: N-API call returning a number (native.depth())', () => native.depth());
    time('us: native.begin() + native.commit()', () => { native.begin(); native.commit(); });
    time('us: native.execute(plan, SELECT 1) (SPI + result envelope)', () => native.execute(plan.id, 'SELECT 1', []));
    time('us: native.execute(-1, SELECT 1) (SPI_execute, no plan)', () => native.execute(-1, 'SELECT 1', []));
    time('us: ctx.sql\`SELECT 1\` (all of it)', () => ctx.sql\`SELECT 1\`);
    time('us: JS only: Object.defineProperties(rows, {count, command, columns})', () => {
      const rows: any = new Array(1);
      rows[0] = { x: 1 };
      return Object.defineProperties(rows, { count: { value: 1 }, command: { value: 'SELECT' }, columns: { value: fields } });
    });
    time('us: JS only: same, as plain assignments', () => {
      const rows: any = new Array(1);
      rows[0] = { x: 1 };
      rows.count = 1; rows.command = 'SELECT'; rows.columns = fields;
      return rows;
    });
    const fetchPlan = native.prepare('SELECT i, md5(i::text) FROM generate_series(1, 1000000) i');
    for (let i = 0; i < 3; i++) {
      let t0 = performance.now();
      let raw: any = native.execute(fetchPlan.id, 'x', []);
      rec('ms: 1M rows: native.execute (SPI + 2M JS values)', performance.now() - t0);
      raw = null;
      t0 = performance.now();
      let rows: any = ctx.sql\`SELECT i, md5(i::text) FROM generate_series(1, 1000000) i\`;
      rec('ms: 1M rows: ctx.sql (+ row objects)', performance.now() - t0);
      rows = null;
    }
    rec('done', 1);
    while (!ctx.signal.aborted) {
      if ((ctx.sql\`SELECT 1 FROM hs_go\` as any[]).length) {
        ctx.sql\`DELETE FROM hs_go\`;
        const t0 = performance.now();
        let n = 0;
        while (performance.now() - t0 < 8000) { for (let k = 0; k < 64; k++) ctx.sql\`SELECT 1\`; n += 64; }
        rec('calls/s: SELECT 1 loop under perf', n / 8);
      }
      await ctx.sleep(50);
    }
  },
});
`;

let cluster: Cluster | null = null;
const cleanup = () => {
  const c = cluster;
  cluster = null;
  if (c) void c.destroy();
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
process.on('exit', cleanup);

async function main(): Promise<void> {
  cluster = await Cluster.create({ settings: { shared_buffers: '256MB' } });
  const c = cluster;
  await c.start();
  await c.query('CREATE TABLE hs (id serial, k text, v float8); CREATE TABLE hs_go (x int)');
  c.deploy('pgnw_hotspots', WORKER);
  await c.restart();
  const cl = await c.client();
  try {
    await waitFor('the measurements', async () => (await cl.query("SELECT 1 FROM hs WHERE k = 'done'")).rowCount, 180000, 200);
    const rows = (await cl.query<{ k: string; v: number }>("SELECT k, v FROM hs WHERE k NOT IN ('done', 'pid') ORDER BY id")).rows;
    const width = Math.max(...rows.map((r) => r.k.length));
    for (const r of rows) console.log(`${r.k.padEnd(width)}  ${r.v.toFixed(3)}`);
    if (process.env.PERF) {
      const pid = (await cl.query("SELECT v FROM hs WHERE k = 'pid'")).rows[0].v;
      const data = path.join(c.dir, 'perf.data');
      await cl.query('INSERT INTO hs_go VALUES (1)');
      await sleep(1000);
      spawnSync('perf', ['record', '-q', '-F', '999', '-g', '-p', String(pid), '-o', data, '--', 'sleep', '5'], { stdio: 'inherit' });
      await waitFor('the perf loop', async () => (await cl.query("SELECT 1 FROM hs WHERE k LIKE 'calls/s%'")).rowCount, 30000, 200);
      console.log(`calls/s under perf: ${(await cl.query("SELECT v FROM hs WHERE k LIKE 'calls/s%'")).rows[0].v.toFixed(0)}`);
      const report = (args: string[]) =>
        spawnSync('perf', ['report', '-i', data, '-g', 'none', ...args], { encoding: 'utf8' }).stdout
          .split('\n').filter((l) => l.trim() && !l.startsWith('#'));
      console.log('\nself time by object:');
      console.log(report(['--no-children', '--sort', 'dso']).slice(0, 8).join('\n'));
      console.log('\ninclusive time of the bridge/N-API/V8 entry points:');
      const want = /Execute$|pgnw_guard|pgnw_finish|napi_set_named_property|napi_set_element|Builtin_ObjectDefineProperties|napi_create_array|napi_create_object|napi_create_string_utf8|Utf8Value|SPI_execute_plan|CommitTransactionCommand|Heap::CollectGarbage/;
      console.log(report(['--children', '--sort', 'symbol']).filter((l) => want.test(l.replace(/\s+-\s+-\s*$/, '').trim())).map((l) => l.replace(/\s+-\s+-\s*$/, '')).join('\n'));
      fs.rmSync(data, { force: true });
    }
  } finally {
    await cl.end();
  }
}

main()
  .catch((err) => {
    console.error(err);
    if (cluster) console.error(cluster.logTail(40));
    process.exitCode = 1;
  })
  .finally(cleanup);
