/**
 * The attacks of an adversarial pass against the server side, each reproduced as it was found,
 * on real clusters with real roles: a worker's caller, a role with no grants, a database owner,
 * a CREATEROLE user. Each test asserts what must hold afterwards: no cluster reset, no privilege
 * gained, no message delivered to the wrong worker or lost without a trace.
 * (The CLI's side is test/security-cli.test.ts.)
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, sleep, waitFor } from './helpers/cluster';
import { ABORT, exitOf, RESET } from './helpers/faults';

let cluster: Cluster;
let postmasterStart: string;

async function sqlError(c: pg.Client, sql: string, params: unknown[] = []): Promise<{ code: string; message: string }> {
  try {
    await c.query(sql, params);
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error(`expected ${sql} to fail`);
}

async function as(role: string, database = 'postgres'): Promise<pg.Client> {
  return cluster.client(database, role);
}

/** Rows of got (what sec_svc handled). */
async function handled(): Promise<{ n: number; role: string; redelivered: boolean }[]> {
  return cluster.query('SELECT n, role, redelivered FROM got ORDER BY seq');
}

async function noReset(): Promise<void> {
  const [{ t }] = await cluster.query<{ t: string }>('SELECT pg_postmaster_start_time()::text AS t');
  expect(t).toBe(postmasterStart);
  expect(cluster.log()).not.toMatch(RESET);
}

const pad = (bytes: number) => 'x'.repeat(bytes);

beforeAll(async () => {
  cluster = await Cluster.create({
    settings: {
      max_prepared_transactions: 4,
      'node_worker.queue_size_kb': 1024,
      'node_worker.max_message_kb': 64,
      deadlock_timeout: "'200ms'",
    },
  });
  await cluster.deployFile('security-svc.ts');
  await cluster.deployFile('security-calls.ts');
  await cluster.deployFile('security-sink.ts');
  await cluster.start();
  await cluster.query('CREATE EXTENSION pg_node_worker');
  for (const sql of [
    'CREATE ROLE svc_callers NOLOGIN',
    'CREATE ROLE "Reporting" NOLOGIN',
    'CREATE ROLE reporting NOLOGIN',
    'CREATE ROLE caller1 LOGIN IN ROLE svc_callers',
    'CREATE ROLE upper_member LOGIN IN ROLE "Reporting"',
    'CREATE ROLE lower_member LOGIN IN ROLE reporting',
    'CREATE ROLE definer LOGIN IN ROLE svc_callers',
    'CREATE ROLE outsider LOGIN',
    'CREATE ROLE nobody LOGIN',
    'GRANT ALL ON SCHEMA public TO PUBLIC',
  ])
    await cluster.query(sql);
  await waitFor('sec_svc to serve calls', async () =>
    (await cluster.query("SELECT node_worker.call('sec_svc', '{\"op\":\"meta\"}') AS r").catch(() => null)) !== null,
  );
  await waitFor('sec_sink', async () => cluster.workerPid('sec_sink'));
  await waitFor('got table', async () => (await cluster.query("SELECT to_regclass('public.sink_got') AS t"))[0].t);
  await cluster.query('GRANT SELECT, INSERT, UPDATE ON got, locked TO PUBLIC');
  await cluster.query('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO PUBLIC');
  [{ t: postmasterStart }] = await cluster.query<{ t: string }>('SELECT pg_postmaster_start_time()::text AS t');
}, 120000);
afterAll(async () => cluster?.destroy());

describe('transactions around notify()', () => {
  it('PREPARE TRANSACTION with a pending notify() is refused with 0A000, and nothing crashes or is delivered', async () => {
    const c = await as('caller1');
    try {
      const pid = await cluster.workerPid('sec_svc');
      await c.query('BEGIN');
      await c.query(`SELECT node_worker.notify('sec_svc', '{"n": 9001}')`);
      const e = await sqlError(c, "PREPARE TRANSACTION 'p1'");
      expect(e.code).toBe('0A000');
      expect(e.message).toMatch(/cannot PREPARE a transaction that has called node_worker\.notify\(\)/);
      // the session is usable and the next transaction's notify works (the list was not left dangling)
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await c.query('BEGIN');
      await c.query(`SELECT node_worker.notify('sec_svc', '{"n": 9002}')`);
      await c.query('COMMIT');
      await waitFor('9002 handled', async () => (await handled()).some((r) => r.n === 9002));
      expect((await handled()).some((r) => r.n === 9001)).toBe(false);
      expect(await cluster.workerPid('sec_svc')).toBe(pid);
    } finally {
      await c.end();
    }
    await noReset();
  });

  it('a notify() rolled back to a savepoint leaves nothing for PREPARE, which then works; COMMIT PREPARED delivers nothing', async () => {
    const c = await as('caller1');
    try {
      await c.query('BEGIN');
      await c.query('SAVEPOINT s');
      await c.query(`SELECT node_worker.notify('sec_svc', '{"n": 9003}')`);
      await c.query('ROLLBACK TO SAVEPOINT s');
      await c.query('INSERT INTO got (n) VALUES (9004)');
      await c.query("PREPARE TRANSACTION 'p2'");
      await c.query('SELECT 1');
    } finally {
      await c.end();
    }
    await cluster.query("COMMIT PREPARED 'p2'");
    await sleep(300);
    const ns = (await handled()).map((r) => r.n);
    expect(ns).toContain(9004);
    expect(ns).not.toContain(9003);
    await noReset();
  });
});

describe('a database owner against a superuser worker', () => {
  it('cannot make a superuser worker run its code through search_path, nor change its settings', async () => {
    await cluster.query('CREATE ROLE owner1 LOGIN');
    await cluster.query('CREATE DATABASE owned OWNER owner1');
    await cluster.query('CREATE EXTENSION pg_node_worker', [], 'owned');
    const owner = await as('owner1', 'owned');
    try {
      // a schema named after the worker's role ("$user"), and public, both with a trap
      for (const schema of ['postgres', 'public']) {
        if (schema === 'postgres') await owner.query('CREATE SCHEMA postgres');
        await owner.query(`CREATE TABLE ${schema}.audit (x int)`);
        await owner.query(
          `CREATE FUNCTION ${schema}.escalate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ALTER ROLE owner1 SUPERUSER; RETURN NEW; END $$`,
        );
        await owner.query(`CREATE TRIGGER t BEFORE INSERT ON ${schema}.audit FOR EACH ROW EXECUTE FUNCTION ${schema}.escalate()`);
      }
      await owner.query('ALTER DATABASE owned SET default_transaction_read_only = on');
      await owner.query('ALTER DATABASE owned SET search_path = postgres, public');
      await owner.query("ALTER DATABASE owned SET statement_timeout = '1ms'");
    } finally {
      await owner.end();
    }
    const logFrom = cluster.log().length;
    await cluster.deployFile('security-owned.ts');
    await cluster.query("SELECT node_worker.restart('sec_owned')");
    const call = async (op: string) =>
      (await cluster.query<{ r: unknown }>('SELECT node_worker.call($1, $2::jsonb, 10000) AS r', ['sec_owned', JSON.stringify({ op })]))[0].r;
    expect(await call('audit')).toBe('42P01');
    expect(await call('write')).toBe('written');
    expect(await call('settings')).toEqual({ ro: 'off', sp: 'pg_catalog', st: '0' });
    const [{ rolsuper }] = await cluster.query<{ rolsuper: boolean }>("SELECT rolsuper FROM pg_roles WHERE rolname = 'owner1'");
    expect(rolsuper).toBe(false);
    await cluster.waitForLog(/node worker "sec_owned" ignores the settings of ALTER DATABASE\/ROLE \.\.\. SET: [^\n]*default_transaction_read_only/, 5000, logFrom);
    await cluster.query("SELECT node_worker.stop('sec_owned')");
  });
});

describe('notifications are handled, kept, or counted: never gone without a trace', () => {
  it('a flood of 60 kB notifies makes notify() fail up front with 53400; the worker stays up and handles every accepted one', async () => {
    const pid = await cluster.workerPid('sec_svc');
    // the consumer waits for a wake(): the inbox fills however fast this machine is
    await cluster.query(`SELECT node_worker.call('sec_svc', '{"op":"hold"}')`);
    const before = (await handled()).length;
    const clients = await Promise.all([1, 2, 3, 4].map(() => as('caller1')));
    let accepted = 0;
    let refused = 0;
    const deadline = performance.now() + 2500;
    try {
      await Promise.all(
        clients.map(async (c, k) => {
          for (let i = 0; performance.now() < deadline; i++) {
            try {
              await c.query('SELECT node_worker.notify($1, $2::jsonb)', ['sec_svc', JSON.stringify({ n: 100000 + k * 10000 + i, pad: pad(60000) })]);
              accepted++;
            } catch (e) {
              expect((e as { code: string }).code).toBe('53400');
              refused++;
            }
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    console.log(`[flood] 60 kB notifies for 2.5 s: ${accepted} accepted, ${refused} refused with 53400`);
    expect(refused).toBeGreaterThan(0);
    await cluster.query("SELECT node_worker.wake('sec_svc')");
    await waitFor('every accepted notify handled', async () => (await handled()).length - before >= accepted, 60000);
    expect((await handled()).length - before).toBe(accepted);
    expect(await cluster.workerPid('sec_svc')).toBe(pid);
    const [w] = await cluster.query("SELECT messages_pending, messages_lost, restarts FROM node_worker.workers WHERE name = 'sec_svc'");
    expect(w).toMatchObject({ messages_pending: 0, messages_lost: '0' });
    await noReset();
  }, 120000);

  it('restart() with a slow consumer loses nothing: what was not handled is handled by the next process', async () => {
    await cluster.query('TRUNCATE got');
    await cluster.query(`SELECT node_worker.call('sec_svc', '{"op":"pace","ms":40}')`);
    const c = await as('caller1');
    try {
      for (let n = 1; n <= 150; n++) await c.query('SELECT node_worker.notify($1, $2::jsonb)', ['sec_svc', JSON.stringify({ n })]);
    } finally {
      await c.end();
    }
    await sleep(300);
    const [{ pending }] = await cluster.query<{ pending: number }>("SELECT messages_pending AS pending FROM node_worker.workers WHERE name = 'sec_svc'");
    expect(pending).toBeGreaterThan(50);
    await cluster.query("SELECT node_worker.restart('sec_svc')");
    await waitFor('all 150 handled', async () => new Set((await handled()).map((r) => r.n)).size === 150, 30000);
    const rows = await handled();
    const seen = new Map<number, number>();
    for (const r of rows) {
      // a message handled twice was handled by a process that exited before it was acknowledged
      if (seen.has(r.n)) expect(r.redelivered).toBe(true);
      seen.set(r.n, (seen.get(r.n) ?? 0) + 1);
    }
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    expect(rows.filter((r) => r.redelivered).length).toBeGreaterThan(0);
    await waitFor('inbox empty', async () =>
      (await cluster.query("SELECT messages_pending FROM node_worker.workers WHERE name = 'sec_svc'"))[0].messages_pending === 0,
    );
  }, 60000);

  it('a handler whose statement the shutdown cancels leaves its message to the next process', async () => {
    // the first run of a statement in a process plans it; the plan waits for the table's lock
    await cluster.query('TRUNCATE got');
    const locker = await cluster.client();
    const restarter = await cluster.client();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE gate IN ACCESS EXCLUSIVE MODE');
      await cluster.query(`SELECT node_worker.notify('sec_svc', '{"n": 1, "gate": true}')`);
      const pid = await cluster.workerPid('sec_svc');
      await waitFor('the handler waits for the lock', async () =>
        (await cluster.query('SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted', [pid])).length > 0,
      );
      const restarted = restarter.query("SELECT node_worker.restart('sec_svc')");
      await waitFor('the next process runs', async () => {
        const now = await cluster.workerPid('sec_svc');
        return now !== null && now !== pid;
      });
      await locker.query('COMMIT');
      await restarted;
    } finally {
      await locker.end();
      await restarter.end();
    }
    await waitFor('the message handled', async () => (await handled()).length > 0);
    expect(await handled()).toMatchObject([{ n: 1, redelivered: true }]);
    const [w] = await cluster.query("SELECT messages_pending, messages_lost FROM node_worker.workers WHERE name = 'sec_svc'");
    expect(w).toMatchObject({ messages_pending: 0, messages_lost: '0' });
    await noReset();
  }, 60000);

  it('one full inbox delays only the commits that notify that worker', async () => {
    await cluster.query(`SELECT node_worker.call('sec_svc', '{"op":"hold"}')`);
    const slow = await as('caller1');
    const filler = await as('caller1');
    try {
      await slow.query('BEGIN');
      await slow.query('SELECT node_worker.notify($1, $2::jsonb)', ['sec_svc', JSON.stringify({ n: 777, pad: pad(60000) })]);
      // fill the inbox behind the held consumer
      for (;;) {
        const r = await filler
          .query('SELECT node_worker.notify($1, $2::jsonb)', ['sec_svc', JSON.stringify({ n: 0, pad: pad(60000) })])
          .catch((e) => e);
        if (r instanceof Error) {
          expect((r as Error & { code: string }).code).toBe('53400');
          break;
        }
      }
      const committing = slow.query('COMMIT');
      await sleep(300);
      const t0 = performance.now();
      await cluster.query(`SELECT node_worker.notify('sec_sink', '{"n": 1}')`);
      const elapsed = performance.now() - t0;
      console.log(`[commit order] a notify to another worker committed in ${elapsed} ms while sec_svc's inbox was full`);
      expect(elapsed).toBeLessThan(2000);
      await cluster.query("SELECT node_worker.wake('sec_svc')");
      await committing;
      await waitFor('777 handled', async () => (await handled()).some((r) => r.n === 777), 30000);
    } finally {
      await slow.end();
      await filler.end();
    }
  }, 60000);

  it('meta.role is the role current at notify(), also through a SECURITY DEFINER function', async () => {
    await cluster.query(`CREATE FUNCTION public.send_as_definer(n int) RETURNS void SECURITY DEFINER LANGUAGE sql
                         AS $$ SELECT node_worker.notify('sec_svc', jsonb_build_object('n', n)) $$`);
    await cluster.query('ALTER FUNCTION public.send_as_definer(int) OWNER TO definer');
    const c = await as('outsider');
    try {
      await c.query('SELECT public.send_as_definer(4242)');
      // and directly: outsider may not
      expect((await sqlError(c, `SELECT node_worker.notify('sec_svc', '{}')`)).code).toBe('42501');
    } finally {
      await c.end();
    }
    await waitFor('4242 handled', async () => (await handled()).some((r) => r.n === 4242));
    expect((await handled()).find((r) => r.n === 4242)?.role).toBe('definer');
  });
});

describe('calls', () => {
  it('a caller that holds a lock the handler needs gets 40P01 at once, not a wait until its timeout', async () => {
    const c = await as('caller1');
    try {
      await c.query('BEGIN');
      await c.query('LOCK TABLE locked IN ACCESS EXCLUSIVE MODE');
      const t0 = performance.now();
      const e = await sqlError(c, `SELECT node_worker.call('sec_svc', '{"op":"read-locked"}', 600000)`);
      expect(e.code).toBe('40P01');
      expect(performance.now() - t0).toBeLessThan(5000);
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
    // the worker's handler finished once the lock went away, and it serves others
    expect((await cluster.query(`SELECT node_worker.call('sec_svc', '{"op":"read-locked"}') AS r`))[0].r).toBe(0);
  });

  it('meta.signal fires when the caller times out (TimeoutError) or is cancelled (AbortError)', async () => {
    const e = await cluster
      .query(`SELECT node_worker.call('sec_calls', '{"op":"wait-abort"}', 200)`)
      .then(() => null, (err) => err as { code: string });
    expect(e?.code).toBe('57014');
    const c = await cluster.client();
    const pid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p;
    const pending = c.query(`SELECT node_worker.call('sec_calls', '{"op":"wait-abort"}', 600000)`).catch((err) => err);
    await sleep(300);
    await cluster.query('SELECT pg_cancel_backend($1)', [pid]);
    expect(((await pending) as { code: string }).code).toBe('57014');
    await c.end();
    await waitFor('both aborts recorded', async () => (await cluster.query('SELECT reason FROM aborts')).length === 2);
    expect((await cluster.query<{ reason: string }>('SELECT reason FROM aborts ORDER BY reason')).map((r) => r.reason)).toEqual([
      'AbortError',
      'TimeoutError',
    ]);
  });

  it('2,000 calls that give up after 1 ms leave the worker up; handlers past maxPendingCalls are refused with 53400 at once', async () => {
    const pid = await cluster.workerPid('sec_calls');
    const startedBefore = (await cluster.query(`SELECT node_worker.call('sec_calls', '{"op":"started"}') AS r`))[0].r as number;
    // 2,000 calls that give up after 1 ms: most are gone before the worker looks
    const clients = await Promise.all([1, 2, 3, 4].map(() => cluster.client()));
    await Promise.all(
      clients.map(async (c) => {
        for (let i = 0; i < 500; i++)
          // given up (57014), or refused at once while 20 handlers still run (53400)
          await c.query(`SELECT node_worker.call('sec_calls', '{"op":"slow"}', 1)`).catch((err) => expect(['57014', '53400']).toContain(err.code));
      }),
    );
    // the slow handlers the last calls started still run for up to 20 ms, and may fill the 20
    // places: the state is asked for (refused with 53400 meanwhile) until none runs
    let probes = 0;
    const after = await waitFor('the slow handlers to end', async () => {
      const [{ r }] = await cluster.query<{ r: { started: number; slow: number } }>(`SELECT node_worker.call('sec_calls', '{"op":"state"}') AS r`);
      probes++; // a refused call starts no handler
      return r.slow === 0 ? r : null;
    });
    console.log(`[abandoned calls] 2000 calls with timeout_ms = 1: ${after.started - startedBefore - probes} handlers started`);
    // hung handlers fill the 20 places; then calls fail at once instead of piling up
    const hung = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        clients[i % 4].query(`SELECT node_worker.call('sec_calls', '{"op":"hang"}', 500)`).then(() => 'ok', (err) => err.code as string),
      ),
    );
    await Promise.all(clients.map((c) => c.end()));
    expect(hung.filter((c) => c === '57014').length).toBe(20);
    expect(hung.filter((c) => c === '53400').length).toBe(5);
    const e = await cluster.query(`SELECT node_worker.call('sec_calls', '{"op":"started"}')`).then(() => null, (err) => err);
    expect(e?.code).toBe('53400');
    expect(e?.message).toMatch(/maxPendingCalls/);
    expect(await cluster.workerPid('sec_calls')).toBe(pid);
    await cluster.query("SELECT node_worker.restart('sec_calls')");
    expect((await cluster.query(`SELECT node_worker.call('sec_calls', '{}') AS r`))[0].r).toBe('ok');
  }, 120000);
});

describe('roles and names', () => {
  it('callers are matched exactly: "Reporting" admits its members, not those of reporting', async () => {
    const upper = await as('upper_member');
    const lower = await as('lower_member');
    try {
      expect((await upper.query(`SELECT node_worker.call('sec_svc', '{"op":"meta"}') AS r`)).rows[0].r.role).toBe('upper_member');
      expect((await sqlError(lower, `SELECT node_worker.call('sec_svc', '{"op":"meta"}')`)).code).toBe('42501');
    } finally {
      await upper.end();
      await lower.end();
    }
  });

  it('a role with no right gets 42501 for an unknown, a stopped and a running worker alike', async () => {
    await cluster.deployTemplate('recorder', 'dyn_a'); // deployed after start: known, never run
    const c = await as('nobody');
    try {
      for (const name of ['no_such_worker', 'dyn_a', 'sec_svc'])
        for (const fn of [`call($1, '{}')`, `notify($1, '{}')`, 'wake($1)']) {
          const e = await sqlError(c, `SELECT node_worker.${fn}`, [name]);
          expect(`${name} ${fn}: ${e.code}`).toBe(`${name} ${fn}: 42501`);
          expect(e.message).toBe(`permission denied to talk to node worker "${name}"`);
        }
    } finally {
      await c.end();
    }
  });

  it('ctx.buffers refuses relation and fork names with NUL', async () => {
    expect((await cluster.query(`SELECT node_worker.call('sec_svc', '{"op":"nul"}') AS r`))[0].r).toEqual({ relation: 'TypeError', fork: 'TypeError' });
  });
});

describe('control', () => {
  it('6 concurrent restart()s all succeed, one after the other; one process runs after, none after stop()', async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => cluster.client()));
    const pids = await Promise.all(clients.map((c) => c.query("SELECT node_worker.restart('sec_sink') AS pid").then((r) => r.rows[0].pid as number)));
    await Promise.all(clients.map((c) => c.end()));
    expect(new Set(pids).size).toBe(6);
    const running = async () =>
      (await cluster.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE backend_type = 'node_worker' AND application_name = 'sec_sink'")).map(
        (r) => r.pid,
      );
    await waitFor('one sec_sink', async () => (await running()).length === 1);
    expect(pids).toContain((await running())[0]);
    await sleep(500);
    expect((await running()).length).toBe(1);
    await cluster.query("SELECT node_worker.stop('sec_sink')");
    expect(await running()).toEqual([]);
    await cluster.query("SELECT node_worker.restart('sec_sink')");
    expect((await running()).length).toBe(1);
  }, 60000);

  it('the worker that swallows its shutdown cancel leaves with exit 1 within the grace period, no abort, and the log says why', async () => {
    await cluster.deployFile('security-swallower.ts');
    const logFrom = cluster.log().length;
    const pid = (await cluster.query<{ pid: number }>("SELECT node_worker.launch('swallower') AS pid"))[0].pid;
    await sleep(300);
    const t0 = performance.now();
    await cluster.query('SELECT pg_terminate_backend($1)', [pid]);
    await waitFor('swallower gone', async () => !(await cluster.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length, 10000);
    expect(performance.now() - t0).toBeLessThan(2000 + 3000);
    await cluster.waitForLog(/node worker "swallower" did not stop within node_worker\.shutdown_grace_ms/, 5000, logFrom);
    const exit = await waitFor('the postmaster to log how swallower ended', () => exitOf(cluster.log().slice(logFrom), pid), 5000);
    await cluster.query("SELECT node_worker.stop('swallower')");
    expect(exit).toBe('exited with exit code 1');
    expect(cluster.log().slice(logFrom)).not.toMatch(ABORT);
    await noReset();
  }, 30000);
});

describe('the inbox belongs to one worker', () => {
  let small: Cluster;
  beforeAll(async () => {
    small = await Cluster.create({ settings: { 'node_worker.max_workers': 1 } });
    await small.start();
    await small.query('CREATE EXTENSION pg_node_worker');
    await small.query('CREATE ROLE dyn_a_callers NOLOGIN');
    await small.query('CREATE ROLE dyn_b_callers NOLOGIN');
    await small.query('CREATE ROLE a_caller LOGIN IN ROLE dyn_a_callers');
    // deployed after start: dynamic only (launch()), so the one slot is reused
    await small.deployTemplate('recorder', 'dyn_a');
    await small.deployTemplate('recorder', 'dyn_b');
  }, 60000);
  afterAll(async () => small?.destroy());

  it("a notification committed for a stopped worker never reaches another bundle launched into its slot; its loss is logged", async () => {
    await small.query("SELECT node_worker.launch('dyn_a')");
    await waitFor('dyn_got', async () => (await small.query("SELECT to_regclass('public.dyn_got') AS t"))[0].t);
    const c = await small.client('postgres', 'a_caller');
    try {
      await c.query('BEGIN');
      await c.query(`SELECT node_worker.notify('dyn_a', '{"secret": "for a only"}')`);
      await small.query("SELECT node_worker.stop('dyn_a')");
      await c.query('COMMIT'); // same worker, stopped: the message waits in its inbox
    } finally {
      await c.end();
    }
    const logFrom = small.log().length;
    await small.query("SELECT node_worker.launch('dyn_b')");
    await small.waitForLog(/1 committed notifications for node worker "dyn_a" were dropped unhandled/, 10000, logFrom);
    await sleep(500);
    expect(await small.query('SELECT * FROM dyn_got')).toEqual([]);
  });

  it('a commit whose target was replaced since notify() fails, and nothing is delivered', async () => {
    await small.query("SELECT node_worker.stop('dyn_b')");
    await small.query("SELECT node_worker.launch('dyn_a')");
    const c = await small.client('postgres', 'a_caller');
    try {
      await c.query('BEGIN');
      await c.query(`SELECT node_worker.notify('dyn_a', '{"secret": "for a only, again"}')`);
      await small.query("SELECT node_worker.stop('dyn_a')");
      await small.query("SELECT node_worker.launch('dyn_b')");
      const e = await sqlError(c, 'COMMIT');
      expect(e.code).toBe('55000');
      expect(e.message).toMatch(/node worker "dyn_a" was removed or replaced before this transaction committed/);
    } finally {
      await c.end();
    }
    await sleep(500);
    expect(await small.query('SELECT * FROM dyn_got')).toEqual([]);
  });
});

describe('the admin role', () => {
  let fresh: Cluster;
  beforeAll(async () => {
    fresh = await Cluster.create();
    await fresh.start();
    await fresh.query('CREATE ROLE squatter LOGIN CREATEROLE');
  }, 60000);
  afterAll(async () => fresh?.destroy());

  it('CREATE EXTENSION refuses a node_worker_admin a CREATEROLE user made with LOGIN', async () => {
    await fresh.query("CREATE ROLE node_worker_admin LOGIN PASSWORD 'known to the squatter'", [], 'postgres');
    const e = await fresh.query('CREATE EXTENSION pg_node_worker').then(() => null, (err) => err);
    expect(e?.code).toBe('42710');
    expect(e?.message).toMatch(/node_worker_admin" already exists with LOGIN/);
    expect(await fresh.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_node_worker'")).toEqual([]);
    await fresh.query('DROP ROLE node_worker_admin');
  });

  it('…and one with members no superuser granted', async () => {
    const sq = await fresh.client('postgres', 'squatter');
    try {
      await sq.query('CREATE ROLE node_worker_admin NOLOGIN');
      await sq.query('GRANT node_worker_admin TO squatter');
    } finally {
      await sq.end();
    }
    const e = await fresh.query('CREATE EXTENSION pg_node_worker').then(() => null, (err) => err);
    expect(e?.code).toBe('42710');
    await fresh.query('DROP ROLE node_worker_admin');
    await fresh.query('CREATE EXTENSION pg_node_worker');
    const [{ login }] = await fresh.query<{ login: boolean }>("SELECT rolcanlogin AS login FROM pg_roles WHERE rolname = 'node_worker_admin'");
    expect(login).toBe(false);
  });
});
