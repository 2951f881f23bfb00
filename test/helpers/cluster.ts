/**
 * Throwaway PostgreSQL clusters for the tests: initdb into a temp dir, a
 * unix socket in that dir (no TCP), the extension preloaded, run as an
 * unprivileged OS user when the tests run as root (PostgreSQL refuses root).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { fixture, templateFile, type TemplateArgs, type TemplateName } from './workers';

export const REPO = path.resolve(__dirname, '..', '..');

function pgConfig(flag: string): string {
  return execFileSync(process.env.PG_CONFIG ?? 'pg_config', [flag], { encoding: 'utf8' }).trim();
}

export const PG_BIN = process.env.PG_BIN ?? pgConfig('--bindir');

/** The Node version the installed runtime embeds (make install writes it next to runtime.js). */
export function installedNodeVersion(): string {
  return fs.readFileSync(path.join(pgConfig('--pkglibdir'), 'pg_node_worker', 'node-version'), 'utf8').trim();
}

/** uid/gid to run the server as: ourselves, or `postgres` when we are root. */
function serverUser(): { uid: number; gid: number; name: string } | null {
  if (process.getuid?.() !== 0) return null;
  const name = process.env.PGNW_TEST_USER ?? 'postgres';
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid, name };
}

const USER = serverUser();

/**
 * Where clusters (and the run's initdb template) live: PGNW_TEST_TMPDIR; else, under vitest,
 * /dev/shm when it is a writable memory file system with at least 2 GB free; else the OS temp
 * directory (the benchmarks keep their data on disk, as a server's is). A test cluster is thrown
 * away (fsync is off anyway); on a memory file system the copy of the template and the server's
 * file I/O cost far less CPU (on ext4, `cp -a` of the template alone was 8% of a suite's CPU
 * time, in the file system's block lookups), and CI's 2 cores are shared between suites.
 */
export const CLUSTER_TMPDIR: string = process.env.PGNW_TEST_TMPDIR || (process.env.VITEST !== undefined && memoryTmpDir()) || os.tmpdir();

function memoryTmpDir(): string {
  const shm = '/dev/shm';
  try {
    fs.accessSync(shm, fs.constants.W_OK);
    const st = fs.statfsSync(shm);
    const TMPFS_MAGIC = 0x01021994;
    return st.type === TMPFS_MAGIC && st.bavail * st.bsize >= 2 * 1024 ** 3 ? shm : '';
  } catch {
    return '';
  }
}

/** how every cluster's data directory is made (test/helpers/initdb-template.ts copies one) */
const INITDB_ARGS = ['-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'];

declare module 'vitest' {
  export interface ProvidedContext {
    /** the data directory every cluster of the run copies (test/helpers/initdb-template.ts) */
    initdbTemplate: string;
  }
}

/**
 * Runs initdb into datadir (inside dir, which the server's OS user gets) as Cluster.create does:
 * for the run's template (test/helpers/initdb-template.ts).
 */
export function initdb(dir: string, datadir: string): void {
  if (USER) fs.chownSync(dir, USER.uid, USER.gid);
  const r = spawnSync(path.join(PG_BIN, 'initdb'), ['-D', datadir, ...INITDB_ARGS], {
    encoding: 'utf8',
    cwd: dir,
    uid: USER?.uid,
    gid: USER?.gid,
    env: { ...process.env, LC_ALL: 'C', HOME: dir },
    timeout: 120000,
  });
  if (r.status !== 0) throw new Error(`initdb failed (${r.status ?? r.signal}): ${r.stderr}${r.stdout}`);
}

/**
 * The run's template data directory, under vitest with the global setup; '' elsewhere (the
 * benchmarks import this file too), and then each cluster runs initdb itself.
 */
async function initdbTemplate(): Promise<string> {
  if (process.env.VITEST === undefined) return '';
  const { inject } = await import('vitest');
  const dir = inject('initdbTemplate');
  return typeof dir === 'string' && fs.existsSync(dir) ? dir : '';
}
let nextPort = 20000 + (process.pid % 20000);

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls fn until it returns a truthy value; throws with `what` after timeoutMs. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 15000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` + (lastError ? `: ${String(lastError)}` : ''));
    await sleep(everyMs);
  }
}

/** statements after which query()'s kept sessions would run with settings older than a new one's */
const RECONFIGURES = /pg_reload_conf|\bALTER\s+(SYSTEM|ROLE|USER|DATABASE)\b/i;

/** Ends a client without waiting, whatever state its connection is in. */
function endQuietly(client: pg.Client): void {
  client.end().catch(() => undefined);
}

/** Clusters not destroyed yet: test/helpers/setup.ts prints their logs when a test fails. */
export const liveClusters = new Set<Cluster>();

export interface ClusterOptions {
  /** extra postgresql.conf lines */
  settings?: Record<string, string | number>;
  /** preload pg_node_worker (default true) */
  preload?: boolean;
  /** extra environment of the server (pg_ctl start passes it on) */
  env?: Record<string, string>;
}

export class Cluster {
  readonly dir: string;
  readonly datadir: string;
  readonly port: number;
  readonly logFile: string;
  readonly workersDir: string;
  private started = false;
  private env: Record<string, string> = {};
  /** sessions of the postgres database query() keeps between statements */
  private idle: pg.Client[] = [];
  /** clients whose connection has failed or ended */
  private lost = new WeakSet<pg.Client>();

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.datadir = path.join(dir, 'data');
    this.port = port;
    this.logFile = path.join(dir, 'server.log');
    this.workersDir = path.join(dir, 'src');
  }

  static async create(opts: ClusterOptions = {}): Promise<Cluster> {
    const dir = fs.mkdtempSync(path.join(CLUSTER_TMPDIR, 'pgnw-test-'));
    fs.chmodSync(dir, 0o755);
    const c = new Cluster(dir, nextPort++);
    c.env = opts.env ?? {};
    fs.mkdirSync(c.workersDir);
    if (USER) fs.chownSync(dir, USER.uid, USER.gid);
    const template = await initdbTemplate();
    if (template) c.run('cp', ['-a', template, c.datadir]);
    else c.run(path.join(PG_BIN, 'initdb'), ['-D', c.datadir, ...INITDB_ARGS]);
    const settings: Record<string, string | number> = {
      listen_addresses: "''",
      unix_socket_directories: `'${dir}'`,
      port: c.port,
      fsync: 'off',
      max_worker_processes: 16,
      'node_worker.shutdown_grace_ms': 2000,
      log_min_messages: 'warning',
      ...(opts.preload === false ? {} : { shared_preload_libraries: "'pg_node_worker'" }),
      ...opts.settings,
    };
    fs.appendFileSync(
      path.join(c.datadir, 'postgresql.conf'),
      '\n' + Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n',
    );
    liveClusters.add(c);
    return c;
  }

  /**
   * A streaming replica of a running primary (pg_basebackup -R), with its own
   * port and socket; the node_worker directory comes along in the base backup.
   */
  static async replicaOf(primary: Cluster): Promise<Cluster> {
    const dir = fs.mkdtempSync(path.join(CLUSTER_TMPDIR, 'pgnw-test-'));
    fs.chmodSync(dir, 0o755);
    const c = new Cluster(dir, nextPort++);
    fs.mkdirSync(c.workersDir);
    if (USER) fs.chownSync(dir, USER.uid, USER.gid);
    c.run(path.join(PG_BIN, 'pg_basebackup'), ['-h', primary.dir, '-p', String(primary.port), '-U', 'postgres', '-D', c.datadir, '-R', '-X', 'stream', '--no-sync']);
    fs.appendFileSync(path.join(c.datadir, 'postgresql.conf'), `\nunix_socket_directories = '${dir}'\nport = ${c.port}\nhot_standby = on\n`);
    liveClusters.add(c);
    return c;
  }

  /** Runs a program as the server's OS user. */
  run(file: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number; env?: Record<string, string> } = {}): string {
    const r = spawnSync(file, args, {
      encoding: 'utf8',
      cwd: this.dir,
      uid: USER?.uid,
      gid: USER?.gid,
      env: { ...process.env, ...opts.env, LC_ALL: 'C', HOME: this.dir },
      timeout: opts.timeoutMs ?? 120000,
    });
    if (r.status !== 0 && !opts.allowFail)
      throw new Error(`${path.basename(file)} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}${r.stdout}`);
    return (r.stdout ?? '') + (r.stderr ?? '');
  }

  pgCtl(args: string[], opts: { allowFail?: boolean; env?: Record<string, string> } = {}): string {
    return this.run(path.join(PG_BIN, 'pg_ctl'), ['-D', this.datadir, ...args], opts);
  }

  async start(): Promise<void> {
    this.endKept();
    this.pgCtl(['-l', this.logFile, '-w', '-t', '60', 'start'], { env: this.env });
    this.started = true;
  }

  /** Stops the server; returns the seconds it took. */
  stop(mode: 'fast' | 'smart' | 'immediate' = 'fast'): number {
    const t0 = process.hrtime.bigint();
    this.endKept();
    this.pgCtl(['-m', mode, '-w', '-t', '60', 'stop'], { allowFail: true });
    this.started = false;
    return Number(process.hrtime.bigint() - t0) / 1e9;
  }

  async restart(): Promise<void> {
    this.stop();
    await this.start();
  }

  reload(): void {
    this.endKept();
    this.pgCtl(['reload']);
  }

  postmasterPid(): number {
    return Number(fs.readFileSync(path.join(this.datadir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  }

  async client(database = 'postgres', user = 'postgres'): Promise<pg.Client> {
    const client = new pg.Client({ host: this.dir, port: this.port, user, database });
    // a cluster reset closes connections under our feet: pg emits 'error' on the client, which
    // without a listener is an uncaught exception for the test run (queries still reject)
    client.on('error', () => this.lost.add(client));
    client.on('end', () => this.lost.add(client));
    await client.connect();
    return client;
  }

  /**
   * Runs one statement (or a simple-protocol string of several) as postgres and returns its rows.
   * In the postgres database the session is a kept one, reset with DISCARD ALL after each use, so
   * it is as a new session would be (role, settings, locks, temp tables, prepared statements): a
   * new connection is a backend fork, about 11 ms of CPU, and the suites poll with query() in
   * every waitFor. A kept session the server has closed meanwhile (a reset, a terminate, a server
   * started again) is dropped before use. Other databases get a new connection each time: a kept
   * one would stand in the way of DROP DATABASE.
   */
  async query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
    if (database !== 'postgres') {
      const client = await this.client(database);
      try {
        return (await client.query<T>(sql, params)).rows;
      } finally {
        await client.end();
      }
    }
    const client = (await this.keptSession()) ?? (await this.client());
    let rows: T[];
    try {
      rows = (await client.query<T>(sql, params)).rows;
    } catch (err) {
      endQuietly(client);
      throw err;
    }
    // a session applies a reload only after its next statement, and ALTER ROLE/DATABASE ... SET
    // only at its start: after such a statement no kept session is used again
    if (RECONFIGURES.test(sql)) this.endKept();
    else if (this.idle.length < 4) {
      try {
        // fails in a transaction block the statement left open: that session is not kept
        await client.query('DISCARD ALL');
        this.idle.push(client);
        return rows;
      } catch {
        // ended below
      }
    }
    endQuietly(client);
    return rows;
  }

  /**
   * A kept session of query() that is still connected, or null. The event loop turns once first:
   * the end of a session the server closed is then seen (a unix socket reports it at once).
   */
  private async keptSession(): Promise<pg.Client | null> {
    if (this.idle.length === 0) return null;
    await new Promise((resolve) => setImmediate(resolve));
    for (let client = this.idle.pop(); client; client = this.idle.pop()) {
      if (!this.lost.has(client)) return client;
      endQuietly(client);
    }
    return null;
  }

  /** Ends the sessions query() keeps: the server is going, or a new one has started. */
  private endKept(): void {
    for (const client of this.idle.splice(0)) endQuietly(client);
  }

  /**
   * Writes `source` as <name>.ts and deploys it: for tests whose point is the text of the source
   * (a generated blob, a package bundled from the worker's folder). Other workers are files of
   * test/workers: deployFile(), deployTemplate().
   */
  deploySource(name: string, source: string): Promise<string> {
    const file = path.join(this.workersDir, `${name}.ts`);
    fs.writeFileSync(file, source);
    return this.deployPath(file);
  }

  /**
   * Deploys a worker file with the project's CLI: a file of test/workers (real TypeScript the
   * typecheck covers, bundled where it is, so it may import its neighbours) or an absolute path.
   * The worker's name is the one its defineWorker() declares.
   */
  deployFile(file: string): Promise<string> {
    return this.deployPath(fixture(file));
  }

  /** Deploys `<template>(...args)` of test/workers/templates (see test/helpers/workers.ts). */
  deployTemplate<K extends TemplateName>(template: K, ...args: TemplateArgs<K>): Promise<string> {
    return this.deployPath(templateFile(this.workersDir, template, ...args));
  }

  /**
   * Runs the CLI's deploy in a child process, without blocking this process: bundling a big
   * worker takes seconds, and the test runner's own messages must go on meanwhile.
   */
  private deployPath(file: string): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        [path.join(REPO, 'bin', 'pg-node-worker.js'), 'deploy', file, '-D', this.datadir],
        { encoding: 'utf8', env: { ...process.env }, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`deploy of ${file} failed (${(err as { code?: unknown }).code}): ${stderr}${stdout}`));
          else resolve(stdout + stderr);
        },
      );
    });
  }

  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  logTail(lines: number): string {
    return this.log().split('\n').slice(-lines).join('\n');
  }

  /** Waits until the server log matches re (searching from `from` chars on). */
  waitForLog(re: RegExp, timeoutMs = 15000, from = 0): Promise<RegExpMatchArray> {
    return waitFor(`server log to match ${re}`, () => this.log().slice(from).match(re), timeoutMs);
  }

  /** pid of the running worker, from pg_stat_activity, or null. */
  async workerPid(name: string): Promise<number | null> {
    const rows = await this.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE backend_type = 'node_worker' AND application_name = $1",
      [name],
    );
    return rows[0]?.pid ?? null;
  }

  async waitForWorker(name: string, timeoutMs = 15000, notPid?: number): Promise<number> {
    return waitFor(`worker ${name} to run`, async () => {
      const pid = await this.workerPid(name);
      return pid !== null && pid !== notPid ? pid : null;
    }, timeoutMs);
  }

  async destroy(): Promise<void> {
    liveClusters.delete(this);
    this.endKept();
    if (this.started || fs.existsSync(path.join(this.datadir, 'postmaster.pid'))) this.stop('immediate');
    if (!process.env.PGNW_KEEP_CLUSTERS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Fields of /proc/<pid>/stat after the command name (index 0 = state), or null when gone. */
export function procStat(pid: number): string[] | null {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  } catch {
    return null;
  }
}

/** How long ago a process started, in ms (from /proc: its start time and the machine's uptime). */
export function processAgeMs(pid: number): number {
  const f = procStat(pid);
  if (!f) throw new Error(`process ${pid} is gone`);
  const uptimeS = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  // field 22 of stat, the start time in clock ticks (100 a second) since boot
  return uptimeS * 1000 - Number(f[19]) * 10;
}

/**
 * CPU time a process has used, in ms, summed over its threads from /proc/<pid>/task/<tid>/schedstat
 * (nanoseconds on a CPU: clock ticks of 10 ms charge a whole tick to whoever runs when it fires,
 * which a process waking 50 times a second on a loaded machine pays far beyond its share).
 */
export function cpuMs(pid: number): number {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    throw new Error(`process ${pid} is gone`);
  }
  let ns = 0;
  for (const tid of tids) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e6;
}

/** True while a process exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True while a process runs: a process that exited but was not reaped yet (a zombie) does not. */
export function running(pid: number): boolean {
  return alive(pid) && procStat(pid)?.[0] !== 'Z';
}
