/**
 * A worker's life as the postmaster sees it: start, reload, stop, crash,
 * restart, kill -9, broken bundles, several workers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, Cluster, cpuMs, processAgeMs, sleep, waitFor } from './helpers/cluster';
import { fixtureLine } from './helpers/workers';

const GRACE_MS = 2000;

describe('a deployed worker', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create({ settings: { 'pgnw_test.value': "'one'" } });
    await cluster.deployTemplate('idle', 'idler');
    await cluster.deployFile('lifecycle-napper.ts');
    await cluster.start();
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('runs after deploy + restart, visible in pg_stat_activity as node_worker with its name', async () => {
    const pid = await cluster.waitForWorker('idler');
    const rows = await cluster.query('SELECT backend_type, application_name, datname FROM pg_stat_activity WHERE pid = $1', [pid]);
    expect(rows).toEqual([{ backend_type: 'node_worker', application_name: 'idler', datname: 'postgres' }]);
    await cluster.waitForLog(new RegExp(`\\[${pid}\\] LOG:  idler: started as pid ${pid}`));
  });

  it('sleeps without using CPU when idle', async () => {
    const pid = await cluster.waitForWorker('idler');
    // the runtime's settling a second after start (a GC, pages given back) is not idling
    await sleep(Math.max(0, 2500 - processAgeMs(pid)));
    const before = cpuMs(pid);
    await sleep(2000);
    // a busy loop would use ~2000 ms in 2 s; an idle worker a few (a GC after start-up), so the
    // bound is a tenth of busy
    const used = cpuMs(pid) - before;
    console.log(`[lifecycle] idle worker: ${used.toFixed(1)} ms of CPU in 2 s`);
    expect(used).toBeLessThanOrEqual(200);
  });

  it('runs onReload after SIGHUP with the new settings', async () => {
    const from = cluster.log().length;
    const conf = path.join(cluster.datadir, 'postgresql.conf');
    fs.appendFileSync(conf, "\npgnw_test.value = 'two'\n");
    cluster.reload();
    await cluster.waitForLog(/idler: reloaded, setting is two/, 10000, from);
  });

  it('ends a pending ctx.sleep() with "reload" on pg_reload_conf(), long before its timeout', async () => {
    await cluster.waitForLog(/napper: napping/);
    const from = cluster.log().length;
    await cluster.query('SELECT pg_reload_conf()');
    const m = await cluster.waitForLog(/napper: sleep ended with (\w+) after (\d+) ms/, 20000, from);
    expect(m[1]).toBe('reload');
    expect(Number(m[2])).toBeLessThan(30000);
  });

  it('stops within the grace period on pg_ctl stop -m fast when idle, and starts again', async () => {
    const pid = await cluster.waitForWorker('idler');
    const from = cluster.log().length;
    const seconds = cluster.stop('fast');
    expect(seconds).toBeLessThan(GRACE_MS / 1000 + 1);
    expect(alive(pid)).toBe(false);
    const log = cluster.log().slice(from);
    expect(log).toMatch(/idler: stopping cleanly/);
    expect(log).not.toMatch(/terminated by signal|abnormal/);
    await cluster.start();
    await cluster.waitForWorker('idler');
  });
});

describe('stopping a busy worker', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create();
    await cluster.deployTemplate('stuck', 'sleeper', 'sql');
    await cluster.deployTemplate('stuck', 'spinner', 'js');
    await cluster.start();
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('stops within grace + 1 s while one worker is in pg_sleep(600) and another in while (true) {}', async () => {
    await cluster.waitForLog(/sleeper: entering pg_sleep/);
    await cluster.waitForLog(/spinner: entering busy loop/);
    const pids = [await cluster.waitForWorker('sleeper'), await cluster.waitForWorker('spinner')];
    await sleep(300);
    const seconds = cluster.stop('fast');
    expect(seconds).toBeLessThan(GRACE_MS / 1000 + 1);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    const log = cluster.log();
    // the statement was cancelled at once, not after the grace period
    expect(log).toMatch(/sleeper: pg_sleep ended with 57014, aborted=true/);
    expect(log).not.toMatch(/terminated by signal|abnormal database system shutdown/);
  });
});

describe('crashes and restarts', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create();
    await cluster.deployTemplate('idle', 'steady');
    for (const w of ['thrower', 'exiter', 'finisher', 'broken', 'early']) await cluster.deployFile(`lifecycle-${w}.ts`);
    // a manifest that is garbage, and one whose bundle is missing
    fs.writeFileSync(path.join(cluster.datadir, 'node_worker', 'garbage.json'), '{ this is not json');
    fs.writeFileSync(path.join(cluster.datadir, 'node_worker', 'nobundle.json'),
      JSON.stringify({ format: 1, name: 'nobundle', database: 'postgres', role: null, restart: 1, start: 'recovery-finished', bundle: 'nobundle.js' }));
    await cluster.start();
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('logs a broken manifest or missing bundle, and starts the server and the other workers', async () => {
    const log = cluster.log();
    expect(log).toMatch(/skipping worker manifest ".*garbage\.json": invalid JSON/);
    expect(log).toMatch(/skipping worker manifest ".*nobundle\.json": cannot open bundle file ".*nobundle\.js"/);
    await cluster.waitForWorker('steady');
    expect(await cluster.query('SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
  });

  it('restarts a worker after an uncaught exception, after its interval, logging the stack; others untouched', async () => {
    const steady = await cluster.waitForWorker('steady');
    // the stack points at the line of the user's .ts that threw (the bundle's inline source map)
    const line = fixtureLine('lifecycle-thrower.ts', "throw new Error('uncaught on purpose')");
    const first = await cluster.waitForLog(new RegExp(`\\[(\\d+)\\] ERROR:  thrower: uncaught exception: Error: uncaught on purpose\\n\\s*at .*lifecycle-thrower\\.ts:${line}:\\d+`));
    const crashedAt = performance.now();
    const firstPid = Number(first[1]);
    await waitFor('a second thrower process', () => {
      const m = [...cluster.log().matchAll(/\[(\d+)\] LOG:  thrower: thrower started/g)].map((x) => Number(x[1]));
      return m.some((p) => p !== firstPid);
    }, 10000);
    // restart: 2 seconds (postmaster granularity is coarse; allow early by < 1 s)
    expect(performance.now() - crashedAt).toBeGreaterThan(1000);
    expect(cluster.log()).toMatch(new RegExp(`background worker "node_worker" \\(PID ${firstPid}\\) exited with exit code 1`));
    expect(await cluster.workerPid('steady')).toBe(steady);
    expect(cluster.log()).not.toMatch(/terminated by signal|terminating any other active server processes/);
  });

  it('maps process.exit(3) to exit code 1: no crash, no cluster reset', async () => {
    const m = await cluster.waitForLog(/\[(\d+)\] LOG:  exiter: exiter calls process.exit\(3\)/);
    await cluster.waitForLog(new RegExp(`\\(PID ${m[1]}\\) exited with exit code 1`));
    expect(cluster.log()).not.toMatch(/terminating any other active server processes/);
  });

  it('does not restart a worker whose main resolved (exit 0)', async () => {
    const m = await cluster.waitForLog(/\[(\d+)\] LOG:  finisher: finisher done/);
    await waitFor('finisher to exit', () => !alive(Number(m[1])));
    await sleep(2500);
    // exit code 0 is logged by the postmaster at DEBUG1 only; a crash or exit 1 at LOG
    expect(cluster.log().match(/finisher: finisher done/g)?.length).toBe(1);
    expect(cluster.log()).not.toMatch(new RegExp(`\\(PID ${m[1]}\\) (exited with exit code 1|was terminated)`));
    expect(await cluster.workerPid('finisher')).toBeNull();
  });

  it("runs a start: 'postmaster' worker without a database connection; SQL is refused with 08003", async () => {
    await cluster.waitForLog(/early: early: no SQL: 08003 this worker has no database connection \/ database=null/);
  });

  it('logs a worker whose main throws at start with its stack', async () => {
    await cluster.waitForLog(/ERROR:  broken: main failed: Error: broken at start\n\s+at /);
  });

  it('recovers from kill -9 of a worker: cluster back, worker back', async () => {
    const pid = await cluster.waitForWorker('steady');
    process.kill(pid, 'SIGKILL');
    // the postmaster resets shared memory after a SIGKILL: clients reconnect
    await waitFor('the cluster to accept queries again', async () => (await cluster.query('SELECT 1 AS ok'))[0].ok === 1, 20000);
    const again = await cluster.waitForWorker('steady', 20000, pid);
    expect(again).not.toBe(pid);
  });
});

describe('several workers', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create();
    await cluster.start();
    await cluster.query('CREATE ROLE alice LOGIN');
    await cluster.query('CREATE ROLE bob LOGIN');
    await cluster.query('CREATE DATABASE db_a OWNER alice');
    await cluster.query('CREATE DATABASE db_b OWNER bob');
    cluster.stop();
    await cluster.deployTemplate('whoami', 'wa', 'db_a', 'alice');
    await cluster.deployTemplate('whoami', 'wb', 'db_b', 'bob');
    await cluster.start();
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('run in their own databases as their own roles', async () => {
    const a = await waitFor('wa to write', async () => (await cluster.query('SELECT * FROM seen', [], 'db_a'))[0], 15000);
    const b = await waitFor('wb to write', async () => (await cluster.query('SELECT * FROM seen', [], 'db_b'))[0], 15000);
    expect(a).toEqual({ u: 'alice', d: 'db_a' });
    expect(b).toEqual({ u: 'bob', d: 'db_b' });
    const owners = await cluster.query("SELECT tableowner FROM pg_tables WHERE tablename = 'seen'", [], 'db_a');
    expect(owners).toEqual([{ tableowner: 'alice' }]);
  });
});
