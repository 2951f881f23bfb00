/**
 * pg-node-worker/testing as a worker project uses it: deploy, call, notify, wake, launch, log
 * lines, settings; and its cleanup when the test process ends by a signal or is killed (the
 * clusters made in child processes running the built SDK, dist/testing).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from 'pg-node-worker/testing';
import { REPO } from './helpers/cluster';
import { fixture } from './helpers/workers';

let pg: TestCluster;

beforeAll(async () => {
  pg = await startCluster({ settings: { work_mem: '8MB', 'svc.flag': true } });
}, 60000);
afterAll(async () => pg?.stop());

describe('a cluster of pg-node-worker/testing', () => {
  it('runs as dev does: socket in its own 0700 directory, pg_node_worker preloaded, settings applied', async () => {
    expect((fs.statSync(pg.dir).mode & 0o777).toString(8)).toBe('700');
    const [row] = await pg.query<{ pre: string; wm: string; flag: string }>(
      "SELECT current_setting('shared_preload_libraries') AS pre, current_setting('work_mem') AS wm, current_setting('svc.flag') AS flag",
    );
    expect(row).toEqual({ pre: 'pg_node_worker', wm: '8MB', flag: 'true' });
    expect(pg.connection()).toEqual({ host: pg.dir, port: 5432, user: 'postgres', database: 'postgres' });
  });

  it('deploys a worker file and waits until it runs; call, notify and wake reach it', async () => {
    const { name, pid } = await pg.deploy(fixture('testing-svc.ts'));
    expect(name).toBe('svc');
    expect(pid).toBeGreaterThan(0);
    await pg.waitForLog('svc', /svc: ready/);
    expect(await pg.call('svc', { a: [1, 2] })).toEqual({ echo: { a: [1, 2] }, role: 'postgres' });
    await pg.notify('svc', 'hi');
    await pg.waitForLog('svc', /svc: message "hi"/);
    const from = pg.logs('svc').length;
    await pg.wake('svc');
    await pg.waitForLog('svc', /svc: sleep ended: wake/, { from });
    const [w] = (await pg.workers()).filter((r) => r.name === 'svc');
    expect(w).toMatchObject({ state: 'running', pid });
  });

  it('launches dynamic workers of a deployed bundle', async () => {
    const pid = await pg.launch('svc', { job: 7 });
    expect(pid).toBeGreaterThan(0);
    const line = await pg.waitForLog('svc', /svc: launched with \{"job":7\}/);
    expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} svc: launched/);
  });

  it('restarts the server: the deployed worker runs again, queries reconnect', async () => {
    const before = await pg.waitForWorker('svc');
    await pg.restartServer();
    const after = await pg.waitForWorker('svc', { notPid: before });
    expect(after).not.toBe(before);
    expect(await pg.call('svc', 1)).toEqual({ echo: 1, role: 'postgres' });
  });

  it('refuses bad settings and a server without the extension, saying what to do', async () => {
    await expect(startCluster({ settings: { 'bad name': 1 } })).rejects.toThrow(/invalid setting name "bad name"/);
    await expect(startCluster({ settings: { x: Number.NaN } })).rejects.toThrow(/setting x: NaN is not a finite number/);
    await expect(startCluster({ pgConfig: '/nonexistent/pg_config' })).rejects.toThrow(/cannot run \/nonexistent\/pg_config .*set PG_CONFIG/);
    await expect(startCluster({ pgConfig: '/bin/echo' })).rejects.toThrow(/pg_node_worker is not installed in the server of \/bin\/echo \(no --pkglibdir\/pg_node_worker\.so\)/);
  });

  it('waitUntil retries a predicate that throws, and a timeout says what it last threw', async () => {
    let n = 0;
    expect(await pg.waitUntil('the third try', () => { if (++n < 3) throw new Error(`try ${n}`); return n; })).toBe(3);
    await expect(pg.waitUntil('a table that never comes', () => pg.query('SELECT * FROM never_there'), 300))
      .rejects.toThrow(/timed out after 300 ms waiting for a table that never comes; the last try threw: relation "never_there" does not exist/);
  });

  it('a deploy of a worker that does not build fails with its error', async () => {
    const bad = path.join(pg.dir, 'broken.ts');
    fs.writeFileSync(bad, 'export default (;\n');
    await expect(pg.deploy(bad)).rejects.toThrow(/broken\.ts:1:\d+: Unexpected ";"/);
  });
});

/** A child process that starts a cluster with the built SDK and prints its directory. */
function childWithCluster(): Promise<{ pid: number; dir: string; postmaster: number }> {
  const sdk = path.join(REPO, 'dist', 'testing', 'index.js');
  const code =
    `require(${JSON.stringify(sdk)}).startCluster().then(async (c) => {` +
    `console.log(JSON.stringify({ dir: c.dir, postmaster: Number(require('fs').readFileSync(c.datadir + '/postmaster.pid', 'utf8').split('\\n')[0]) }));` +
    `setInterval(() => undefined, 1000); })`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ pid: child.pid!, ...JSON.parse(out.slice(0, nl)) });
    });
    child.on('exit', (code) => reject(new Error(`child exited (${code}) before its cluster was up`)));
  });
}

const gone = (pid: number) => {
  try {
    process.kill(pid, 0);
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
  } catch {
    return true;
  }
};

describe('cleanup', () => {
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGKILL'] as const) {
    it(`after ${sig} to the test process: the server stopped and the directory removed`, async () => {
      const c = await childWithCluster();
      expect(fs.existsSync(c.dir)).toBe(true);
      process.kill(c.pid, sig);
      // SIGKILL: the watchdog notices within a second
      await pg.waitUntil(`cleanup after ${sig}`, () => gone(c.postmaster) && !fs.existsSync(c.dir), 20000);
    }, 60000);
  }
});
