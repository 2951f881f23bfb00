/**
 * The CLI against running servers: deploy --restart swaps a worker's code while the server keeps
 * serving (issue #3), what deploy says and does when it cannot restart the worker, and status.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, PG_BIN, REPO, sleep } from './helpers/cluster';

const CLI = path.join(REPO, 'bin', 'pg-node-worker.js');
const ROOT = process.getuid?.() === 0;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Environment of the CLI: as root it must find the database user itself (the data directory's owner). */
function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (ROOT) delete env.PGUSER;
  else env.PGUSER = 'postgres'; // the clusters' superuser; not root: the owner is whoever runs the tests
  return env;
}

function run(file: string, args: string[], opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, uid: opts.uid, gid: opts.gid, cwd: '/' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const cli = (...args: string[]) => run(process.execPath, [CLI, ...args], { env: cliEnv() });

/** uid/gid of the server's OS user (the tests' clusters run as postgres when we are root). */
function serverIds(datadir: string): { uid?: number; gid?: number } {
  if (!ROOT) return {};
  const st = fs.statSync(datadir);
  return { uid: st.uid, gid: st.gid };
}

const swapWorker = (version: string) => `
import { defineWorker } from 'pg-node-worker';
export default defineWorker({
  name: 'swap',
  restart: 1,
  async main(ctx) {
    ctx.log.info('code ${version} running as pid ' + ctx.worker.pid);
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
`;

function writeWorker(c: Cluster, name: string, source: string): string {
  const file = path.join(c.workersDir, `${name}.ts`);
  fs.writeFileSync(file, source);
  return file;
}

describe('deploy --restart on a running server', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.create();
    c.deploy('swap', swapWorker('v1'));
    c.deploy(
      'oops',
      `import { defineWorker } from 'pg-node-worker';
       export default defineWorker({ name: 'oops', restart: 'never', async main() {
         throw new Error('oops on the first line\\nand more on the second');
       } });`,
    );
    await c.start();
    c.run(path.join(PG_BIN, 'pgbench'), ['-i', '-s', '1', '-q', '-h', c.dir, '-p', String(c.port), '-U', 'postgres', 'postgres']);
  }, 60000);
  afterAll(async () => c?.destroy());

  it('without --restart, says how the new code starts and leaves the worker alone', async () => {
    const pid = await c.waitForWorker('swap');
    await c.waitForLog(new RegExp(`swap: code v1 running as pid ${pid}`));
    const r = await cli('deploy', writeWorker(c, 'swap', swapWorker('v1b')), '-D', c.datadir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      "next: the new code runs on the next restart of the worker (SELECT node_worker.restart('swap'), or deploy --restart) or of the server",
    );
    await sleep(500);
    expect(await c.workerPid('swap')).toBe(pid);
    expect(c.log()).not.toMatch(/swap: code v1b/);
  });

  it('swaps the code of one worker while a pgbench client keeps running without errors', async () => {
    const oldPid = await c.waitForWorker('swap');
    const postmaster = c.postmasterPid();
    const file = writeWorker(c, 'swap', swapWorker('v2'));

    let benchDone = false;
    const bench = run(
      path.join(PG_BIN, 'pgbench'),
      ['-n', '-c', '2', '-T', '6', '-S', '-h', c.dir, '-p', String(c.port), '-U', 'postgres', 'postgres'],
      serverIds(c.datadir),
    ).finally(() => (benchDone = true));
    await sleep(1500);
    expect(benchDone).toBe(false);

    const r = await cli('deploy', file, '-D', c.datadir, '--restart');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(benchDone).toBe(false); // the swap happened while the client was running
    const m = /restarted worker "swap" with the new code: pid (\d+) \(the server kept running\)/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const newPid = Number(m![1]);
    expect(newPid).not.toBe(oldPid);
    expect(await c.workerPid('swap')).toBe(newPid);
    await c.waitForLog(new RegExp(`swap: code v2 running as pid ${newPid}`), 5000);
    expect(c.postmasterPid()).toBe(postmaster);

    const b = await bench;
    expect(b.status, b.stdout + b.stderr).toBe(0);
    expect(b.stdout).toMatch(/number of failed transactions: 0 \(0\.000%\)/);
    expect(Number(/number of transactions actually processed: (\d+)/.exec(b.stdout)?.[1])).toBeGreaterThan(100);
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
    const file = writeWorker(c, 'swap', swapWorker('v1'));
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
    const r = await cli('deploy', writeWorker(c, 'swap', swapWorker('v2')), '-D', c.datadir, '--restart');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/the server is not running: no restart attempted; the new code runs at the next start: pg_ctl start -D /);
    expect(fs.existsSync(path.join(c.datadir, 'postmaster.pid'))).toBe(false);
    await c.start();
    await c.waitForLog(/swap: code v2 running as pid \d+/);
  });
});
