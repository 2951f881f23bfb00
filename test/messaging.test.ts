/**
 * node_worker.call() / notify() / wake() against real workers:
 * round trips, concurrency, errors, timeouts, cancel, size limits,
 * transactional delivery and order, a full inbox, a worker restarted with
 * calls in flight, permissions.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, cpuMs, sleep, waitFor } from './helpers/cluster';

let cluster: Cluster;

const call = async (client: pg.Client | Cluster, payload: unknown, timeoutMs = 5000, worker = 'svc') => {
  const sql = 'SELECT node_worker.call($1, $2::jsonb, $3) AS r';
  const params = [worker, JSON.stringify(payload), timeoutMs];
  if (client instanceof Cluster) return (await client.query<{ r: any }>(sql, params))[0].r;
  return (await client.query<{ r: any }>(sql, params)).rows[0].r;
};
const callError = (client: pg.Client | Cluster, payload: unknown, timeoutMs = 5000, worker = 'svc') =>
  call(client, payload, timeoutMs, worker).then(
    () => {
      throw new Error('expected an error');
    },
    (e) => e,
  );

beforeAll(async () => {
  cluster = await Cluster.create({ settings: { 'node_worker.queue_size_kb': 16, 'node_worker.max_message_kb': 8 } });
  for (const w of ['svc', 'napper', 'silent', 'waiter']) await cluster.deployFile(`messaging-${w}.ts`);
  await cluster.start();
  await cluster.query('CREATE EXTENSION pg_node_worker');
  await waitFor('svc to serve calls', async () => (await call(cluster, { op: 'echo', value: 1 }).catch(() => null)) !== null, 20000);
}, 60000);
afterAll(async () => cluster?.destroy());

describe('call()', () => {
  it('round-trips nested JSON, with the caller in meta', async () => {
    const value = { a: [1, { b: null, c: 'é"\\n' }], d: true, e: 1.5, f: { g: [] } };
    const client = await cluster.client();
    try {
      const pid = (await client.query('SELECT pg_backend_pid() AS p')).rows[0].p;
      const r = await call(client, { op: 'echo', value });
      expect(r).toEqual({ got: value, meta: { pid, role: 'postgres', database: 'postgres' } });
    } finally {
      await client.end();
    }
  });

  it('awaits an async handler (a timer), and the handler can run SQL', async () => {
    expect(await call(cluster, { op: 'slow', ms: 150 })).toEqual({ slept: 150 });
    expect(await call(cluster, { op: 'sql', v: 41 })).toBe(42);
  });

  it('serves 8 concurrent sessions x 500 calls, every reply matched to its caller', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => cluster.client()));
    try {
      await Promise.all(
        clients.map(async (c, ci) => {
          for (let i = 0; i < 500; i++) {
            const r = await call(c, { op: 'echo', value: { ci, i } });
            if (r.got.ci !== ci || r.got.i !== i) throw new Error(`client ${ci} call ${i} got ${JSON.stringify(r.got)}`);
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('turns a handler error into an ERROR, with its code as SQLSTATE when valid, else P0001', async () => {
    expect(await callError(cluster, { op: 'fail', n: 1, code: '22023' })).toMatchObject({ code: '22023', message: 'boom 1' });
    expect(await callError(cluster, { op: 'fail', n: 2 })).toMatchObject({ code: 'P0001', message: 'boom 2' });
    expect(await callError(cluster, { op: 'fail', n: 3, code: 'not-a-code' })).toMatchObject({ code: 'P0001', message: 'boom 3' });
    expect(await call(cluster, { op: 'echo', value: 'still serving' })).toMatchObject({ got: 'still serving' });
  });

  it('times out with 57014, and the late reply is dropped safely', async () => {
    const t0 = performance.now();
    const e = await callError(cluster, { op: 'slow', ms: 800 }, 200);
    expect(e.code).toBe('57014');
    expect(e.message).toMatch(/call to node worker "svc" timed out after 200 ms/);
    expect(performance.now() - t0).toBeLessThan(700);
    await sleep(800);
    expect(await call(cluster, { op: 'echo', value: 'after' })).toMatchObject({ got: 'after' });
  });

  it('is cancelled by pg_cancel_backend mid-call; the worker survives', async () => {
    const victim = await cluster.client();
    try {
      const pid = (await victim.query('SELECT pg_backend_pid() AS p')).rows[0].p;
      const pending = callError(victim, { op: 'slow', ms: 1500 }, 10000);
      await sleep(200);
      await cluster.query('SELECT pg_cancel_backend($1)', [pid]);
      expect((await pending).code).toBe('57014');
      expect(await call(victim, { op: 'echo', value: 'next' })).toMatchObject({ got: 'next' });
    } finally {
      await victim.end();
    }
  });

  it('refuses an oversize payload and an oversize result with 54000, truncating nothing', async () => {
    const e = await callError(cluster, { op: 'echo', value: 'y'.repeat(9000) });
    expect(e.code).toBe('54000');
    expect(e.message).toMatch(/call payload is too large/);
    const r = await callError(cluster, { op: 'big', n: 9000 });
    expect(r.code).toBe('54000');
    expect(await call(cluster, { op: 'big', n: 100 })).toBe('x'.repeat(100));
  });

  it('reports a worker without a handler, one not running and one unknown, by name', async () => {
    expect(await callError(cluster, {}, 2000, 'silent')).toMatchObject({ code: '55000', message: 'node worker "silent" has no call handler (ctx.onCall)' });
    expect(await callError(cluster, {}, 2000, 'nope')).toMatchObject({ code: '42704', message: 'node worker "nope" does not exist' });
    await cluster.query("SELECT node_worker.stop('silent')");
    expect(await callError(cluster, {}, 2000, 'silent')).toMatchObject({ code: '55000', message: 'node worker "silent" is not running' });
  });

  it('fails calls in flight when the worker restarts (nothing hangs), and serves again after', async () => {
    const a = await cluster.client();
    try {
      const pending = callError(a, { op: 'slow', ms: 5000 }, 20000);
      await sleep(200);
      const t0 = performance.now();
      await cluster.query("SELECT node_worker.restart('svc')");
      const e = await pending;
      expect(e.message).toMatch(/node worker "svc" exited before it replied/);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(await call(a, { op: 'echo', value: 'back' })).toMatchObject({ got: 'back' });
    } finally {
      await a.end();
    }
  });
});

describe('notify()', () => {
  const got = async () => (await cluster.query<{ payload: any }>('SELECT payload FROM got ORDER BY seq')).map((r) => r.payload);

  it('delivers on commit only: not on rollback, not from a rolled back savepoint', async () => {
    await cluster.query('TRUNCATE got');
    const c = await cluster.client();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT node_worker.notify('svc', '{"k": "committed-1"}')`);
      await c.query('SAVEPOINT s');
      await c.query(`SELECT node_worker.notify('svc', '{"k": "in-rolled-back-savepoint"}')`);
      await c.query('ROLLBACK TO SAVEPOINT s');
      await c.query('SAVEPOINT s2');
      await c.query(`SELECT node_worker.notify('svc', '{"k": "in-released-savepoint"}')`);
      await c.query('RELEASE SAVEPOINT s2');
      await sleep(300);
      expect(await got()).toEqual([]); // nothing before commit
      await c.query('COMMIT');
      await c.query('BEGIN');
      await c.query(`SELECT node_worker.notify('svc', '{"k": "rolled-back"}')`);
      await c.query('ROLLBACK');
      await c.query(`SELECT node_worker.notify('svc', '{"k": "autocommit"}')`);
    } finally {
      await c.end();
    }
    await waitFor('3 messages', async () => (await got()).length >= 3);
    await sleep(300);
    expect(await got()).toEqual([{ k: 'committed-1' }, { k: 'in-released-savepoint' }, { k: 'autocommit' }]);
  });

  it('keeps every session\'s commit order, across 4 concurrent sessions', async () => {
    await cluster.query('TRUNCATE got');
    const clients = await Promise.all(Array.from({ length: 4 }, () => cluster.client()));
    try {
      await Promise.all(
        clients.map(async (c, ci) => {
          for (let i = 0; i < 50; i++) {
            // this cluster's inbox is small (16 kB): when the worker lags, notify() refuses up
            // front with 53400 and the documented answer is to retry
            for (;;) {
              await c.query('BEGIN');
              const full = await c.query("SELECT node_worker.notify('svc', $1::jsonb)", [JSON.stringify({ ci, i })]).then(
                () => false,
                (e) => {
                  if (e.code !== '53400') throw e;
                  return true;
                },
              );
              if (!full) break;
              await c.query('ROLLBACK');
              await sleep(20);
            }
            await c.query('COMMIT');
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    const all = await waitFor('200 messages', async () => {
      const g = await got();
      return g.length >= 200 ? g : null;
    });
    expect(all.length).toBe(200);
    for (let ci = 0; ci < 4; ci++) expect(all.filter((m: any) => m.ci === ci).map((m: any) => m.i)).toEqual([...Array(50).keys()]);
  });

  it('refuses up front with 53400 when the inbox is full, and delivers what was accepted', async () => {
    await cluster.query('TRUNCATE got');
    const blocker = await cluster.client();
    const sender = await cluster.client();
    try {
      // keep the worker busy in JS so that it does not empty its inbox
      const blocked = call(blocker, { op: 'block', ms: 2500 }, 10000);
      await sleep(300);
      const big = 'z'.repeat(3000);
      let accepted = 0;
      let e: any = null;
      while (!e && accepted < 20) {
        e = await sender.query("SELECT node_worker.notify('svc', $1::jsonb)", [JSON.stringify({ n: accepted, big })]).then(() => null, (err) => err);
        if (!e) accepted++;
      }
      expect(e).toMatchObject({ code: '53400' });
      expect(e.message).toMatch(/the inbox of node worker "svc" is full/);
      expect(accepted).toBeGreaterThan(0);
      expect(await blocked).toBe('unblocked');
      await waitFor('accepted messages delivered', async () => (await got()).length === accepted);
    } finally {
      await blocker.end();
      await sender.end();
    }
  });
});

describe('wake()', () => {
  it("ends a pending ctx.sleep early with 'wake' (and a timeout says 'timeout')", async () => {
    const from = cluster.log().length;
    await cluster.query("SELECT node_worker.wake('napper')");
    await cluster.waitForLog(/napper: sleep ended: wake/, 5000, from);
    await cluster.waitForLog(/napper: worked/, 10000, from);
  });

  for (const [what, send] of [
    ['wake', "SELECT node_worker.wake('napper')"],
    ['reload', 'SELECT pg_reload_conf()'],
  ] as const)
    it(`a ${what} while the worker is busy between sleeps ends its next sleep at once, as a latch stays set`, async () => {
      const from = cluster.log().length;
      await cluster.query("SELECT node_worker.wake('napper')");
      await cluster.waitForLog(/napper: working/, 5000, from);
      const working = cluster.log().length;
      await cluster.query(send);
      await cluster.waitForLog(/napper: worked/, 10000, from);
      // the next sleep (30 s) ends at once with what came while it worked; well before 30 s
      await cluster.waitForLog(new RegExp(`napper: sleep ended: ${what}`), 10000, working);
      // the kept event ended one sleep: the one after it sleeps on
      const after = cluster.log().length;
      await new Promise((r) => setTimeout(r, 1000));
      expect(cluster.log().slice(after)).not.toMatch(/napper: sleep ended/);
    });
});

describe('a worker that only waits for calls and notifications', () => {
  it('sleeps between them (no CPU while idle, after a GC too) and wakes for each', async () => {
    const pid = await cluster.waitForWorker('waiter');
    expect(await call(cluster, { churn: 20000 }, 10000, 'waiter')).toEqual({ kept: 20000 * 1000 });
    await cluster.query(`SELECT node_worker.notify('waiter', '{"n": 1}')`);
    await waitFor('the first notification', async () => (await cluster.query('SELECT count(*)::int AS n FROM waiter_got'))[0].n === 1);
    await sleep(300);
    const before = cpuMs(pid);
    await sleep(2000);
    // a worker that polls nothing sleeps in its wait (a few ms); a spinning one uses ~2000 ms
    expect(cpuMs(pid) - before).toBeLessThan(300);
    await cluster.query(`SELECT node_worker.notify('waiter', '{"n": 2}')`);
    await waitFor('the second notification', async () => (await cluster.query('SELECT count(*)::int AS n FROM waiter_got'))[0].n === 2);
    expect(await call(cluster, {}, 5000, 'waiter')).toEqual({ kept: 0 });
    expect(await cluster.waitForWorker('waiter')).toBe(pid);
  });
});

describe('permissions', () => {
  beforeAll(async () => {
    await cluster.query('CREATE ROLE svc_callers NOLOGIN');
    await cluster.query('CREATE ROLE friend LOGIN IN ROLE svc_callers');
    await cluster.query('CREATE ROLE stranger LOGIN');
  });

  it('lets members of the worker\'s callers roles in, and refuses others with 42501', async () => {
    const friend = await cluster.client('postgres', 'friend');
    const stranger = await cluster.client('postgres', 'stranger');
    try {
      expect(await call(friend, { op: 'echo', value: 'hi' })).toMatchObject({ got: 'hi', meta: { role: 'friend' } });
      await friend.query(`SELECT node_worker.notify('svc', '{"from": "friend"}')`);
      for (const sql of [`SELECT node_worker.call('svc', '{}')`, `SELECT node_worker.notify('svc', '{}')`, "SELECT node_worker.wake('svc')"]) {
        const e = await stranger.query(sql).then(() => null, (err) => err);
        expect(e?.code, sql).toBe('42501');
      }
      // napper has no callers list: admins only
      expect((await friend.query("SELECT node_worker.wake('napper')").then(() => null, (err) => err))?.code).toBe('42501');
      await cluster.query('GRANT node_worker_admin TO stranger');
      await stranger.query("SELECT node_worker.wake('napper')");
    } finally {
      await friend.end();
      await stranger.end();
    }
  });
});

describe('an npm package called from SQL', () => {
  it('bundles the package from the worker folder and serves it through call()', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const pkg = path.join(cluster.workersDir, 'node_modules', 'tiny-slug');
    fs.mkdirSync(pkg, { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'tiny-slug', version: '1.0.0', main: 'index.js' }));
    fs.writeFileSync(path.join(pkg, 'index.js'), "module.exports = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');");
    // written from a string on purpose: the point is a package bundled from the worker's folder
    await cluster.deploySource(
      'slugs',
      `import { defineWorker } from 'pg-node-worker';
       import slug from 'tiny-slug';
       export default defineWorker({ searchPath: ['public'], name: 'slugs', async main(ctx) {
         ctx.onCall((p: any) => slug(p.title));
         while (!ctx.signal.aborted) await ctx.sleep(60000);
       } });`,
    );
    await cluster.query("SELECT node_worker.restart('slugs')");
    expect(await call(cluster, { title: 'Hello, World!' }, 5000, 'slugs')).toBe('hello-world');
  });
});
