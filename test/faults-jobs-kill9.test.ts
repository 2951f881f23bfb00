/**
 * kill -9 of a worker while its synchronous handler drains 10,000 jobs, each inserting a row:
 * the postmaster resets the cluster, crash recovery keeps what committed, the worker comes back
 * and finishes. Every job ran exactly once as far as the database can tell: 10,000 rows, no
 * number twice, none missing, every job done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, sleep, waitFor } from './helpers/cluster';
import { ABORT, connect } from './helpers/faults';

const JOBS = 10_000;

describe('kill -9 of a worker draining a queue', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create({ settings: { 'node_worker.jobs_keep_done_s': 3600 } });
    // deployed before the server starts: a static worker, started again after the reset
    await cluster.deployFile('faults-jobs-kill9-drainer.ts');
    await cluster.start();
    await cluster.query('CREATE TABLE public.drained (n int NOT NULL, pid int NOT NULL)');
    // the worker waits for the extension, then for the jobs, which come in one transaction
    await cluster.query('CREATE EXTENSION pg_node_worker');
    await cluster.waitForLog(/drainer: draining as pid/, 20000);
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('every job done exactly once after the recovery', async () => {
    const pid = await cluster.waitForWorker('drainer');
    await cluster.query(`SELECT count(node_worker.enqueue('drainer', jsonb_build_object('n', g))) FROM generate_series(1, ${JOBS}) g`);
    // kill it once it has committed some of the work, well before the end
    await waitFor('the drain to be under way', async () => {
      const [{ n }] = await cluster.query<{ n: number }>('SELECT count(*)::int AS n FROM public.drained');
      return n >= 500;
    }, 30000, 5);
    const from = cluster.log().length;
    process.kill(pid, 'SIGKILL');
    await cluster.waitForLog(/all server processes terminated; reinitializing/, 20000, from);
    await waitFor('the cluster to accept queries again', async () => {
      const c = await connect(cluster);
      try {
        return (await c.query('SELECT 1 AS ok')).rows[0].ok === 1;
      } finally {
        await c.end().catch(() => undefined);
      }
    }, 30000, 20);
    const [{ atRecovery }] = await cluster.query<{ atRecovery: number }>('SELECT count(*)::int AS "atRecovery" FROM public.drained');
    const newPid = await cluster.waitForWorker('drainer', 20000, pid);
    await waitFor('every job to be done', async () => {
      const [{ left }] = await cluster.query<{ left: number }>("SELECT count(*)::int AS left FROM node_worker.jobs WHERE queue = 'drainer' AND state <> 'done'");
      return left === 0;
    }, 45000, 100);
    await sleep(200);

    const [r] = await cluster.query<{ rows: number; distinct: number; lo: number; hi: number; before: number; after: number }>(
      `SELECT count(*)::int AS rows, count(DISTINCT n)::int AS distinct, min(n) AS lo, max(n) AS hi,
              count(*) FILTER (WHERE pid = $1)::int AS before, count(*) FILTER (WHERE pid = $2)::int AS after
         FROM public.drained`,
      [pid, newPid],
    );
    const [j] = await cluster.query<{ done: number; attempts: number }>(
      "SELECT count(*)::int AS done, max(attempts) AS attempts FROM node_worker.jobs WHERE queue = 'drainer' AND state = 'done'",
    );
    console.log(
      `[kill -9 while draining] ${r.before} rows committed by the killed process (${atRecovery} at recovery), ` +
        `${r.after} by the new one; ${r.rows} rows, ${r.distinct} distinct; ${j.done} jobs done, max attempts ${j.attempts}`,
    );
    // the kill landed in the middle of the drain
    expect(atRecovery).toBeLessThan(JOBS);
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
    // exactly once: every number once, none missing, none twice
    expect(r).toMatchObject({ rows: JOBS, distinct: JOBS, lo: 1, hi: JOBS });
    expect(r.before + r.after).toBe(JOBS);
    expect(j.done).toBe(JOBS);
    // a crash rolls the claim back with the work: no attempt was counted for it
    expect(j.attempts).toBe(1);
    const log = cluster.log().slice(from);
    expect(log).toMatch(new RegExp(`\\(PID ${pid}\\) was terminated by signal 9: Killed`));
    expect(log).not.toMatch(ABORT);
  }, 90000);
});
