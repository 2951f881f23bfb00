/**
 * Diagnostic, not part of `npm run bench`: where a ctx.sql call spends its
 * time inside a worker.
 *
 *   node --import tsx bench/hotspots.ts          per-call microbenchmarks
 *   PERF=1 node --import tsx bench/hotspots.ts   + `perf record -g` of the worker
 *                                                during an 8 s SELECT 1 loop
 *                                                (HS_FETCH=1: a loop of 1M-row fetches)
 *                                                (needs perf; prints a summary)
 *
 * It reaches past the public API: the worker opens the bridge the runtime
 * loaded (pg_node_worker_bridge.node, found in /proc/self/maps) again and times native.execute() alone next to ctx.sql, so it depends on the
 * runtime's internals of the day (src/runtime/native.ts) and may need
 * updating when they change.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster, sleep, waitFor } from '../test/helpers/cluster';

const WORKER = `
import { defineWorker } from 'pg-node-worker';

export default defineWorker({ searchPath: ['public'],
  name: 'pgnw_hotspots',
  restart: 'never',
  async main(ctx) {
    // the bridge the runtime loaded, found in /proc/self/maps and opened again (same library)
    const file = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n')
      .map((l: string) => l.slice(l.indexOf('/'))).find((l: string) => l.endsWith('pg_node_worker_bridge.node'));
    if (!file) throw new Error('the bridge is not mapped');
    const mod: any = { exports: {} };
    process.dlopen(mod, file);
    const native = mod.exports;
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
    time('us: N-API call returning a number (native.depth())', () => native.depth());
    time('us: native.begin() + native.commit()', () => { native.begin(); native.commit(); });
    time('us: native.execute(plan, SELECT 1) (SPI + result)', () => native.execute(plan.id, 0));
    time('us: native.executeText(SELECT 1) (SPI_execute, no plan)', () => native.executeText('SELECT 1'));
    time('us: ctx.sql\`SELECT 1\` (all of it)', () => ctx.sql\`SELECT 1\`);
    ctx.transaction((tx) => time('us: tx.sql\`SELECT 1\` (inside one ctx.transaction)', () => tx.sql\`SELECT 1\`));
    ctx.sql\`CREATE TABLE IF NOT EXISTS hs_rows AS SELECT i::int4 AS i, md5(i::text) AS t FROM generate_series(1, 1000000) i\`;
    ctx.sql\`CREATE TABLE IF NOT EXISTS hs_rows8 AS SELECT i::int4 AS a, i::int8 * 1000003 AS b, i / 7.0::float8 AS c, i % 3 = 0 AS d, md5(i::text) AS e,
         timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS f,
         jsonb_build_object('id', i, 'tag', 'x' || (i % 100)) AS g, round(i / 3.0, 4)::numeric AS h FROM generate_series(1, 500000) i\`;
    for (const [label, text] of [['1M (int4, text)', 'SELECT i, t FROM hs_rows'], ['500k x 8 cols', 'SELECT a, b, c, d, e, f, g, h FROM hs_rows8'], ['1M (int4)', 'SELECT i FROM hs_rows'], ['1M count(*)', 'SELECT count(*) FROM hs_rows']] as const) {
      const p = native.prepare(text);
      for (let i = 0; i < 3; i++) {
        let t0 = performance.now();
        let raw: any = native.execute(p.id, 0);
        rec(\`ms: \${label}: native.execute (SPI + columns to JS)\`, performance.now() - t0);
        raw = null;
        t0 = performance.now();
        let rows: any = ctx.sql.unsafe(text, []);
        rec(\`ms: \${label}: ctx.sql (+ row objects)\`, performance.now() - t0);
        rows = null;
      }
    }
    rec('done', 1);
    while (!ctx.signal.aborted) {
      if ((ctx.sql\`SELECT 1 FROM hs_go\` as any[]).length) {
        ctx.sql\`DELETE FROM hs_go\`;
        const t0 = performance.now();
        let n = 0;
        if (${process.env.HS_FETCH ? 'true' : 'false'}) { const q = native.prepare('SELECT i, t FROM hs_rows'); while (performance.now() - t0 < 8000) { ctx.sql.unsafe('SELECT i, t FROM hs_rows', []); n += 1e6; } void q; }
        else while (performance.now() - t0 < 8000) { for (let k = 0; k < 64; k++) ctx.sql\`SELECT 1\`; n += 64; }
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
      console.log('\nself time by symbol (top 30):');
      console.log(report(['--no-children', '--sort', 'dso,symbol']).slice(0, 30).join('\n'));
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
