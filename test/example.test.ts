/**
 * examples/counted.ts — the worker_spi sample in TypeScript — on a real cluster: counting, reload
 * of the naptime, and surviving a dropped schema. Written as a worker project's own test would be:
 * with pg-node-worker/testing only.
 */
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from 'pg-node-worker/testing';

const COUNTED = path.resolve(__dirname, '..', 'examples', 'counted.ts');
let pg: TestCluster;

beforeAll(async () => {
  pg = await startCluster({ settings: { 'counted.naptime': 1 } });
  await pg.deploy(COUNTED);
  await pg.waitForLog('counted', /counted: initialized with "counted"\.counted, naptime 1 s/);
}, 60000);
afterAll(async () => pg?.stop());

const total = async () =>
  (await pg.query<{ value: number }>("SELECT value FROM counted.counted WHERE type = 'total'"))[0]?.value;

describe('examples/counted.ts', () => {
  it('adds the deltas to the total and deletes them', async () => {
    await pg.query("INSERT INTO counted.counted VALUES ('delta', 1), ('delta', 5), ('delta', 10)");
    await pg.waitUntil('total = 16', async () => (await total()) === 16, 10000);
    expect(await pg.query("SELECT count(*)::int AS n FROM counted.counted WHERE type = 'delta'")).toEqual([{ n: 0 }]);
    await pg.waitForLog('counted', /counted: count in "counted"\.counted is now 16/);
  });

  it('picks up a new naptime on reload', async () => {
    const from = pg.logs('counted').length;
    await pg.configure({ 'counted.naptime': 2 });
    await pg.waitForLog('counted', /counted: naptime is now 2 s/, { timeoutMs: 10000, from });
  });

  it('recreates its schema when someone drops it, without restarting', async () => {
    const pid = await pg.waitForWorker('counted');
    const from = pg.logs('counted').length;
    await pg.query('DROP SCHEMA counted CASCADE');
    await pg.waitForLog('counted', /counted: "counted"\.counted is gone .*; recreating it/, { timeoutMs: 15000, from });
    await pg.waitUntil('total row back', async () => (await total()) === 0, 10000);
    await pg.query("INSERT INTO counted.counted VALUES ('delta', 7)");
    await pg.waitUntil('total = 7', async () => (await total()) === 7, 10000);
    expect(await pg.waitForWorker('counted')).toBe(pid);
  });
});
