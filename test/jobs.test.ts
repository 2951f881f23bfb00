/**
 * Durable job queues against a real worker (test/workers/jobs-sink.ts): transactional enqueue,
 * synchronous handlers (effects and completion in one transaction), retries with backoff and
 * failure, a promise from a synchronous handler, async handlers at least once across a process
 * that dies (the lease), job_key replacement, retry/cancel, the views, privileges and bad input.
 * The kill -9 run is test/faults-jobs-kill9.test.ts.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './helpers/cluster';

let cluster: Cluster;

type JobRow = {
  id: string;
  queue: string;
  state: string;
  attempts: number;
  last_error: string | null;
  key: string | null;
  payload: any;
  run_at: Date;
};

const enqueue = async (queue: string, payload: unknown, extra = '', params: unknown[] = []): Promise<string> =>
  (await cluster.query<{ id: string }>(`SELECT node_worker.enqueue($1, $2::jsonb${extra}) AS id`, [queue, JSON.stringify(payload), ...params]))[0].id;
const job = async (id: string): Promise<JobRow | undefined> => (await cluster.query<JobRow>('SELECT * FROM node_worker.jobs WHERE id = $1', [id]))[0];
const waitState = (id: string, state: string, timeoutMs = 15000) =>
  waitFor(`job ${id} to be ${state}`, async () => {
    const j = await job(id);
    return j?.state === state ? j : null;
  }, timeoutMs);
const rows = async (n: number) => cluster.query<{ n: number; attempt: number }>('SELECT n, attempt FROM public.sink_rows WHERE n = $1 ORDER BY attempt', [n]);
const call = async (payload: unknown) => (await cluster.query<{ r: any }>("SELECT node_worker.call('sink', $1::jsonb) AS r", [JSON.stringify(payload)]))[0].r;
const sqlError = (client: pg.Client | Cluster, sql: string, params: unknown[] = []) =>
  (client instanceof Cluster ? client.query(sql, params) : client.query(sql, params)).then(
    () => null,
    (e) => e,
  );

beforeAll(async () => {
  cluster = await Cluster.create({ settings: { 'node_worker.jobs_keep_done_s': 3600 } });
  await cluster.deployFile('jobs-sink.ts');
  await cluster.start();
  await cluster.query('CREATE TABLE public.sink_rows (seq bigserial, n int NOT NULL, attempt int NOT NULL, queue text NOT NULL)');
  await cluster.query('CREATE TABLE public.async_runs (n int NOT NULL, attempt int NOT NULL, pid int NOT NULL)');
  await cluster.query('CREATE ROLE sink_callers NOLOGIN');
  await cluster.query('CREATE ROLE carol LOGIN IN ROLE sink_callers');
  await cluster.query('CREATE ROLE mallory LOGIN');
  // the worker waits for the extension before it subscribes
  await cluster.query('CREATE EXTENSION pg_node_worker');
  await cluster.waitForLog(/sink: sink ready/, 20000);
}, 90000);
afterAll(async () => cluster?.destroy());

describe('enqueue and synchronous handlers', () => {
  it('a job exists only if its transaction commits (savepoints too), and runs once', async () => {
    const client = await cluster.client();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT node_worker.enqueue('sink', '{"n": 1}')`);
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await client.query(`SELECT node_worker.enqueue('sink', '{"n": 2}')`);
      await client.query('SAVEPOINT s');
      await client.query(`SELECT node_worker.enqueue('sink', '{"n": 3}')`);
      await client.query('ROLLBACK TO SAVEPOINT s');
      const { rows: r } = await client.query(`SELECT node_worker.enqueue('sink', '{"n": 4}') AS id`);
      await client.query('COMMIT');
      const done = await waitState(r[0].id, 'done');
      expect(done).toMatchObject({ queue: 'sink', attempts: 1, last_error: null, payload: { n: 4 } });
    } finally {
      await client.end();
    }
    // n=2 committed in the same transaction as n=4
    await waitFor('n=2 to run', async () => (await rows(2)).length === 1);
    expect(await rows(4)).toEqual([{ n: 4, attempt: 1 }]);
    expect(await rows(1)).toEqual([]);
    expect(await rows(3)).toEqual([]);
    const jobs = await cluster.query<{ n: string }>("SELECT payload->>'n' AS n FROM node_worker.jobs WHERE queue = 'sink' AND (payload->>'n')::int <= 4 ORDER BY 1");
    expect(jobs.map((j) => j.n)).toEqual(['2', '4']);
  });

  it('ctx.enqueue joins ctx.transaction: rolled back with it, committed on its own outside', async () => {
    const id = await call({ op: 'enqueue-rollback', n: 50 });
    expect(id).toMatch(/^\d+$/);
    await waitState(id, 'done');
    expect(await rows(51)).toEqual([{ n: 51, attempt: 1 }]);
    expect(await rows(50)).toEqual([]);
    expect((await cluster.query("SELECT 1 FROM node_worker.jobs WHERE payload = '{\"n\": 50}'")).length).toBe(0);
  });

  it('a throwing handler rolls back its effects and is retried with backoff; exhausted, failed with the last error', async () => {
    const ok = await enqueue('sink', { n: 10, throwUntil: 2 }, ', max_attempts => 5');
    const bad = await enqueue('sink', { n: 11, throwUntil: 99 }, ', max_attempts => 3');
    const str = await enqueue('sink', { n: 12, throwString: true }, ', max_attempts => 1');
    expect(await waitState(ok, 'done')).toMatchObject({ attempts: 3, last_error: 'Error: boom 10 attempt 2' });
    expect(await rows(10)).toEqual([{ n: 10, attempt: 3 }]);
    expect(await waitState(bad, 'failed')).toMatchObject({ attempts: 3, last_error: 'Error: boom 11 attempt 3' });
    expect(await rows(11)).toEqual([]);
    expect(await waitState(str, 'failed')).toMatchObject({ attempts: 1, last_error: 'plain 12' });
    expect(await rows(12)).toEqual([]);
  });

  it('a failed attempt waits for its backoff; retry() runs it now, cancel() removes a job', async () => {
    const id = await enqueue('sink.patient', { n: 20, throwUntil: 1 });
    const waiting = await waitFor('the first attempt to fail', async () => {
      const j = await job(id);
      return j?.attempts === 1 && j.state === 'pending' ? j : null;
    });
    expect(waiting.last_error).toBe('Error: boom 20 attempt 1');
    // a backoff of a minute: it is not due before then
    const [{ due }] = await cluster.query<{ due: boolean }>('SELECT run_at > now() + interval \'30 s\' AS due FROM node_worker.jobs WHERE id = $1', [id]);
    expect(due).toBe(true);
    expect((await cluster.query('SELECT node_worker.retry($1) AS r', [id]))[0].r).toBe(true);
    expect(await waitState(id, 'done')).toMatchObject({ attempts: 2 });
    expect(await rows(20)).toEqual([{ n: 20, attempt: 2 }]);
    expect((await cluster.query('SELECT node_worker.retry($1) AS r', [id]))[0].r).toBe(false);

    const later = await enqueue('sink.nobody', { n: 21 });
    expect((await cluster.query('SELECT node_worker.cancel($1) AS r', [later]))[0].r).toBe(true);
    expect(await job(later)).toBeUndefined();
    expect((await cluster.query('SELECT node_worker.cancel($1) AS r', [later]))[0].r).toBe(false);
    expect((await cluster.query('SELECT node_worker.cancel(-1) AS r'))[0].r).toBe(false);
  });

  it('a synchronous handler that returns a promise is refused: TypeError, nothing committed, retried, then failed', async () => {
    const id = await enqueue('sink', { n: 13, promise: true }, ', max_attempts => 2');
    const failed = await waitState(id, 'failed');
    expect(failed.attempts).toBe(2);
    expect(failed.last_error).toMatch(/^TypeError: a job handler that is not declared async returned a promise/);
    expect(await rows(13)).toEqual([]);
  });

  it('a future run_at wakes the worker on time', async () => {
    const [{ id }] = await cluster.query<{ id: string }>(`SELECT node_worker.enqueue('sink', '{"n": 30}', now() + interval '1.5 s') AS id`);
    expect((await job(id))?.state).toBe('pending');
    await waitState(id, 'done', 20000);
    const [{ late }] = await cluster.query<{ late: boolean }>('SELECT finished_at >= run_at AS late FROM node_worker.jobs WHERE id = $1', [id]);
    expect(late).toBe(true);
  });
  it('among jobs due together, a higher priority runs first', async () => {
    const client = await cluster.client();
    try {
      await client.query('BEGIN');
      for (const [n, priority] of [[80, 0], [81, 5], [82, 1], [83, -2]])
        await client.query(`SELECT node_worker.enqueue('sink', jsonb_build_object('n', $1::int), now() + interval '1 s', priority => $2)`, [n, priority]);
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    await waitFor('the four jobs to run', async () => (await cluster.query('SELECT 1 FROM public.sink_rows WHERE n BETWEEN 80 AND 83')).length === 4, 20000);
    const order = await cluster.query<{ n: number }>('SELECT n FROM public.sink_rows WHERE n BETWEEN 80 AND 83 ORDER BY seq');
    expect(order.map((r) => r.n)).toEqual([81, 82, 80, 83]);
  });
});

describe('job_key', () => {
  it('replaces a pending job with the same key in the same queue; not a done one, not another queue', async () => {
    const a = await enqueue('sink.nobody', { n: 1 }, ', job_key => $3', ['k1']);
    const b = await enqueue('sink.nobody', { n: 2 }, ', job_key => $3, priority => 5', ['k1']);
    expect(b).toBe(a);
    const other = await enqueue('sink.other', { n: 3 }, ', job_key => $3', ['k1']);
    expect(other).not.toBe(a);
    const pending = await cluster.query<JobRow & { priority: number }>("SELECT * FROM node_worker.jobs WHERE key = 'k1' ORDER BY id");
    expect(pending.map((j) => [j.queue, j.payload, j.priority])).toEqual([
      ['sink.nobody', { n: 2 }, 5],
      ['sink.other', { n: 3 }, 0],
    ]);

    // a consumed queue: a job due in an hour is replaced by one due now, which runs; then a new one
    const first = await enqueue('sink', { n: 40 }, ", now() + interval '1 hour', job_key => $3", ['k2']);
    const second = await enqueue('sink', { n: 41 }, ', job_key => $3', ['k2']);
    expect(second).toBe(first);
    await waitState(first, 'done');
    expect(await rows(40)).toEqual([]);
    expect(await rows(41)).toEqual([{ n: 41, attempt: 1 }]);
    const third = await enqueue('sink', { n: 42 }, ', job_key => $3', ['k2']);
    expect(third).not.toBe(first);
    await waitState(third, 'done');
    await cluster.query("DELETE FROM node_worker.job_store WHERE queue IN ('sink.nobody', 'sink.other')");
  });
});

describe('async handlers', () => {
  it('run after the claim commits; a rejection is retried', async () => {
    const id = await enqueue('sink.async', { n: 60, throwUntil: 1 });
    expect(await waitState(id, 'done')).toMatchObject({ attempts: 2, last_error: 'Error: async boom 60' });
    const runs = await cluster.query<{ attempt: number }>('SELECT attempt FROM public.async_runs WHERE n = 60 ORDER BY attempt');
    expect(runs.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('at least once: a process that dies mid-handler leaves the job to run again when its lease expires', async () => {
    const before = await cluster.waitForWorker('sink');
    const id = await enqueue('sink.async', { n: 61, exitFirst: true });
    const done = await waitState(id, 'done', 30000);
    expect(done.attempts).toBe(2);
    const runs = await cluster.query<{ attempt: number; pid: number }>('SELECT attempt, pid FROM public.async_runs WHERE n = 61 ORDER BY attempt');
    expect(runs.map((r) => r.attempt)).toEqual([1, 2]);
    // the second run was another process: the first left without completing
    expect(runs[0].pid).toBe(before);
    expect(runs[1].pid).not.toBe(before);
    expect(await cluster.waitForWorker('sink')).toBe(runs[1].pid);
  });
});

describe('an email outbox with fetch', () => {
  it('POSTs each mail; an error answer is retried with the same idempotency key until it succeeds', async () => {
    const seen: { key: string | undefined; body: string; status: number }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        // the service fails the first request for each mail
        const status = seen.some((s) => s.key === req.headers['idempotency-key']) ? 200 : 503;
        seen.push({ key: req.headers['idempotency-key'] as string | undefined, body, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/send`;
      const ids = [await enqueue('sink.mail', { url, to: 'ada@example.com' }), await enqueue('sink.mail', { url, to: 'bob@example.com' })];
      for (const id of ids) expect(await waitState(id, 'done')).toMatchObject({ attempts: 2, last_error: 'Error: mail service answered 503' });
      expect(seen).toHaveLength(4);
      for (const [i, id] of ids.entries()) {
        const mine = seen.filter((s) => s.key === `mail-${id}`);
        expect(mine.map((s) => s.status)).toEqual([503, 200]);
        expect(JSON.parse(mine[0].body)).toEqual({ to: i === 0 ? 'ada@example.com' : 'bob@example.com' });
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('views', () => {
  it('node_worker.queues counts jobs per state', async () => {
    await enqueue('sink.counted', { n: 1 });
    await enqueue('sink.counted', { n: 2 }, ", now() + interval '1 day'");
    const [q] = await cluster.query("SELECT * FROM node_worker.queues WHERE queue = 'sink.counted'");
    expect(q).toMatchObject({ queue: 'sink.counted', pending: '2', running: '0', done: '0', failed: '0' });
    expect(q.next_run_at).toBeInstanceOf(Date);
    const [s] = await cluster.query("SELECT * FROM node_worker.queues WHERE queue = 'sink'");
    expect(Number(s.done)).toBeGreaterThan(3);
    expect(Number(s.failed)).toBeGreaterThanOrEqual(3);
    await cluster.query("DELETE FROM node_worker.job_store WHERE queue = 'sink.counted'");
  });
});

describe('privileges', () => {
  it("the worker's callers and admins may enqueue, retry, cancel and see its jobs; others get 42501 and see nothing", async () => {
    const id = await enqueue('sink.priv', { n: 1 });
    const carol = await cluster.client('postgres', 'carol');
    const mallory = await cluster.client('postgres', 'mallory');
    try {
      const mine = (await carol.query(`SELECT node_worker.enqueue('sink.priv', '{"n": 2}') AS id`)).rows[0].id;
      expect((await carol.query('SELECT count(*)::int AS n FROM node_worker.jobs WHERE queue = $1', ['sink.priv'])).rows[0].n).toBe(2);
      expect((await carol.query('SELECT node_worker.cancel($1) AS r', [mine])).rows[0].r).toBe(true);

      for (const [sql, params] of [
        [`SELECT node_worker.enqueue('sink', '{"n": 3}')`, []],
        [`SELECT node_worker.enqueue('nosuchworker', '{"n": 3}')`, []],
        ['SELECT node_worker.retry($1)', [id]],
        ['SELECT node_worker.cancel($1)', [id]],
        ['SELECT * FROM node_worker.job_store', []],
        ['SELECT node_worker._job_insert($1, NULL, now(), NULL, 1, 0)', ['sink']],
        [`SELECT * FROM node_worker._jobs_claim('sink', 1, NULL)`, []],
        [`SELECT node_worker._jobs_complete('sink', '{}', '{}', true)`, []],
      ] as const) {
        const e = await sqlError(mallory, sql, [...params]);
        expect(e?.code, sql).toBe('42501');
      }
      expect((await mallory.query('SELECT count(*)::int AS n FROM node_worker.jobs')).rows[0].n).toBe(0);
      expect((await mallory.query('SELECT count(*)::int AS n FROM node_worker.queues')).rows[0].n).toBe(0);
      // a session, even a superuser's, cannot claim a worker's jobs: only its processes can
      expect((await sqlError(cluster, `SELECT * FROM node_worker._jobs_claim('sink', 1, NULL)`))?.code).toBe('42501');

      await cluster.query('GRANT node_worker_admin TO mallory');
      expect((await mallory.query('SELECT node_worker.cancel($1) AS r', [id])).rows[0].r).toBe(true);
    } finally {
      await carol.end();
      await mallory.end();
    }
  });
});

describe('bad input', () => {
  it('an invalid queue name, max_attempts < 1 or an empty key is 22023; a null queue 22004', async () => {
    for (const q of ['', 'bad name', '1sink', 'sink.', '.sink', 'sink.a.b', 'sink.' + 'x'.repeat(64), 'x'.repeat(64), 'sink.é'])
      expect((await sqlError(cluster, "SELECT node_worker.enqueue($1, '{}')", [q]))?.code, q).toBe('22023');
    expect((await sqlError(cluster, "SELECT node_worker.enqueue('sink', '{}', max_attempts => 0)"))?.code).toBe('22023');
    expect((await sqlError(cluster, "SELECT node_worker.enqueue('sink', '{}', job_key => '')"))?.code).toBe('22023');
    expect((await sqlError(cluster, "SELECT node_worker.enqueue(NULL, '{}')"))?.code).toBe('22004');
    expect(await cluster.query("SELECT 1 FROM node_worker.jobs WHERE queue NOT LIKE 'sink%'")).toEqual([]);
  });

  it("ctx.jobs refuses another worker's queue (42501), a bad name (22023) and bad options (TypeError)", async () => {
    expect(await call({ op: 'jobs', queue: 'other' })).toMatchObject({ name: 'PgError', code: '42501' });
    expect(await call({ op: 'jobs', queue: 'sink..x' })).toMatchObject({ name: 'PgError', code: '22023' });
    expect(await call({ op: 'jobs', queue: 'sink.t', options: { concurrency: 2 } })).toMatchObject({ name: 'TypeError' });
    expect(await call({ op: 'jobs', queue: 'sink.t', options: { batch: 0 } })).toMatchObject({ name: 'TypeError' });
    expect(await call({ op: 'jobs', queue: 'sink.t' })).toBe('ok');
    expect(await call({ op: 'enqueue', queue: 'bad name', n: 1 })).toMatchObject({ name: 'PgError', code: '22023' });
  });

  it('PREPARE TRANSACTION is refused after an enqueue', async () => {
    const e = await sqlError(cluster, `BEGIN; SELECT node_worker.enqueue('sink.nobody', '{}'); PREPARE TRANSACTION 'x'`);
    expect(e?.code).toBe('0A000');
  });
});

describe('upgrade', () => {
  it('ALTER EXTENSION UPDATE from 0.6 adds the queues', async () => {
    await cluster.query('CREATE DATABASE upgraded');
    await cluster.query("CREATE EXTENSION pg_node_worker VERSION '0.6'", [], 'upgraded');
    await cluster.query('ALTER EXTENSION pg_node_worker UPDATE', [], 'upgraded');
    expect(await cluster.query("SELECT extversion FROM pg_extension WHERE extname = 'pg_node_worker'", [], 'upgraded')).toEqual([{ extversion: '0.8' }]);
    expect(await cluster.query('SELECT count(*)::int AS n FROM node_worker.jobs', [], 'upgraded')).toEqual([{ n: 0 }]);
  });
});

describe('pruning', () => {
  it('done jobs are pruned once jobs_keep_done_s passed, also on a queue that went idle, past the 10,000-row step', async () => {
    await cluster.query('ALTER SYSTEM SET node_worker.jobs_keep_done_s = 1');
    await cluster.query('SELECT pg_reload_conf()');
    try {
      const [{ first }] = await cluster.query<{ first: string }>(
        "SELECT min(node_worker.enqueue('sink', jsonb_build_object('n', 100000 + i)))::text AS first FROM generate_series(1, 25000) i",
      );
      await waitFor('25,000 jobs to be done', async () =>
        (await cluster.query<{ n: number }>("SELECT count(*)::int AS n FROM node_worker.job_store WHERE queue = 'sink' AND id >= $1 AND state <> 'done'", [first]))[0].n === 0, 60000);
      // nothing is enqueued from here on: the idle consumer prunes them by itself, 10,000 at a time
      await waitFor('the done jobs to be pruned', async () =>
        (await cluster.query<{ n: number }>("SELECT count(*)::int AS n FROM node_worker.job_store WHERE queue = 'sink' AND id >= $1", [first]))[0].n === 0, 30000);
      expect((await cluster.query<{ n: number }>('SELECT count(*)::int AS n FROM public.sink_rows WHERE n > 100000'))[0].n).toBe(25000);
    } finally {
      await cluster.query('ALTER SYSTEM RESET node_worker.jobs_keep_done_s');
      await cluster.query('SELECT pg_reload_conf()');
    }
  });
});
