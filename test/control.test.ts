/**
 * The control surface: the node_worker.workers view, launch /
 * stop / restart from SQL and from a worker, the supervisor's backoff and
 * failed state, and who may use them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, sleep, waitFor } from './helpers/cluster';

let cluster: Cluster;

type WorkerRow = {
  name: string;
  kind: string;
  pid: number | null;
  state: string;
  database: string;
  role: string | null;
  restarts: number;
  last_error: string | null;
  last_sqlstate: string | null;
  bundle_sha256: string | null;
  deployed_at: Date | null;
  started_at: Date | null;
};

const rows = async (name: string) =>
  cluster.query<WorkerRow>('SELECT * FROM node_worker.workers WHERE name = $1 ORDER BY kind DESC, pid', [name]);

const error = (sql: string, params: unknown[] = []) => cluster.query(sql, params).then(() => null, (e) => e);

beforeAll(async () => {
  cluster = await Cluster.create({ settings: { 'node_worker.max_failures': 3, max_worker_processes: 12 } });
  await cluster.deployTemplate('idle', 'steady');
  for (const w of ['job', 'leader', 'crasher', 'ondemand', 'limited', 'spawner']) await cluster.deployFile(`control-${w}.ts`);
  await cluster.start();
  await cluster.query('CREATE EXTENSION pg_node_worker');
}, 60000);
afterAll(async () => cluster?.destroy());

describe('node_worker.workers', () => {
  it('shows a running static worker with its pid, state and bundle', async () => {
    const pid = await cluster.waitForWorker('steady');
    const [row] = await waitFor('steady running', async () => {
      const r = await rows('steady');
      return r[0]?.state === 'running' ? r : null;
    });
    expect(row).toMatchObject({ name: 'steady', kind: 'static', pid, state: 'running', database: 'postgres', role: null, restarts: 0 });
    expect(row.bundle_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(row.deployed_at).toBeInstanceOf(Date);
    expect(row.started_at).toBeInstanceOf(Date);
  });

  it('lists a worker deployed after the server started as stopped', async () => {
    await cluster.deployTemplate('idle', 'late');
    const [row] = await rows('late');
    expect(row).toMatchObject({ name: 'late', kind: 'static', pid: null, state: 'stopped' });
  });
});

describe('launch', () => {
  it('starts a dynamic worker with args and returns its pid once it runs', async () => {
    const [{ pid }] = await cluster.query<{ pid: number }>(`SELECT node_worker.launch('job', '{"n": 7, "sleepMs": 1500}') AS pid`);
    expect(pid).toBeGreaterThan(0);
    const [act] = await cluster.query('SELECT backend_type, application_name FROM pg_stat_activity WHERE pid = $1', [pid]);
    expect(act).toEqual({ backend_type: 'node_worker', application_name: 'job' });
    const run = await waitFor('the job to record its args', async () =>
      (await cluster.query<{ args: unknown }>('SELECT args FROM job_runs WHERE pid = $1', [pid]))[0]);
    expect(run.args).toEqual({ n: 7, sleepMs: 1500 });
    const dyn = (await rows('job')).find((r) => r.pid === pid);
    expect(dyn).toMatchObject({ kind: 'dynamic', state: 'running' });
  });

  it('refuses an unknown name with 42704 and a hint listing deployed names', async () => {
    const e = await error("SELECT node_worker.launch('nope')");
    expect(e).toMatchObject({ code: '42704', message: 'node worker "nope" is not deployed' });
    expect(e.hint).toMatch(/Deployed workers: .*job.*steady/);
  });

  it('refuses when no background worker slot is free, with a hint about max_worker_processes', async () => {
    // max_worker_processes = 12: fill what is left with long-running jobs
    const pids: number[] = [];
    let e: any = null;
    for (let i = 0; i < 14 && !e; i++) {
      e = await cluster.query<{ pid: number }>(`SELECT node_worker.launch('job', '{"sleepMs": 60000}') AS pid`).then(
        (r) => (pids.push(r[0].pid), null),
        (err) => err,
      );
    }
    expect(e).toMatchObject({ code: '53400' });
    expect(e.hint).toMatch(/max_worker_processes/);
    expect(await cluster.query("SELECT node_worker.stop('job') AS stopped")).toEqual([{ stopped: true }]);
    await waitFor('jobs gone', async () => (await rows('job')).every((r) => r.pid === null));
  });

  it('lets a worker launch others and await their exit (ctx.launch)', async () => {
    await cluster.query("SELECT node_worker.restart('leader')");
    await cluster.waitForLog(/leader: children exited with 0,0/, 15000);
    await cluster.waitForLog(/leader: launch of nope: 42704 node worker "nope" is not deployed/);
  });
});

describe('on-demand workers (autostart: false) and the database of a launch', () => {
  const runs = (database: string) =>
    cluster.query<{ pid: number; args: unknown; db: string }>('SELECT * FROM ondemand_runs ORDER BY pid', [], database).catch(() => []);

  beforeAll(async () => {
    await cluster.query('CREATE DATABASE other');
    await cluster.query('CREATE DATABASE closed WITH ALLOW_CONNECTIONS false');
    await cluster.query('CREATE DATABASE private');
    await cluster.query('REVOKE CONNECT ON DATABASE private FROM PUBLIC');
    await cluster.query('CREATE ROLE limited_role LOGIN');
  });

  it('does not start with the server, and shows as deployed', async () => {
    expect(cluster.log()).toMatch(/pg_node_worker: deployed worker "ondemand" \(database "postgres", bundle .*\) starts only when launched/);
    expect(cluster.log()).not.toMatch(/registered worker "ondemand"/);
    expect(await rows('ondemand')).toMatchObject([{ name: 'ondemand', kind: 'dynamic', pid: null, state: 'deployed', database: 'postgres' }]);
    expect(await runs('postgres')).toEqual([]);
  });

  it('restart() of one never launched is an error that says to launch it', async () => {
    const e = await error("SELECT node_worker.restart('ondemand')");
    expect(e).toMatchObject({ code: '55000', message: 'node worker "ondemand" starts only when launched and has not been launched' });
    expect(e.hint).toMatch(/node_worker\.launch\('ondemand', args\)/);
  });

  it('runs once per launch, in the deployed database or the one launch() names', async () => {
    const [{ p }] = await cluster.query<{ p: number }>(`SELECT node_worker.launch('ondemand', '{"n": 1}') AS p`);
    await waitFor('the run in postgres', async () => ((await runs('postgres')).length === 1 ? true : null));
    expect(await runs('postgres')).toEqual([{ pid: p, args: { n: 1 }, db: 'postgres' }]);

    const [{ q }] = await cluster.query<{ q: number }>(`SELECT node_worker.launch('ondemand', '{"n": 2}', database => 'other') AS q`);
    await waitFor('the run in other', async () => ((await runs('other')).length === 1 ? true : null));
    expect(await runs('other')).toEqual([{ pid: q, args: { n: 2 }, db: 'other' }]);
    const shown = await waitFor('both runs finished', async () => {
      const r = await rows('ondemand');
      return r.length === 2 && r.every((x) => x.state === 'stopped') ? r : null;
    });
    expect(shown.map((r) => [r.kind, r.database]).sort()).toEqual([['dynamic', 'other'], ['dynamic', 'postgres']]);
  });

  it('restart() of a launched one runs its first launch again, with its arguments and database', async () => {
    const before = (await runs('postgres')).length + (await runs('other')).length;
    await cluster.query("SELECT node_worker.restart('ondemand')");
    await waitFor('a third run', async () => ((await runs('postgres')).length + (await runs('other')).length === before + 1 ? true : null));
  });

  it('ctx.launch(name, args, { database }) picks the database from a worker', async () => {
    const from = cluster.log().length;
    await cluster.query(`SELECT node_worker.launch('spawner', '{"database": "other"}')`);
    await cluster.waitForLog(/spawner: child in other exited with 0/, 15000, from);
    expect((await runs('other')).some((r) => (r.args as { from?: string }).from === 'spawner')).toBe(true);
    await cluster.query(`SELECT node_worker.launch('spawner', '{"database": "closed"}')`);
    await cluster.waitForLog(/spawner: launch in closed failed: 55000 database "closed" does not allow connections/, 15000, from);
  });

  it('refuses a database that does not exist, does not allow connections, or that the role may not connect to', async () => {
    const launch = (name: string, database: string) => error('SELECT node_worker.launch($1, NULL, database => $2)', [name, database]);
    const missing = await launch('ondemand', 'nope');
    expect(missing).toMatchObject({ code: '3D000', message: 'database "nope" does not exist' });
    expect(missing.hint).toMatch(/pg_database/);
    const closed = await launch('ondemand', 'closed');
    expect(closed).toMatchObject({ code: '55000', message: 'database "closed" does not allow connections, so node worker "ondemand" cannot run in it' });
    expect(closed.hint).toMatch(/ALLOW_CONNECTIONS/);
    expect(await launch('ondemand', '')).toMatchObject({ code: '42602' });
    expect(await launch('ondemand', 'x'.repeat(64))).toMatchObject({ code: '42602' });
    const denied = await launch('limited', 'private');
    expect(denied).toMatchObject({ code: '42501', message: 'node worker "limited" runs as limited_role, which may not connect to database "private"' });
    expect(denied.hint).toMatch(/GRANT CONNECT/);
    // nothing was started for any of them
    expect((await rows('limited')).map((r) => r.state)).toEqual(['deployed']);
    // the role may connect to other: it runs there
    const from = cluster.log().length;
    await cluster.query("SELECT node_worker.launch('limited', NULL, database => 'other')");
    await cluster.waitForLog(/limited: limited ran in other/, 15000, from);
  });
});

describe('stop and restart', () => {
  it('stops a static worker gracefully and keeps it stopped, restart brings it back with a new pid', async () => {
    const pid = await cluster.waitForWorker('steady');
    const from = cluster.log().length;
    expect(await cluster.query("SELECT node_worker.stop('steady') AS s")).toEqual([{ s: true }]);
    expect(cluster.log().slice(from)).toMatch(/steady: stopping cleanly/);
    expect((await rows('steady'))[0]).toMatchObject({ pid: null, state: 'stopped' });
    await sleep(2500); // longer than its restart interval (1 s): the postmaster must not bring it back
    expect(await cluster.workerPid('steady')).toBeNull();
    expect(await cluster.query("SELECT node_worker.stop('steady') AS s")).toEqual([{ s: false }]);

    const [{ p }] = await cluster.query<{ p: number }>("SELECT node_worker.restart('steady') AS p");
    expect(p).not.toBe(pid);
    expect(await cluster.waitForWorker('steady')).toBe(p);
    const [row] = await waitFor('steady running again', async () => {
      const r = await rows('steady');
      return r[0]?.state === 'running' ? r : null;
    });
    expect(row).toMatchObject({ kind: 'static', pid: p, restarts: 1 });
  });

  it('restart starts a worker deployed after the server started', async () => {
    const [{ p }] = await cluster.query<{ p: number }>("SELECT node_worker.restart('late') AS p");
    expect(await cluster.waitForWorker('late')).toBe(p);
  });

  it('stop of an unknown worker is an error', async () => {
    expect(await error("SELECT node_worker.stop('nope')")).toMatchObject({ code: '42704' });
  });
});

describe('supervisor', () => {
  it('backs off a crash loop and marks the worker failed with its last error', async () => {
    const row = await waitFor('crasher to be failed', async () => {
      const [r] = await rows('crasher');
      return r?.state === 'failed' ? r : null;
    }, 30000, 200);
    expect(row.pid).toBeNull();
    expect(row.last_sqlstate).toBe('42P01');
    expect(row.last_error).toMatch(/relation "no_such_table" does not exist/);
    expect(row.last_error).toMatch(/crasher\.ts:\d+/);
    expect(row.restarts).toBe(2);
    const log = cluster.log();
    expect(log).toMatch(/node worker "crasher" failed 2 times in a row; backing off 1 s before starting/);
    expect(log).toMatch(/node worker "crasher" failed 3 times in a row and is not restarted any more/);
    await sleep(2500);
    expect(await cluster.workerPid('crasher')).toBeNull();
  });
});

describe('permissions', () => {
  beforeAll(async () => {
    await cluster.query('CREATE ROLE app LOGIN');
  });

  it('denies a non-superuser, and allows a member of node_worker_admin', async () => {
    const client = await cluster.client('postgres', 'app');
    try {
      for (const sql of ["SELECT node_worker.launch('job')", "SELECT node_worker.stop('job')", "SELECT node_worker.restart('job')", 'SELECT * FROM node_worker.workers']) {
        const e = await client.query(sql).then(() => null, (err) => err);
        expect(e?.code, sql).toBe('42501');
      }
      await cluster.query('GRANT node_worker_admin TO app');
      const { rows: r } = await client.query<{ pid: number }>(`SELECT node_worker.launch('job', '{"n": 9}') AS pid`);
      expect(r[0].pid).toBeGreaterThan(0);
      const { rows: w } = await client.query("SELECT count(*)::int AS n FROM node_worker.workers WHERE name = 'steady'");
      expect(w).toEqual([{ n: 1 }]);
    } finally {
      await client.end();
    }
  });
});
