/**
 * The CLI against a hostile data directory owner and hostile data. The tests run as root and the
 * clusters as the `postgres` OS user; each test does what that user (or text that reaches a
 * worker's error message) can do, then runs the CLI the way an admin would, as root.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { bundleWorker } from '../src/cli/bundle';
import { deploy } from '../src/cli/deploy';
import { CliError } from '../src/cli/errors';
import { definitionMetadata } from '../src/define';
import { CLI, cli } from './helpers/cli';
import { Cluster, REPO, running, sleep, waitFor } from './helpers/cluster';
import { fixture, templateFile, workerDirFiles } from './helpers/workers';

const ROOT = process.getuid?.() === 0;

const clusters: Cluster[] = [];
const scratch: string[] = [];
async function cluster(): Promise<Cluster> {
  const c = await Cluster.create();
  clusters.push(c);
  return c;
}
/** A directory of root's, mode 0755, holding one root-only file `precious`. */
function rootDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'pgnw-rootonly-'));
  fs.chmodSync(d, 0o755);
  fs.writeFileSync(path.join(d, 'precious'), 'root only\n', { mode: 0o600 });
  scratch.push(d);
  return d;
}
afterAll(async () => {
  for (const c of clusters) await c.destroy();
  for (const d of scratch) fs.rmSync(d, { recursive: true, force: true });
});

/** What the postgres OS user does: runs a shell command as the cluster's OS user. */
function asPostgres(c: Cluster, script: string): void {
  c.run('/bin/sh', ['-c', script]);
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Writes the worker file of test/workers/templates/idle.ts named `name` among the cluster's sources. */
const idleFile = (c: Cluster, name: string, opts: { callers?: string[] } = {}) => templateFile(c.workersDir, 'idle', name, opts);

const owner = (p: string) => {
  const st = fs.lstatSync(p);
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
};

describe.runIf(ROOT)('deploy as root into a data directory the postgres user controls', () => {
  it('refuses a symlink at $PGDATA/node_worker: the linked directory keeps its owner and gets no file', async () => {
    const c = await cluster();
    const target = rootDir();
    const before = owner(target);
    const link = path.join(c.datadir, 'node_worker');
    asPostgres(c, `ln -s ${q(target)} ${q(link)}`);

    const r = cli(['deploy', idleFile(c, 'w13'), '-D', c.datadir]);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/node_worker.* is a symbolic link/);
    expect(owner(target)).toEqual(before);
    expect(before.uid).toBe(0);
    expect(fs.readdirSync(target)).toEqual(['precious']);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it('refuses a symlink at any component of a worker directory inside the data directory', async () => {
    const c = await cluster();
    const target = rootDir();
    asPostgres(
      c,
      `ln -s ${q(target)} ${q(path.join(c.datadir, 'workers'))} && ` +
        `echo "node_worker.directory = 'workers/sub'" >> ${q(path.join(c.datadir, 'postgresql.conf'))}`,
    );
    const r = cli(['deploy', idleFile(c, 'w13'), '-D', c.datadir]);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/workers.* is a symbolic link/);
    expect(fs.readdirSync(target)).toEqual(['precious']);
    expect(owner(target).uid).toBe(0);
  });

  it('refuses a postgresql.auto.conf that links to a root-only file: nothing is read through it or written over it', async () => {
    const c = await cluster();
    const secret = path.join(rootDir(), 'precious');
    const auto = path.join(c.datadir, 'postgresql.auto.conf');
    asPostgres(c, `rm -f ${q(auto)} && ln -s ${q(secret)} ${q(auto)}`);

    const r = cli(['deploy', idleFile(c, 'w13'), '-D', c.datadir]);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/postgresql\.auto\.conf is a symbolic link/);
    expect(fs.lstatSync(auto).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(secret, 'utf8')).toBe('root only\n');
    expect(owner(secret)).toEqual({ uid: 0, gid: 0, mode: 0o600 });
    // checked before anything was written
    expect(fs.existsSync(path.join(c.datadir, 'node_worker'))).toBe(false);
  });

  it('refuses a postmaster.pid that links to a root-only file: none of its lines reaches psql or the output', async () => {
    const c = await cluster();
    const secret = path.join(rootDir(), 'pidlike');
    fs.writeFileSync(secret, `${process.pid}\n/x\n1700000000\n5432\nTOPSECRET-LINE-5\n`, { mode: 0o600 });
    asPostgres(c, `ln -s ${q(secret)} ${q(path.join(c.datadir, 'postmaster.pid'))}`);

    const r = cli(['status', '-D', c.datadir]);
    expect(r.stdout + r.stderr).not.toContain('TOPSECRET');
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/postmaster\.pid is a symbolic link/);
  });

  it('a node_worker.directory setting (the postgres user can write it) names no directory of root\'s, existing or new', async () => {
    const c = await cluster();
    const target = rootDir();
    const auto = path.join(c.datadir, 'postgresql.auto.conf');
    const file = idleFile(c, 'w13');

    // as ALTER SYSTEM SET node_worker.directory = ... would
    asPostgres(c, `echo "node_worker.directory = '${target}'" >> ${q(auto)}`);
    let r = cli(['deploy', file, '-D', c.datadir]);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/node_worker\.directory/);
    expect(r.stderr).toMatch(/--directory/);
    expect(fs.readdirSync(target)).toEqual(['precious']);

    const fresh = path.join(target, 'new');
    asPostgres(c, `echo "node_worker.directory = '${fresh}'" >> ${q(auto)}`);
    r = cli(['deploy', file, '-D', c.datadir]);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(fs.existsSync(fresh)).toBe(false);
    expect(fs.readdirSync(target)).toEqual(['precious']);

    // a directory of the postgres user's own, outside the data directory: fine
    const own = path.join(c.dir, 'elsewhere');
    asPostgres(c, `mkdir ${q(own)} && echo "node_worker.directory = '${own}'" >> ${q(auto)}`);
    r = cli(['deploy', file, '-D', c.datadir]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(workerDirFiles(own)).toEqual(['w13.js', 'w13.json']);
    const pg = owner(c.datadir);
    expect(owner(path.join(own, 'w13.json'))).toMatchObject({ uid: pg.uid, gid: pg.gid });

    // the admin names root's directory on the command line: used, its owner left alone
    r = cli(['deploy', file, '-D', c.datadir, '--directory', target]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(fs.readdirSync(target).sort()).toEqual(['precious', 'w13.js', 'w13.json']);
    expect(owner(target).uid).toBe(0);
    expect(owner(path.join(target, 'w13.js'))).toMatchObject({ uid: pg.uid, gid: pg.gid, mode: 0o640 });
  });

  it('--directory: follows links on the admin\'s path, but none the postgres user could have placed', async () => {
    const c = await cluster();
    const target = rootDir();
    const file = idleFile(c, 'w13');
    // the admin means ~postgres-like c.dir/workers; postgres got there first
    const planted = path.join(c.dir, 'workers');
    asPostgres(c, `ln -s ${q(target)} ${q(planted)}`);
    let r = cli(['deploy', file, '-D', c.datadir, '--directory', planted]);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/workers is a symbolic link .* could have placed/);
    expect(fs.readdirSync(target)).toEqual(['precious']);

    // nor when a link of root's leads on to that one
    const other = rootDir();
    fs.symlinkSync(c.dir, path.join(other, 'to-postgres'));
    r = cli(['deploy', file, '-D', c.datadir, '--directory', path.join(other, 'to-postgres', 'workers')]);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/workers is a symbolic link .* could have placed/);
    expect(fs.readdirSync(target)).toEqual(['precious']);

    // links of root's, in directories of root's (absolute, relative with ..): followed
    fs.symlinkSync(target, path.join(other, 'link'));
    fs.symlinkSync(`../${path.basename(target)}`, path.join(other, 'rel'));
    r = cli(['deploy', file, '-D', c.datadir, '--directory', path.join(other, 'link', 'sub')]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    r = cli(['deploy', file, '-D', c.datadir, '--directory', path.join(other, 'rel', 'sub2')]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const pg = owner(c.datadir);
    for (const sub of ['sub', 'sub2']) {
      expect(workerDirFiles(path.join(target, sub))).toEqual(['w13.js', 'w13.json']);
      expect(owner(path.join(target, sub))).toEqual({ uid: pg.uid, gid: pg.gid, mode: 0o750 });
    }
  });

  it('never changes the owner of a directory it did not create', async () => {
    const c = await cluster();
    const dir = path.join(c.datadir, 'node_worker');
    fs.mkdirSync(dir, { mode: 0o755 }); // root made it, say by hand
    const r = cli(['deploy', idleFile(c, 'w13'), '-D', c.datadir]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(owner(dir)).toEqual({ uid: 0, gid: 0, mode: 0o755 });
    expect(r.stderr).toMatch(/warning: .*node_worker belongs to uid 0, not to the data directory's owner/);
    const pg = owner(c.datadir);
    expect(owner(path.join(dir, 'w13.json'))).toMatchObject({ uid: pg.uid, gid: pg.gid, mode: 0o640 });
  });

  it('build does not write through a link the postgres user planted in the output directory', async () => {
    const c = await cluster();
    const victim = path.join(rootDir(), 'precious');
    const file = idleFile(c, 'w13');
    asPostgres(c, `ln -s ${q(victim)} ${q(path.join(c.dir, 'w13.js'))}`);
    const r = cli(['build', file], c.dir); // an admin in ~postgres: ./w13.js
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(fs.readFileSync(victim, 'utf8')).toBe('root only\n');
    expect(fs.lstatSync(path.join(c.dir, 'w13.js')).isFile()).toBe(true);
  });
});

describe('status escapes what the server says', () => {
  it('a worker error carrying terminal escapes reaches the terminal escaped, through -D and -d', async () => {
    const c = await cluster();
    await c.deployFile('security-cli-evil.ts');
    await c.deployFile('security-cli-evil2.ts');
    await c.start();
    await c.query('CREATE EXTENSION pg_node_worker');
    await waitFor('both workers to fail', async () => {
      const rows = await c.query("SELECT name FROM node_worker.workers WHERE state = 'failed' AND last_error LIKE '%pwned%'");
      return rows.length === 2;
    });

    const raw = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
    for (const args of [
      ['status', '-D', c.datadir],
      ['status', '-d', `host=${c.dir} port=${c.port} user=postgres dbname=postgres`],
    ]) {
      const r = cli(args);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).not.toMatch(raw);
      expect(r.stderr).not.toMatch(raw);
      expect(r.stdout).toContain('\\x1b]0;pwned\\x07\\x1b[2J');
      expect(r.stdout).toContain('\\x1b]0;pwned\\x07\\u009b31m\\u202eevil\\x0d');
    }
  });

  it('escapes C0 (but newlines in messages), DEL, C1 and bidi controls, idempotently', async () => {
    const { escapeControls } = await import('../src/cli/terminal');
    expect(escapeControls('a\x1b[2Jb\x07\x7f\x9b\u202e\u2066\u200f\r\t\n')).toBe(
      'a\\x1b[2Jb\\x07\\x7f\\u009b\\u202e\\u2066\\u200f\\x0d\\x09\\x0a',
    );
    const multi = 'line 1\n\tline 2 \x1b]0;x\x07';
    expect(escapeControls(multi, { multiline: true })).toBe('line 1\n\tline 2 \\x1b]0;x\\x07');
    expect(escapeControls(escapeControls(multi))).toBe(escapeControls(multi));
    expect(escapeControls('é ü 漢字 ✓ \\x41')).toBe('é ü 漢字 ✓ \\x41');
  });
});

describe('dev', () => {
  let child: ChildProcess | undefined;
  let devDir: string | undefined;
  const srcDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgnw-devsrc-'));
  scratch.push(srcDir);

  afterEach(async () => {
    // a failed test leaves neither the dev process nor its cluster
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (devDir && fs.existsSync(path.join(devDir, 'data', 'postmaster.pid'))) {
      const pid = Number(fs.readFileSync(path.join(devDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0 && running(pid)) process.kill(pid, 'SIGQUIT');
      await sleep(500);
    }
    if (devDir) fs.rmSync(devDir, { recursive: true, force: true });
    child = devDir = undefined;
  });

  /** Starts dev on a worker file and waits until the server runs; returns its output, exit and postmaster pid. */
  async function startDev(port: number, file = templateFile(srcDir, 'idle', 'hup')): Promise<{ output: () => string; exited: Promise<number | null>; postmaster: number }> {
    let output = '';
    const exited = new Promise<number | null>((resolve) => {
      child = spawn(process.execPath, [CLI, 'dev', file, '--port', String(port)], { cwd: REPO, env: { ...process.env } });
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      child.on('exit', (code) => resolve(code));
    });
    const m = await waitFor('dev to start the server', () => /connect with: psql -h (\S+) /.exec(output), 30000).catch((e) => {
      throw new Error(`${(e as Error).message}\n--- dev output ---\n${output}`);
    });
    devDir = m[1];
    const postmaster = Number(fs.readFileSync(path.join(devDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(running(postmaster)).toBe(true);
    return { output: () => output, exited, postmaster };
  }

  it.each([
    ['SIGHUP', 5441],
    ['SIGQUIT', 5443],
  ] as const)('%s stops the server and removes the directory (SIGHUP: a closed terminal or a dropped SSH session)', async (signal, port) => {
    // what the worker logs reaches the terminal escaped, like everything else dev prints
    const { output, exited, postmaster } = await startDev(port, fixture('security-cli-hup.ts'));
    await waitFor('the worker\'s log line', () => /hup: title .*here/.test(output()), 15000).catch((e) => {
      throw new Error(`${(e as Error).message}\n--- dev output ---\n${output()}`);
    });
    child!.kill(signal);
    await waitFor('the dev server to stop', () => !running(postmaster), 15000).catch((e) => {
      throw new Error(`${(e as Error).message}\n--- dev output ---\n${output()}`);
    });
    await waitFor('the dev directory to go', () => !fs.existsSync(devDir!), 5000);
    expect(await exited, output()).toBe(0);
    expect(output()).toContain(`stopped the server and removed ${devDir}`);
    expect(output()).toContain('hup: title \\x1b]0;pwned\\x07 here');
    expect(output()).not.toMatch(/[\x1b\x07]/);
  }, 60000);

  it('SIGHUP with the terminal gone (its output pipes closed) cleans up too', async () => {
    const { output, postmaster } = await startDev(5442);
    child!.stdout!.destroy();
    child!.stderr!.destroy();
    child!.kill('SIGHUP');
    await waitFor('the dev server to stop', () => !running(postmaster), 15000).catch((e) => {
      throw new Error(`${(e as Error).message}\n--- dev output ---\n${output()}`);
    });
    await waitFor('the dev directory to go', () => !fs.existsSync(devDir!), 5000);
    await waitFor('dev to exit', () => child!.exitCode !== null, 5000);
    expect(child!.exitCode).toBe(0);
  }, 60000);
});

describe('callers are measured in UTF-8 bytes, as the server does', () => {
  // ten roles of 32 characters, 30 of them 'é': 329 characters, 629 bytes
  const roles = Array.from({ length: 10 }, (_, i) => `r${i}` + 'é'.repeat(30));
  const sha = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

  it('the limit is 511 bytes of the comma-separated list', () => {
    expect(roles.join(',').length).toBe(329);
    expect(Buffer.byteLength(roles.join(','))).toBe(629);
    const def = { name: 'w', main() {} };
    expect(() => definitionMetadata({ ...def, callers: roles })).toThrow(/callers: the list is 629 bytes .*511/);
    const fits = ['a'.repeat(63), ...Array.from({ length: 7 }, () => 'é'.repeat(31))]; // 63 + 7*62 + 7 = 504 bytes
    expect(definitionMetadata({ ...def, callers: fits }).callers).toEqual(fits);
  });

  it('deploy --restart refuses such a list before writing: the running worker and its files stay as they were', async () => {
    const c = await cluster();
    await c.deployTemplate('idle', 'w17');
    await c.start();
    await c.query(roles.map((r) => `CREATE ROLE "${r}";`).join('\n'));
    const pid = await c.waitForWorker('w17');
    const manifest = path.join(c.datadir, 'node_worker', 'w17.json');
    const bundle = path.join(c.datadir, 'node_worker', 'w17.js');
    const before = [sha(manifest), sha(bundle)];

    const file = idleFile(c, 'w17', { callers: roles });
    const r = cli(['deploy', file, '-D', c.datadir, '--restart']);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/callers: the list is 629 bytes/);
    expect([sha(manifest), sha(bundle)]).toEqual(before);
    expect(workerDirFiles(path.dirname(manifest))).toEqual(['w17.js', 'w17.json']);
    expect(await c.workerPid('w17')).toBe(pid);
  });

  it('a manifest the server refuses at --restart is rolled back to the previous deployment, or removed', async () => {
    const c = await cluster();
    await c.deployTemplate('idle', 'w17');
    await c.start();
    await c.query('CREATE EXTENSION pg_node_worker');
    const pid = await c.waitForWorker('w17');
    const dir = path.join(c.datadir, 'node_worker');
    const before = [fs.readFileSync(path.join(dir, 'w17.json')), fs.readFileSync(path.join(dir, 'w17.js'))];

    // a definition the CLI's checks did not see (as from a CLI and a server of different versions)
    const deployRefused = async (name: string) => {
      const file = idleFile(c, name, { callers: ['changed'] });
      const built = await bundleWorker(file, { nodeTarget: 'node18' });
      const prebuilt = { ...built, nodeTarget: 'node18', definition: { ...built.definition, callers: roles } };
      const lines: string[] = [];
      const done = deploy(file, { pgdata: c.datadir, restart: true, prebuilt, log: (l) => lines.push(l), warn: (l) => lines.push(l) });
      await expect(done).rejects.toBeInstanceOf(CliError);
      return (await done.catch((e: Error) => e)) as CliError;
    };

    const e = await deployRefused('w17');
    expect(e.message).toMatch(/the server refused the manifest of worker "w17".*callers.*511 bytes/s);
    expect(e.message).toMatch(/previous deployment .* restored/);
    expect([fs.readFileSync(path.join(dir, 'w17.json')), fs.readFileSync(path.join(dir, 'w17.js'))]).toEqual(before);
    expect(workerDirFiles(dir)).toEqual(['w17.js', 'w17.json']);
    expect(await c.workerPid('w17')).toBe(pid);

    const e2 = await deployRefused('w17new');
    expect(e2.message).toMatch(/the server refused the manifest of worker "w17new"/);
    expect(e2.message).toMatch(/removed/);
    expect(workerDirFiles(dir)).toEqual(['w17.js', 'w17.json']);
    const rows = await c.query("SELECT name FROM node_worker.workers WHERE name = 'w17new'");
    expect(rows).toEqual([]);
  });
});
