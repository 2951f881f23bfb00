/**
 * examples/counted.ts — the worker_spi sample in TypeScript — on a real
 * cluster: counting, reload of the naptime, and surviving a dropped schema.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, REPO, waitFor } from './helpers/cluster';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.create({ settings: { 'counted.naptime': 1 } });
  await cluster.deployFile(path.join(REPO, 'examples', 'counted.ts'));
  await cluster.start();
  await cluster.waitForLog(/counted: initialized with "counted"\.counted, naptime 1 s/);
}, 60000);
afterAll(async () => cluster?.destroy());

const total = async () =>
  (await cluster.query<{ value: number }>("SELECT value FROM counted.counted WHERE type = 'total'"))[0]?.value;

describe('examples/counted.ts', () => {
  it('adds the deltas to the total and deletes them', async () => {
    await cluster.query("INSERT INTO counted.counted VALUES ('delta', 1), ('delta', 5), ('delta', 10)");
    await waitFor('total = 16', async () => (await total()) === 16, 10000);
    expect(await cluster.query("SELECT count(*)::int AS n FROM counted.counted WHERE type = 'delta'")).toEqual([{ n: 0 }]);
    await cluster.waitForLog(/counted: count in "counted"\.counted is now 16/);
  });

  it('picks up a new naptime on reload', async () => {
    const from = cluster.log().length;
    fs.appendFileSync(path.join(cluster.datadir, 'postgresql.conf'), '\ncounted.naptime = 2\n');
    cluster.reload();
    await cluster.waitForLog(/counted: naptime is now 2 s/, 10000, from);
  });

  it('recreates its schema when someone drops it, without restarting', async () => {
    const pid = await cluster.waitForWorker('counted');
    const from = cluster.log().length;
    await cluster.query('DROP SCHEMA counted CASCADE');
    await cluster.waitForLog(/counted: "counted"\.counted is gone .*; recreating it/, 15000, from);
    await waitFor('total row back', async () => (await total()) === 0, 10000);
    await cluster.query("INSERT INTO counted.counted VALUES ('delta', 7)");
    await waitFor('total = 7', async () => (await total()) === 7, 10000);
    expect(await cluster.workerPid('counted')).toBe(pid);
  });
});
