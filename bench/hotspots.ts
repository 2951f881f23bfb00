/**
 * Diagnostic, not part of `npm run bench`: where a ctx.sql call spends its
 * time inside a worker.
 *
 *   node --import tsx bench/hotspots.ts          per-call microbenchmarks
 *   PERF=1 node --import tsx bench/hotspots.ts   + `perf record -g` of the worker
 *                                                during an 8 s SELECT 1 loop
 *                                                (HS_LOOP=select1-xact: inside one transaction,
 *                                                HS_LOOP=fetch: a loop of 1M-row fetches)
 *                                                (needs perf; prints a summary;
 *                                                HS_PERF_OUT=file keeps perf.data)
 *
 * It reaches past the public API: the worker (bench/workers/hotspots.ts)
 * opens the bridge the runtime loaded (pg_node_worker_bridge.node, found in
 * /proc/self/maps) again and times native.execute() alone next to ctx.sql, so
 * it depends on the runtime's internals of the day (src/runtime/native.ts) and
 * may need updating when they change.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster, sleep, waitFor } from '../test/helpers/cluster';
import { deployBenchTemplate } from './deploy';

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
  const loop = process.env.HS_LOOP ?? 'select1';
  if (loop !== 'select1' && loop !== 'select1-xact' && loop !== 'fetch') throw new Error(`HS_LOOP must be select1, select1-xact or fetch, not ${loop}`);
  await deployBenchTemplate(c, 'hotspots', 'pgnw_hotspots', loop);
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
      const rec = spawnSync('perf', ['record', '-q', '-F', '999', '-g', '-p', String(pid), '-o', data, '--', 'sleep', '5'], { stdio: 'inherit' });
      if (rec.error) throw new Error(`PERF=1 needs perf (Debian: apt-get install linux-perf): ${rec.error.message}`);
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
      if (process.env.HS_PERF_OUT) fs.copyFileSync(data, process.env.HS_PERF_OUT);
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
