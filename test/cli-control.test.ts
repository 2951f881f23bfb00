/**
 * The CLI against running servers: deploy --restart swaps a worker's code while the server keeps
 * serving, what deploy says and does when it cannot restart the worker, and status.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync as cli } from './helpers/cli';
import { Cluster, PG_BIN, sleep } from './helpers/cluster';
import { templateFile } from './helpers/workers';

const ROOT = process.getuid?.() === 0;

/** Writes the worker swap, logging that its code `version` runs (test/workers/templates/versioned.ts). */
const swapFile = (c: Cluster, version: string) => templateFile(c.workersDir, 'versioned', 'swap', version);

describe('deploy --restart on a running server', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.create();
    await c.deployTemplate('versioned', 'swap', 'v1');
    await c.deployFile('cli-control-oops.ts');
    await c.start();
    c.run(path.join(PG_BIN, 'pgbench'), ['-i', '-s', '1', '-q', '-h', c.dir, '-p', String(c.port), '-U', 'postgres', 'postgres']);
  }, 60000);
  afterAll(async () => c?.destroy());

  it('without --restart, says how the new code starts and leaves the worker alone', async () => {
    const pid = await c.waitForWorker('swap');
    await c.waitForLog(new RegExp(`swap: code v1 running as pid ${pid}`));
    const r = await cli('deploy', swapFile(c, 'v1b'), '-D', c.datadir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      "next: the new code runs on the next restart of the worker (SELECT node_worker.restart('swap'), or deploy --restart) or of the server",
    );
    await sleep(500);
    expect(await c.workerPid('swap')).toBe(pid);
    expect(c.log()).not.toMatch(/swap: code v1b/);
  });

  it('swaps the code of one worker while clients keep running queries, without an error', async () => {
    const oldPid = await c.waitForWorker('swap');
    const postmaster = c.postmasterPid();
    const file = swapFile(c, 'v2');

    // two clients running pgbench's select-only transaction until told to stop
    const clients = await Promise.all([c.client(), c.client()]);
    let stop = false;
    let served = 0;
    const errors: string[] = [];
    const loops = clients.map(async (client) => {
      while (!stop) {
        try {
          await client.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [1 + Math.floor(Math.random() * 100000)]);
          served++;
        } catch (err) {
          errors.push(String(err));
        }
      }
    });
    try {
      await sleep(500);
      const before = served;
      const r = await cli('deploy', file, '-D', c.datadir, '--restart');
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const m = /restarted worker "swap" with the new code: pid (\d+) \(the server kept running\)/.exec(r.stdout);
      expect(m, r.stdout).not.toBeNull();
      const newPid = Number(m![1]);
      expect(newPid).not.toBe(oldPid);
      expect(await c.workerPid('swap')).toBe(newPid);
      await c.waitForLog(new RegExp(`swap: code v2 running as pid ${newPid}`), 5000);
      expect(c.postmasterPid()).toBe(postmaster);
      // the clients were served during the swap and after it
      const atSwap = served;
      expect(atSwap).toBeGreaterThan(before);
      await sleep(500);
      expect(served).toBeGreaterThan(atSwap);
    } finally {
      stop = true;
      await Promise.all(loops);
      await Promise.all(clients.map((client) => client.end()));
    }
    expect(errors).toEqual([]);
    expect(c.postmasterPid()).toBe(postmaster);
  });

  it('status prints node_worker.workers as an aligned table, from -D or -d', async () => {
    const pid = await c.waitForWorker('swap');
    for (const args of [['-D', c.datadir], ['-d', `host=${c.dir} port=${c.port} user=postgres dbname=postgres`]]) {
      const r = await cli('status', ...args);
      expect(r.status, r.stderr).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^name +kind +pid +state +restarts +started_at +last_exit_at +last_error$/);
      expect(lines[1]).toMatch(/^-+( +-+){7}$/);
      expect(lines[lines.length - 1]).toBe('(2 workers)');
      const [oops, swap] = [lines[2], lines[3]];
      expect(swap).toMatch(new RegExp(`^swap +static +${pid} +running +[1-9]\\d* +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d[+-]\\d\\d +\\d{4}-`));
      // pid null as '-', the error's first line only
      expect(oops).toMatch(/^oops +static +- +(stopped|failed) +\d+ +\d{4}-\S+ \S+ +\d{4}-\S+ \S+ +main failed: Error: oops on the first line$/);
      // columns line up under their headers: each header starts where its values start
      for (const col of ['kind', 'state', 'started_at', 'last_error']) {
        const at = lines[0].indexOf(col);
        for (const l of [oops, swap]) expect([col, l[at - 1], l[at]]).toEqual([col, ' ', expect.stringMatching(/\S/)]);
      }
      // pid and restarts are right-aligned
      const pidEnd = lines[0].indexOf('pid') + 3;
      expect(swap.slice(0, pidEnd).endsWith(String(pid))).toBe(true);
    }
  });

  it('status says CREATE EXTENSION is needed in a database without it', async () => {
    await c.query('CREATE DATABASE noext');
    const r = await cli('status', '-d', `host=${c.dir} port=${c.port} user=postgres dbname=noext`);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/the extension pg_node_worker is not created in database "noext".*CREATE EXTENSION pg_node_worker/);
  });
});

describe('deploy --restart when the worker cannot be restarted', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.create({ preload: false });
    // Debian's default for local connections: peer (the CLI, as root, must connect as the owner)
    if (ROOT) fs.writeFileSync(path.join(c.datadir, 'pg_hba.conf'), 'local all all peer\n');
    await c.start();
  }, 60000);
  afterAll(async () => c?.destroy());

  it('a server started without pg_node_worker preloaded: says to restart the server, and does not', async () => {
    const postmaster = c.postmasterPid();
    const file = swapFile(c, 'v1');
    // first deploy: adds pg_node_worker to shared_preload_libraries, which the server has not loaded
    const first = await cli('deploy', file, '-D', c.datadir, '--restart');
    expect(first.status, first.stdout + first.stderr).toBe(2);
    expect(first.stderr).toMatch(/worker "swap" is deployed, but the running server \(pid \d+\) has not loaded pg_node_worker/);
    expect(first.stderr).toMatch(/The server was not restarted: restart it to start the worker: pg_ctl restart -D /);
    // again: the configuration has it now; the CLI asks the running server (over peer authentication as root)
    const second = await cli('deploy', file, '-D', c.datadir, '--restart');
    expect(second.status, second.stdout + second.stderr).toBe(2);
    expect(second.stdout).toMatch(/restarting worker "swap" in the running server/);
    expect(second.stderr).toMatch(/has not loaded pg_node_worker/);
    expect(c.postmasterPid()).toBe(postmaster);
    expect(c.log()).not.toMatch(/swap: code/);
    // and status (same connection path) tells that the extension is missing
    const st = await cli('status', '-D', c.datadir);
    expect(st.status).toBe(2);
    expect(st.stderr).toMatch(/CREATE EXTENSION pg_node_worker/);
  });

  it('a stopped server: no restart attempted, the code runs at the next start', async () => {
    c.stop();
    const r = await cli('deploy', swapFile(c, 'v2'), '-D', c.datadir, '--restart');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/the server is not running: no restart attempted; the new code runs at the next start: pg_ctl start -D /);
    expect(fs.existsSync(path.join(c.datadir, 'postmaster.pid'))).toBe(false);
    await c.start();
    await c.waitForLog(/swap: code v2 running as pid \d+/);
  });
});
