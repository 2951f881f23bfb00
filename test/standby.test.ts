/**
 * Hot standby: a worker with start: 'consistent' runs on a streaming replica
 * made with pg_basebackup, reads, gets PgError 25006 for a write, and knows
 * which side it is on; start: 'recovery-finished' waits for promotion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './helpers/cluster';

let primary: Cluster;
let replica: Cluster;

beforeAll(async () => {
  primary = await Cluster.create();
  // test/workers/templates/probe.ts: reads, tries a write, logs what happened and where it runs
  await primary.deployTemplate('probe', 'reader', 'consistent');
  await primary.deployTemplate('probe', 'writer', 'recovery-finished');
  await primary.start();
  await primary.query('CREATE TABLE facts (x int)');
  await primary.query('INSERT INTO facts SELECT generate_series(1, 3)');
  replica = await Cluster.replicaOf(primary);
  await replica.start();
}, 90000);
afterAll(async () => {
  await replica?.destroy();
  await primary?.destroy();
});

describe('on a streaming replica', () => {
  it("runs a start: 'consistent' worker read-only: reads work, a write is PgError 25006, isInRecovery() is true", async () => {
    await replica.waitForLog(/reader: recovery=true rows=\d+ write=25006/, 20000);
    expect(await replica.query('SELECT pg_is_in_recovery() AS r')).toEqual([{ r: true }]);
    // on the primary the same worker wrote
    await primary.waitForLog(/reader: recovery=false rows=\d+ write=ok/);
  });

  it("does not start a start: 'recovery-finished' worker until promotion, then runs it read-write", async () => {
    await replica.waitForWorker('reader');
    expect(await replica.workerPid('writer')).toBeNull();
    expect(replica.log()).not.toMatch(/writer: recovery=/);
    replica.pgCtl(['promote', '-w']);
    await replica.waitForLog(/writer: recovery=false rows=\d+ write=ok/, 20000);
    await waitFor('the reader to see promotion', async () =>
      (await replica.query('SELECT pg_is_in_recovery() AS r'))[0].r === false);
  });
});
