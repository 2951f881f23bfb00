/**
 * instances: N in defineWorker: N processes of one static worker, each with its
 * ctx.worker.instance, one row each in node_worker.workers; stop and restart act on all of
 * them; a worker whose instances do not fit in node_worker.max_workers is not started, with a
 * LOG line, and the others still are.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './helpers/cluster';

let cluster: Cluster;

type Row = { kind: string; pid: number | null; state: string };
const rows = (name: string) =>
  cluster.query<Row>('SELECT kind, pid, state FROM node_worker.workers WHERE name = $1 ORDER BY pid', [name]);
const allRunning = (name: string, n: number) =>
  waitFor(`${n} processes of ${name} running`, async () => {
    const r = await rows(name);
    return r.length === n && r.every((x) => x.state === 'running' && x.pid !== null) ? r : null;
  });

beforeAll(async () => {
  // many takes 3 slots, single 1: nothing is left for toomany's 5 (manifests register in name order)
  cluster = await Cluster.create({ settings: { 'node_worker.max_workers': 4 } });
  await cluster.deployFile('instances-many.ts');
  await cluster.deployTemplate('idle', 'single');
  await cluster.deployFile('instances-toomany.ts');
  await cluster.start();
  await cluster.query('CREATE EXTENSION pg_node_worker');
}, 60000);
afterAll(async () => cluster?.destroy());

describe('instances', () => {
  it('starts one process per instance, each knowing its number, shown as one row each', async () => {
    const r = await allRunning('many', 3);
    expect(r.map((x) => x.kind)).toEqual(['static', 'static', 'static']);
    expect(new Set(r.map((x) => x.pid)).size).toBe(3);
    expect(cluster.log()).toMatch(/pg_node_worker: registered worker "many" \(database "postgres", bundle .*\) with 3 instances/);
    for (const i of [0, 1, 2]) await cluster.waitForLog(new RegExp(`many: instance ${i} runs as pid (${r.map((x) => x.pid).join('|')})`));
    const seen = [...cluster.log().matchAll(/many: instance (\d+) runs as pid (\d+)/g)];
    // each pid reported one instance number, and the numbers are 0, 1, 2
    expect(seen.map((m) => Number(m[1])).sort()).toEqual([0, 1, 2]);
  });

  it('a worker whose instances do not fit is not started, with a LOG line; the others run', async () => {
    expect(cluster.log()).toMatch(
      /pg_node_worker: skipping worker manifest ".*toomany\.json": its 5 instances do not fit in node_worker\.max_workers \(4, 0 left\)/,
    );
    expect(await rows('toomany')).toEqual([{ kind: 'static', pid: null, state: 'stopped' }]);
    await allRunning('single', 1);
  });

  it('stop() stops every instance; restart() starts every instance again', async () => {
    const before = (await allRunning('many', 3)).map((x) => x.pid);
    expect(await cluster.query("SELECT node_worker.stop('many') AS s")).toEqual([{ s: true }]);
    expect((await rows('many')).map((x) => [x.pid, x.state])).toEqual([[null, 'stopped'], [null, 'stopped'], [null, 'stopped']]);
    const from = cluster.log().length;
    await cluster.query("SELECT node_worker.restart('many')");
    const after = (await allRunning('many', 3)).map((x) => x.pid);
    for (const pid of after) expect(before).not.toContain(pid);
    for (const i of [0, 1, 2]) await cluster.waitForLog(new RegExp(`many: instance ${i} runs`), 15000, from);
  });
});
