/**
 * ctx.schedule on real clusters: `N seconds` schedules fire repeatedly and each run is recorded in
 * node_worker.schedule_runs; bad input is refused naming the field; only workers write the table;
 * a server restart neither runs a slot twice nor runs an interrupted slot again; missed slots run
 * once or are skipped; a start: 'consistent' worker's schedules run on a hot standby, unrecorded.
 * The cron arithmetic itself is test/unit/cron.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, sleep, waitFor } from './helpers/cluster';

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
  // sched-missed runs as a role that may insert its ticks and nothing else
  await primary.query('CREATE ROLE sched_role LOGIN');
  await primary.query('GRANT INSERT ON public.ticks TO sched_role');
  await primary.deployFile('schedules-ticker.ts');
  await primary.deployFile('schedules-missed.ts');
  await primary.query("SELECT node_worker.restart('sched-ticker')");
  await primary.query("SELECT node_worker.restart('sched-missed')");
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
});

describe('on a hot standby', () => {
  let replica: Cluster;
  afterAll(async () => replica?.destroy());

  it("runs a start: 'consistent' worker's schedules read-only, logged and not recorded", async () => {
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
});
