/**
 * ctx.schedule on real clusters: `N seconds` schedules fire repeatedly and each run is recorded in
 * node_worker.schedule_runs; bad input is refused naming the field; only workers write the table,
 * each under the name of its slot whatever its application_name; a server restart neither runs a
 * slot twice nor runs an interrupted async slot again; missed slots run once or are skipped; a
 * synchronous function's effects commit with its run's record or not at all (a throw, a returned
 * promise, a kill -9 mid-run); node_worker.schedule_runs_keep prunes; the 0.7 to 0.8 upgrade; a
 * start: 'consistent' worker's schedules run on a hot standby, unrecorded, and catch up a missed
 * slot after the standby restarts.
 * The cron arithmetic itself is test/unit/cron.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, PG_BIN, sleep, waitFor } from './helpers/cluster';
import { ABORT, connect } from './helpers/faults';

let primary: Cluster;

interface Run {
  schedule: string;
  slot: Date;
  pid: number;
  started_at: Date;
  finished_at: Date | null;
  outcome: string;
  error: string | null;
}

const runs = (schedule: string) =>
  primary.query<Run>('SELECT * FROM node_worker.schedule_runs WHERE worker = $1 AND schedule = $2 ORDER BY slot', [
    schedule === 'catchup' || schedule === 'skipper' ? 'sched-missed' : 'sched-ticker',
    schedule,
  ]);
const ticks = (schedule: string) =>
  primary.query<{ slot: Date; late: boolean; pid: number }>('SELECT slot, late, pid FROM public.ticks WHERE schedule = $1 ORDER BY slot', [schedule]);

beforeAll(async () => {
  primary = await Cluster.create();
  await primary.start();
  await primary.query('CREATE EXTENSION pg_node_worker');
  await primary.query('CREATE TABLE public.ticks (schedule text, slot timestamptz, late boolean, pid int)');
  await primary.query('CREATE TABLE public.exact_hold (seconds float8)');
  // sched-missed runs as a role that may insert its ticks and nothing else
  await primary.query('CREATE ROLE sched_role LOGIN');
  await primary.query('GRANT INSERT ON public.ticks TO sched_role');
  await primary.deployFile('schedules-ticker.ts');
  await primary.deployFile('schedules-missed.ts');
  await primary.deployFile('schedules-exact.ts');
  await primary.deployFile('schedules-liar.ts');
  for (const w of ['sched-ticker', 'sched-missed', 'sched-exact', 'sched-liar']) await primary.query('SELECT node_worker.restart($1)', [w]);
}, 90000);
afterAll(async () => primary?.destroy());

describe('schedules', () => {
  it("fire an 'N seconds' schedule repeatedly on its grid, each run recorded with its outcome", async () => {
    await waitFor('4 ticks', async () => (await ticks('tick')).length >= 4, 20000);
    await waitFor('2 failed booms', async () => (await runs('boom')).filter((r) => r.outcome === 'error').length >= 2, 20000);
    const pid = await primary.workerPid('sched-ticker');
    const recorded = await runs('tick');
    const done = recorded.filter((r) => r.outcome !== 'running');
    expect(done.length).toBeGreaterThanOrEqual(4);
    for (const r of done) {
      expect(r.slot.getTime() % 2000).toBe(0);
      expect(r).toMatchObject({ outcome: 'ok', error: null, pid });
      expect(r.started_at.getTime()).toBeGreaterThanOrEqual(r.slot.getTime());
      expect(r.finished_at!.getTime()).toBeGreaterThanOrEqual(r.started_at.getTime());
    }
    // every effect has its run, and no slot ran twice
    const slots = (await ticks('tick')).map((t) => t.slot.getTime());
    expect(new Set(slots).size).toBe(slots.length);
    const recordedSlots = new Set(recorded.map((r) => r.slot.getTime()));
    for (const s of slots) expect(recordedSlots.has(s)).toBe(true);
    for (const r of (await runs('boom')).filter((x) => x.outcome !== 'running')) {
      expect(r).toMatchObject({ outcome: 'error', error: 'Error: boom' });
      expect(r.slot.getTime() % 3000).toBe(0);
    }
    expect(primary.log()).toMatch(/sched-ticker: schedule "boom" failed at slot \S+: Error: boom/);
    // 'once' unsubscribed itself at its first run
    expect((await runs('once')).map((r) => r.outcome)).toEqual(['ok']);
    // 'nightly' registered, and has not run
    expect(await runs('nightly')).toEqual([]);
  });

  it('refuses bad input at ctx.schedule, naming the field', async () => {
    await primary.waitForLog(/bad duplicate:/);
    const log = primary.log();
    const line = (what: string) => log.match(new RegExp(`sched-ticker: bad ${what}: (.*)`))?.[1];
    expect(line('minute')).toMatch(/^minute .*invalid minute field "61"/);
    expect(line('day-of-week')).toMatch(/^day-of-week .*invalid day-of-week field "FUNDAY"/);
    expect(line('month')).toMatch(/^month .*invalid month field "13"/);
    expect(line('fields')).toMatch(/^expression .*has 6 fields: it needs 5/);
    expect(line('seconds')).toMatch(/^seconds .*from 1 to 59/);
    expect(line('timezone')).toMatch(/^timezone .*"Mars\/Olympus" is not an IANA time zone/);
    expect(line('missed')).toMatch(/^- .*missed must be 'run-once' or 'skip'/);
    expect(line('never')).toMatch(/^day-of-month .*never occurs/);
    expect(line('duplicate')).toMatch(/^- .*already has a schedule named "nightly"/);
  });

  it('lets only workers write node_worker.schedule_runs; node_worker_admin reads it', async () => {
    await primary.query('CREATE ROLE mallory LOGIN');
    const client = await primary.client('postgres', 'mallory');
    try {
      for (const sql of [
        "SELECT node_worker.schedule_claim('tick', '2099-01-01')",
        "SELECT node_worker.schedule_finish(1, 'ok', NULL)",
        "SELECT node_worker.schedule_last('tick')",
        'SELECT * FROM node_worker.schedule_runs',
        "INSERT INTO node_worker.schedule_runs (worker, schedule, slot, pid, started_at, outcome) VALUES ('sched-ticker', 'tick', '2099-01-01', 1, now(), 'ok')",
      ]) {
        const e = await client.query(sql).then(() => null, (err) => err);
        expect(e?.code, sql).toBe('42501');
      }
      // not even with a worker's application_name
      await client.query("SET application_name = 'sched-ticker'");
      const e = await client.query("SELECT node_worker.schedule_claim('tick', '2099-01-01')").then(() => null, (err) => err);
      expect(e?.code).toBe('42501');
      await primary.query('GRANT node_worker_admin TO mallory');
      const n = (await client.query("SELECT count(*)::int AS n FROM node_worker.schedule_runs WHERE schedule = 'tick'")).rows[0].n;
      expect(n).toBeGreaterThan(0);
      const w = await client.query("SELECT node_worker.schedule_claim('tick', '2099-01-01')").then(() => null, (err) => err);
      expect(w?.code).toBe('42501');
    } finally {
      await client.end();
    }
  });

  it('fire on time across a server restart, never running a slot twice nor an interrupted one again', async () => {
    // restart while a 'slow' run is in progress: its slot is claimed, cut short, and not run again
    const from = primary.log().length;
    const started = await primary.waitForLog(/sched-ticker: slow started (\S+)/, 20000, from);
    const cut = new Date(started[1]).getTime();
    await primary.restart();
    const restartedAt = Date.now();
    await waitFor('3 ticks after the restart', async () => (await ticks('tick')).filter((t) => t.slot.getTime() > restartedAt).length >= 3, 30000);
    await waitFor('the cut-short slow run marked interrupted', async () =>
      (await runs('slow')).find((r) => r.slot.getTime() === cut)?.outcome === 'interrupted', 30000);

    for (const schedule of ['tick', 'slow', 'boom']) {
      const dup = await primary.query('SELECT slot FROM public.ticks WHERE schedule = $1 GROUP BY slot HAVING count(*) > 1', [schedule]);
      expect(dup, schedule).toEqual([]);
    }
    expect((await ticks('slow')).filter((t) => t.slot.getTime() === cut)).toHaveLength(1);
    const after = (await runs('tick')).filter((r) => r.slot.getTime() > restartedAt);
    for (const r of after) {
      expect(r.slot.getTime() % 2000).toBe(0);
      expect(r.started_at.getTime()).toBeGreaterThanOrEqual(r.slot.getTime());
    }
    // slots follow each other on the grid (a worker stalled past a slot would run only the latest)
    const tickSlots = (await ticks('tick')).map((t) => t.slot.getTime()).filter((s) => s > restartedAt);
    expect(tickSlots.some((s, i) => i > 0 && s - tickSlots[i - 1] === 2000)).toBe(true);
  }, 90000);

  it("runs a missed slot once at start ('run-once') or skips it ('skip')", async () => {
    await waitFor('a run of each', async () => (await ticks('catchup')).length > 0 && (await ticks('skipper')).length > 0, 20000);
    await primary.query("SELECT node_worker.stop('sched-missed')");
    const lastCatchup = Math.max(...(await ticks('catchup')).map((t) => t.slot.getTime()));
    const lastSkipper = Math.max(...(await ticks('skipper')).map((t) => t.slot.getTime()));
    // down for more than two slots of 3 s
    await sleep(7000);
    const restartAt = Date.now();
    await primary.query("SELECT node_worker.restart('sched-missed')");
    await waitFor('runs after the restart', async () =>
      (await ticks('catchup')).filter((t) => t.slot.getTime() > restartAt).length >= 1 &&
      (await ticks('skipper')).filter((t) => t.slot.getTime() > restartAt).length >= 1, 20000);

    const catchup = (await ticks('catchup')).filter((t) => t.slot.getTime() > lastCatchup);
    // the first run after the stop is the latest missed slot, late, once; those before it never run
    expect(catchup[0].late).toBe(true);
    expect(catchup[0].slot.getTime() - lastCatchup).toBeGreaterThanOrEqual(6000);
    expect(catchup.filter((t) => t.late)).toHaveLength(1);

    const skipper = (await ticks('skipper')).filter((t) => t.slot.getTime() > lastSkipper);
    expect(skipper.filter((t) => t.late)).toEqual([]);
    expect(skipper.filter((t) => t.slot.getTime() <= restartAt)).toEqual([]);
    expect((await runs('catchup')).filter((r) => r.outcome === 'ok' && r.slot.getTime() > lastCatchup && r.slot.getTime() < catchup[0].slot.getTime())).toEqual([]);
    // recorded by a worker whose role has no rights on the table
    const recorded = await runs('catchup');
    expect(recorded.find((r) => r.slot.getTime() === catchup[0].slot.getTime())).toMatchObject({ outcome: 'ok', error: null });
    const claimed = new Set(recorded.map((r) => r.slot.getTime()));
    for (const t of await ticks('catchup')) expect(claimed.has(t.slot.getTime())).toBe(true);
  }, 60000);

  it('fires a 5-field schedule on the minute boundary', async () => {
    // the file has run for most of a minute by now: this waits for the next boundary at most
    const run = await waitFor('a minutely run', async () => (await runs('minutely')).find((r) => r.outcome === 'ok'), 65000, 500);
    expect(run.slot.getTime() % 60000).toBe(0);
    expect(run.started_at.getTime()).toBeGreaterThanOrEqual(run.slot.getTime());
    expect((await ticks('minutely')).filter((t) => t.slot.getTime() === run.slot.getTime())).toHaveLength(1);
  }, 70000);

  it('records runs under the worker of the slot the process runs as, not its application_name', async () => {
    await primary.waitForLog(/sched-liar: liar: pid (\d+) as application_name (\S+)/, 20000);
    // the current process: the server restarted since the first one
    const m = [...primary.log().matchAll(/sched-liar: liar: pid (\d+) as application_name (\S+)/g)].pop()!;
    const liar = Number(m[1]);
    expect(m[2]).toBe('sched-missed');
    expect(await primary.query('SELECT application_name FROM pg_stat_activity WHERE pid = $1', [liar])).toEqual([{ application_name: 'sched-missed' }]);
    await waitFor('2 runs of the liar', async () =>
      (await primary.query("SELECT 1 FROM public.ticks WHERE schedule = 'liar' AND pid = $1", [liar])).length >= 2, 20000);
    const mine = await primary.query<{ worker: string; schedule: string; slot: Date; outcome: string }>(
      'SELECT worker, schedule, slot, outcome FROM node_worker.schedule_runs WHERE pid = $1', [liar]);
    expect(mine.length).toBeGreaterThanOrEqual(2);
    for (const r of mine) expect(r).toMatchObject({ worker: 'sched-liar', schedule: 'catchup' });
    const recorded = new Set(mine.filter((r) => r.outcome === 'ok').map((r) => r.slot.getTime()));
    for (const t of await primary.query<{ slot: Date }>("SELECT slot FROM public.ticks WHERE schedule = 'liar' AND pid = $1", [liar]))
      expect(recorded.has(t.slot.getTime())).toBe(true);
    // and a client session is refused whatever it calls itself (the C function, 0.8)
    const e = await primary.query('SELECT node_worker.schedule_caller()').then(() => null, (err) => err);
    expect(e).toMatchObject({ code: '42501', message: 'only a pg_node_worker worker may record its schedule runs' });
  });

  it("commits a synchronous function's effects with its run's record, or nothing (a throw, a promise, a kill -9)", async () => {
    await waitFor('runs of each synchronous schedule', async () =>
      (await ticks('exact')).length >= 2 &&
      (await primary.query("SELECT 1 FROM node_worker.schedule_runs WHERE worker = 'sched-exact' AND schedule IN ('rollback', 'promised') AND outcome = 'error'")).length >= 2, 20000);
    const pid = await primary.waitForWorker('sched-exact');
    // the next run holds its transaction open (its row written, not committed) until the kill
    const before = primary.log().length;
    await primary.query('INSERT INTO public.exact_hold VALUES (600)');
    const held = await primary.waitForLog(/sched-exact: exact started (\S+) hold 600/, 20000, before);
    const cut = new Date(held[1]).getTime();
    await waitFor('the held run to sleep', async () =>
      (await primary.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = $2', [pid, 'PgSleep'])).length === 1, 20000, 10);
    await primary.query('DELETE FROM public.exact_hold');
    const from = primary.log().length;
    process.kill(pid, 'SIGKILL');
    await primary.waitForLog(/all server processes terminated; reinitializing/, 20000, from);
    await waitFor('the cluster to accept queries again', async () => {
      const c = await connect(primary).catch(() => null);
      if (c === null) return false;
      try {
        return (await c.query('SELECT 1 AS ok')).rows[0].ok === 1;
      } finally {
        await c.end().catch(() => undefined);
      }
    }, 30000, 20);
    const newPid = await primary.waitForWorker('sched-exact', 20000, pid);
    await waitFor('2 runs of the new process', async () => (await ticks('exact')).filter((t) => t.pid === newPid).length >= 2, 30000);

    const exact = await ticks('exact');
    const slots = exact.map((t) => t.slot.getTime());
    // nothing of the run that was cut short committed
    expect(exact.filter((t) => t.pid === pid && t.slot.getTime() === cut)).toEqual([]);
    // its slot was free again: the new process's first run is the latest missed slot, at or after it
    const first = exact.find((t) => t.pid === newPid)!;
    expect(first.late).toBe(true);
    expect(first.slot.getTime()).toBeGreaterThanOrEqual(cut);
    // exactly once: each slot's row once, each with its 'ok' run and each 'ok' run with its row
    expect(new Set(slots).size).toBe(slots.length);
    const recorded = await primary.query<{ slot: Date; outcome: string }>(
      "SELECT slot, outcome FROM node_worker.schedule_runs WHERE worker = 'sched-exact' AND schedule = 'exact' ORDER BY slot");
    expect(recorded.filter((r) => r.outcome !== 'ok')).toEqual([]);
    expect(recorded.map((r) => r.slot.getTime())).toEqual([...slots].sort((a, b) => a - b));
    // a throw and a returned promise roll the run's row back and record the error
    expect(await ticks('rollback')).toEqual([]);
    expect(await ticks('promised')).toEqual([]);
    const failed = await primary.query<{ schedule: string; outcome: string; error: string }>(
      "SELECT schedule, outcome, error FROM node_worker.schedule_runs WHERE worker = 'sched-exact' AND schedule <> 'exact'");
    expect(failed.length).toBeGreaterThanOrEqual(2);
    for (const r of failed) {
      if (r.schedule === 'rollback') expect(r).toMatchObject({ outcome: 'error', error: 'nope' });
      else expect(r.error).toMatch(/^TypeError: a schedule function that is not declared async returned a promise/);
    }
    expect(primary.log().slice(from)).not.toMatch(ABORT);
  }, 120000);

  it('keeps the newest node_worker.schedule_runs_keep runs of each schedule', async () => {
    await primary.query('ALTER SYSTEM SET node_worker.schedule_runs_keep = 3');
    await primary.query('SELECT pg_reload_conf()');
    try {
      const since = new Date();
      await waitFor('tick and exact pruned to 3 runs after new claims', async () => {
        for (const [worker, schedule] of [['sched-ticker', 'tick'], ['sched-exact', 'exact']]) {
          const [r] = await primary.query<{ n: number; newer: number }>(
            'SELECT count(*)::int AS n, count(*) FILTER (WHERE started_at > $3)::int AS newer FROM node_worker.schedule_runs WHERE worker = $1 AND schedule = $2',
            [worker, schedule, since]);
          if (r.newer < 2 || r.n > 3) return false;
        }
        return true;
      }, 30000);
      // the newest stay: the latest tick has its run
      const [latest] = await primary.query<{ slot: Date }>("SELECT max(slot) AS slot FROM public.ticks WHERE schedule = 'tick'");
      const kept = await runs('tick');
      expect(kept.length).toBeLessThanOrEqual(3);
      expect(kept.some((r) => r.slot.getTime() >= latest.slot.getTime())).toBe(true);
    } finally {
      await primary.query('ALTER SYSTEM RESET node_worker.schedule_runs_keep');
      await primary.query('SELECT pg_reload_conf()');
    }
  }, 60000);

  it('is dumped by pg_dump and comes with ALTER EXTENSION UPDATE from 0.7', async () => {
    const config = "SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS x(oid) JOIN pg_class c ON c.oid = x.oid WHERE e.extname = 'pg_node_worker' ORDER BY 1";
    const fresh = (await primary.query<{ relname: string }>(config)).map((r) => r.relname);
    expect(fresh).toEqual(expect.arrayContaining(['schedule_runs', 'schedule_runs_id_seq', 'job_store']));
    await primary.query('CREATE DATABASE upgraded07');
    await primary.query("CREATE EXTENSION pg_node_worker VERSION '0.7'", [], 'upgraded07');
    await primary.query('ALTER EXTENSION pg_node_worker UPDATE', [], 'upgraded07');
    expect(await primary.query("SELECT extversion FROM pg_extension WHERE extname = 'pg_node_worker'", [], 'upgraded07')).toEqual([{ extversion: '0.8' }]);
    expect((await primary.query<{ relname: string }>(config, [], 'upgraded07')).map((r) => r.relname)).toEqual(fresh);
    const e = await primary.query('SELECT node_worker.schedule_caller()', [], 'upgraded07').then(() => null, (err) => err);
    expect(e?.code).toBe('42501');
    // a dump restored into a new database has the runs, and the identity goes on after them
    const dump = path.join(primary.dir, 'runs.sql');
    primary.run(path.join(PG_BIN, 'pg_dump'), ['-h', primary.dir, '-p', String(primary.port), '-U', 'postgres', '-d', 'postgres', '-f', dump]);
    await primary.query('CREATE DATABASE restored');
    primary.run(path.join(PG_BIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=0', '-h', primary.dir, '-p', String(primary.port), '-U', 'postgres', '-d', 'restored', '-f', dump]);
    // the runs go on meanwhile (new ones, pruned old ones): each restored row is the source's, where it is still there
    const rows = "SELECT id::text AS id, worker, schedule, slot FROM node_worker.schedule_runs ORDER BY id";
    const restored = await primary.query<{ id: string; worker: string; schedule: string; slot: Date }>(rows, [], 'restored');
    const source = new Map((await primary.query<{ id: string; worker: string; schedule: string; slot: Date }>(rows)).map((r) => [r.id, r]));
    expect(restored.length).toBeGreaterThan(10);
    const kept = restored.filter((r) => source.has(r.id));
    expect(kept.length).toBeGreaterThan(0);
    for (const r of kept) expect(r).toEqual(source.get(r.id));
    const [{ next }] = await primary.query<{ next: string }>(
      "SELECT nextval(pg_get_serial_sequence('node_worker.schedule_runs', 'id'))::text AS next", [], 'restored');
    expect(BigInt(next)).toBeGreaterThan(BigInt(restored[restored.length - 1].id));
  });
});

describe('on a hot standby', () => {
  let replica: Cluster;
  afterAll(async () => replica?.destroy());

  it("runs a start: 'consistent' worker's schedules read-only, logged and not recorded", async () => {
    // pg_basebackup's own checkpoint is spread out over the buffers the tests above dirtied
    await primary.query('CHECKPOINT');
    replica = await Cluster.replicaOf(primary);
    await replica.start();
    const first = await replica.waitForLog(/sched-ticker: tick (\S+) recovery=true recorded=false/, 30000);
    const from = replica.log().indexOf(first[0]) + first[0].length;
    const second = await replica.waitForLog(/sched-ticker: tick (\S+) recovery=true recorded=false/, 30000, from);
    expect(new Date(second[1]).getTime()).toBeGreaterThan(new Date(first[1]).getTime());
    await replica.waitForLog(/sched-ticker: schedule "tick" ran slot \S+ on a hot standby \(not recorded\): ok/);
    await replica.waitForLog(/sched-ticker: schedule "boom" failed at slot \S+: Error: boom/);
    // the standby wrote nothing: what it shows of the table is what the primary recorded
    const standbyPid = await replica.workerPid('sched-ticker');
    const rows = await replica.query('SELECT count(*)::int AS n FROM node_worker.schedule_runs WHERE pid = $1', [standbyPid]);
    expect(rows).toEqual([{ n: 0 }]);
  }, 90000);

  it('remembers the slots it ran across a restart of the standby, and runs the latest missed one', async () => {
    const before = [...replica.log().matchAll(/sched-ticker: tick (\S+) recovery=true recorded=false/g)].map((m) => new Date(m[1]).getTime());
    const last = Math.max(...before);
    expect(fs.readdirSync(path.join(replica.datadir, 'node_worker', '.schedules-standby', 'sched-ticker')).length).toBeGreaterThan(0);
    replica.stop();
    // down for more than one 2 s slot
    await sleep(4500);
    const from = replica.log().length;
    await replica.start();
    const first = await replica.waitForLog(/sched-ticker: tick (\S+) recovery=true recorded=false late=(\w+)/, 30000, from);
    expect(first[2]).toBe('true');
    expect(new Date(first[1]).getTime()).toBeGreaterThan(last);
    // one late run: the next is on time
    const next = await replica.waitForLog(/sched-ticker: tick (\S+) recovery=true recorded=false late=(\w+)/, 30000, from + replica.log().slice(from).indexOf(first[0]) + first[0].length);
    expect(next[2]).toBe('false');
  }, 90000);
});
