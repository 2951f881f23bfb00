/**
 * `pg-node-worker/testing`: throwaway PostgreSQL clusters for a project's own worker tests.
 *
 * A cluster is made the way `pg-node-worker dev` makes one (the same settings and helpers of
 * src/cli/dev.ts): a new temp directory, initdb, the unix socket in that directory (no TCP),
 * trust authentication behind a 0700 directory, pg_node_worker preloaded, the server run as the
 * `postgres` OS user when the tests run as root. Workers are bundled and deployed by the CLI's
 * own code, so a test runs exactly what `deploy` would ship.
 *
 * Independent of the test runner (vitest, node:test, mocha: plain promises). Cleanup happens on
 * `stop()`, else at process exit or on SIGINT/SIGTERM/SIGHUP/SIGQUIT, else (SIGKILL, a crashed
 * runner) by a small watchdog process that stops the server and removes the directory once the
 * test process is gone.
 *
 * Limits: Linux only (the watchdog watches /proc); needs the extension installed in the server of
 * `pg_config` (or `PG_CONFIG`); one server per cluster, so each takes a few seconds to start.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { deploy } from '../cli/deploy';
import {
  appendToConf,
  DEV_USER,
  devServerUser,
  devSettings,
  removeDevDirectory,
  removeDevDirectorySync,
  serverLogTail,
  WorkerLogFilter,
} from '../cli/dev';
import { DirHandle } from '../cli/fsutil';
import { pgConfigCommand, resolveNodeTarget } from '../cli/installed';
import { quoteConfString } from '../cli/pgconf';
import { OsUser, pgProgram, processExited, readPostmasterPid, restartWorker, runProgram } from '../cli/server';

/** A postgresql.conf value: strings are written quoted, numbers and booleans as they are. */
export type SettingValue = string | number | boolean;

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** more postgresql.conf settings, e.g. `{ 'counted.naptime': 1, shared_buffers: '128MB' }` */
  settings?: Record<string, SettingValue>;
  /** the server's pg_config (default: `$PG_CONFIG`, else `pg_config` on PATH) */
  pgConfig?: string;
  /** keep the directory (server stopped) after stop(), to read its log; also `PGNW_KEEP_CLUSTERS=1` */
  keep?: boolean;
  /** how long the server may take to start, in ms (default 60000) */
  startTimeoutMs?: number;
}

/** Options of the methods that wait. */
export interface WaitOptions {
  /** default 15000 */
  timeoutMs?: number;
}

/** What {@link TestCluster.deploy} did. */
export interface Deployed {
  /** the worker's name, from its defineWorker() */
  name: string;
  /** the pid of the running worker, or null with `start: false` */
  pid: number | null;
}

/** A row of `node_worker.workers`. */
export interface WorkerRow {
  name: string;
  kind: string;
  pid: number | null;
  state: string;
  last_error: string | null;
  [column: string]: unknown;
}

const DEFAULT_WAIT_MS = 15000;
const POLL_MS = 50;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function formatSetting(name: string, value: SettingValue): string {
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) throw new TypeError(`invalid setting name ${JSON.stringify(name)}`);
  if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`setting ${name}: ${value} is not a finite number`);
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
    throw new TypeError(`setting ${name}: a string, number or boolean, not ${typeof value}`);
  return `${name} = ${typeof value === 'string' ? quoteConfString(value) : String(value)}`;
}

// ---------------------------------------------------------------------------------------------
// Cleanup on every exit path

const live = new Set<TestCluster>();
const EXIT_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
let hooked = false;

function onExit(): void {
  for (const c of [...live]) c.stopSync();
}

/** Cleans up, then lets the signal do what it would have done without this listener. */
function onSignal(sig: NodeJS.Signals): void {
  onExit();
  unhook();
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', onExit);
  for (const s of EXIT_SIGNALS) process.on(s, onSignal);
}

function unhook(): void {
  if (!hooked) return;
  hooked = false;
  process.removeListener('exit', onExit);
  for (const s of EXIT_SIGNALS) process.removeListener(s, onSignal);
}

/**
 * A detached shell, as the server's OS user, that waits for this process to be gone and then
 * stops the server and removes the directory: the path for exits no handler sees (SIGKILL, a
 * runner that kills its workers on timeout).
 */
function startWatchdog(pgCtl: string, datadir: string, dir: string, keep: boolean, as: OsUser | undefined): number | undefined {
  const script =
    'while [ -d "/proc/$1" ]; do sleep 1; done; ' +
    '"$2" stop -D "$3" -m immediate -w -t 30 -s >/dev/null 2>&1; ' +
    '[ "$5" = keep ] || rm -rf -- "$4"';
  const child = spawn('/bin/sh', ['-c', script, 'pgnw-watchdog', String(process.pid), pgCtl, datadir, dir, keep ? 'keep' : 'remove'], {
    detached: true,
    stdio: 'ignore',
    cwd: '/',
    ...(as ? { uid: as.uid, gid: as.gid } : {}),
  });
  child.on('error', () => undefined);
  child.unref();
  return child.pid;
}

// ---------------------------------------------------------------------------------------------

/**
 * A running throwaway cluster. Made by {@link startCluster}; `stop()` it when done (an `afterAll`
 * or `after` hook).
 */
export class TestCluster {
  /** the cluster's directory: data directory, server log, and the unix socket */
  readonly dir: string;
  readonly datadir: string;
  readonly logFile: string;
  /** the socket's port (the socket is in `dir`, so no other server is in the way) */
  readonly port = 5432;
  /** the database superuser */
  readonly user = DEV_USER;
  private readonly clients = new Map<string, Promise<Client>>();
  private readonly pgCtl: string;
  private watchdogPid: number | undefined;
  private stopped = false;

  /** @internal use {@link startCluster} */
  constructor(
    private readonly pgConfig: string,
    private readonly serverUser: OsUser | undefined,
    private readonly keep: boolean,
  ) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgnw-test-'));
    this.datadir = path.join(this.dir, 'data');
    this.logFile = path.join(this.dir, 'server.log');
    this.pgCtl = pgProgram(pgConfig, 'pg_ctl');
  }

  /** Connection parameters for any PostgreSQL client (pg, postgres.js, psql -h/-p/-U/-d). */
  connection(database = 'postgres'): { host: string; port: number; user: string; database: string } {
    return { host: this.dir, port: this.port, user: this.user, database };
  }

  private async runAsServer(prog: string, args: string[], what: string): Promise<void> {
    const r = await runProgram(prog, args, { as: this.serverUser, cwd: this.dir, env: { LC_ALL: 'C' } });
    if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal}):\n${(r.stdout + r.stderr).trimEnd()}`);
  }

  /** @internal initdb, settings, start, CREATE EXTENSION. */
  async setUp(settings: Record<string, SettingValue>, startTimeoutMs: number): Promise<void> {
    live.add(this);
    hook();
    const top = DirHandle.open(this.dir, { followLinks: false });
    try {
      // trust authentication: the directory is what protects the socket
      top.setModeAndOwner(0o700, this.serverUser);
    } finally {
      top.close();
    }
    this.watchdogPid = startWatchdog(this.pgCtl, this.datadir, this.dir, this.keep, this.serverUser);
    const initdb = pgProgram(this.pgConfig, 'initdb');
    await this.runAsServer(initdb, ['-D', this.datadir, '-A', 'trust', '-U', DEV_USER, '--no-sync', '-E', 'UTF8', '--locale=C', '--no-instructions'], 'initdb');
    const extra = Object.entries(settings).map(([k, v]) => formatSetting(k, v));
    appendToConf(this.dir, this.serverUser, devSettings(this.dir, this.port) + extra.join('\n') + '\n');
    const seconds = String(Math.max(1, Math.ceil(startTimeoutMs / 1000)));
    await this.runAsServer(this.pgCtl, ['start', '-D', this.datadir, '-l', this.logFile, '-w', '-t', seconds, '-s'], 'pg_ctl start');
    await this.query('SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_node_worker');
  }

  private client(database: string): Promise<Client> {
    if (this.stopped) return Promise.reject(new Error(`the cluster in ${this.dir} is stopped`));
    let c = this.clients.get(database);
    if (!c) {
      const client = new Client(this.connection(database));
      // the server going away under a test must not be an uncaught 'error' event
      client.on('error', () => undefined);
      c = client.connect().then(() => client);
      c.catch(() => this.clients.delete(database));
      this.clients.set(database, c);
    }
    return c;
  }

  /**
   * Runs SQL with `$1`-style parameters (several statements when there are none) as the
   * superuser; returns the rows of the last statement. int8 and numeric come back as strings,
   * json/jsonb parsed (node-postgres's conversions).
   */
  async query<T extends Record<string, unknown> = Record<string, unknown>>(
    text: string,
    params: readonly unknown[] = [],
    opts: { database?: string } = {},
  ): Promise<T[]> {
    const client = await this.client(opts.database ?? 'postgres');
    const r = await client.query(text, params as unknown[]);
    const last = Array.isArray(r) ? r[r.length - 1] : r;
    return (last?.rows ?? []) as T[];
  }

  /**
   * Bundles and deploys a worker file (as `pg-node-worker deploy` does) and, unless
   * `start: false` (a worker meant for launch()), starts it with its new code and waits until
   * its main() runs.
   */
  async deploy(file: string, opts: { start?: boolean } = {}): Promise<Deployed> {
    const warnings: string[] = [];
    const r = await deploy(path.resolve(file), {
      pgdata: this.datadir,
      pgConfig: this.pgConfig,
      nodeTarget: resolveNodeTarget(this.pgConfig, (l) => warnings.push(l)).target,
      log: () => undefined,
      warn: (l) => warnings.push(l),
    });
    // a test cluster is the place for a worker without its production role: no advice about it
    const name = r.manifest.name;
    // (privilegeWarnings: deploy's advice about a worker without a role of its own)
    const advice = `warning: worker "${name}" runs as `;
    for (const w of warnings) if (!w.startsWith(advice)) process.stderr.write(`pg-node-worker/testing: ${w}\n`);
    if (opts.start === false) return { name, pid: null };
    const target = {
      args: ['-h', this.dir, '-p', String(this.port), '-U', DEV_USER, '-d', 'postgres'],
      as: this.serverUser,
      label: 'the test server',
    };
    const restarted = await restartWorker(this.pgConfig, target, name);
    if (!restarted.ok) throw new Error(`could not start worker "${name}": ${restarted.reason === 'refused' ? restarted.message : restarted.reason}`);
    return { name, pid: await this.waitForWorker(name) };
  }

  /** The rows of `node_worker.workers` (one per deployed or running worker). */
  workers(): Promise<WorkerRow[]> {
    return this.query<WorkerRow>('SELECT * FROM node_worker.workers ORDER BY name, pid');
  }

  /**
   * Waits until a worker named `name` runs (state `running`) and returns its pid; fails at once
   * with the worker's last error when it is `failed`.
   */
  async waitForWorker(name: string, opts: WaitOptions & { notPid?: number } = {}): Promise<number> {
    return this.waitUntil(`worker "${name}" to run`, async () => {
      const rows = (await this.workers()).filter((w) => w.name === name);
      const running = rows.find((w) => w.state === 'running' && w.pid !== null && w.pid !== opts.notPid);
      if (running) return running.pid as number;
      const failed = rows.find((w) => w.state === 'failed');
      if (failed) throw new Error(`worker "${name}" failed: ${failed.last_error ?? '(no error recorded)'}`);
      return undefined;
    }, opts.timeoutMs);
  }

  /** `node_worker.call(name, payload, timeoutMs)`: the handler's result (JSON). */
  async call<T = unknown>(name: string, payload: unknown = null, timeoutMs = 5000): Promise<T> {
    const [row] = await this.query<{ r: T }>('SELECT node_worker.call($1, $2::jsonb, $3) AS r', [name, JSON.stringify(payload ?? null), timeoutMs]);
    return row.r;
  }

  /** `node_worker.notify(name, payload)` in its own transaction (delivered at commit). */
  async notify(name: string, payload: unknown = null): Promise<void> {
    await this.query('SELECT node_worker.notify($1, $2::jsonb)', [name, JSON.stringify(payload ?? null)]);
  }

  /** `node_worker.wake(name)`: a pending ctx.sleep() of the worker returns `'wake'`. */
  async wake(name: string): Promise<void> {
    await this.query('SELECT node_worker.wake($1)', [name]);
  }

  /** `node_worker.launch(name, args)`: starts a dynamic worker of a deployed bundle; its pid. */
  async launch(name: string, args: unknown = null): Promise<number> {
    const [row] = await this.query<{ pid: number }>('SELECT node_worker.launch($1, $2::jsonb) AS pid', [name, args === null || args === undefined ? null : JSON.stringify(args)]);
    return row.pid;
  }

  /** `node_worker.restart(name)`: the worker's new pid. */
  async restartWorker(name: string): Promise<number> {
    const [row] = await this.query<{ pid: number }>('SELECT node_worker.restart($1) AS pid', [name]);
    return row.pid;
  }

  /** `node_worker.stop(name)`: whether anything was running. */
  async stopWorker(name: string): Promise<boolean> {
    const [row] = await this.query<{ stopped: boolean }>('SELECT node_worker.stop($1) AS stopped', [name]);
    return row.stopped;
  }

  /**
   * Restarts the server (fast mode): deployed workers start again as static workers, shared
   * memory starts empty. Open connections of query() are reconnected on next use.
   */
  async restartServer(): Promise<void> {
    if (this.stopped) throw new Error(`the cluster in ${this.dir} is stopped`);
    await this.closeClients();
    await this.runAsServer(this.pgCtl, ['restart', '-D', this.datadir, '-l', this.logFile, '-m', 'fast', '-w', '-t', '60', '-s'], 'pg_ctl restart');
  }

  private async closeClients(): Promise<void> {
    for (const c of this.clients.values()) await c.then((client) => client.end()).catch(() => undefined);
    this.clients.clear();
  }

  /** Adds settings to postgresql.conf and reloads the configuration (workers get SIGHUP). */
  async configure(settings: Record<string, SettingValue>): Promise<void> {
    const lines = Object.entries(settings).map(([k, v]) => formatSetting(k, v));
    appendToConf(this.dir, this.serverUser, '\n' + lines.join('\n') + '\n');
    await this.query('SELECT pg_reload_conf()');
  }

  /** The whole server log. */
  serverLog(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * A worker's lines of the server log, as `dev` shows them (`HH:MM:SS.mmm <name>: message`,
   * `ERROR: ...`): what it logged, its processes' lines, server lines naming it, FATAL/PANIC.
   */
  logs(name: string): string[] {
    const filter = new WorkerLogFilter(name);
    const out: string[] = [];
    const lines = this.serverLog().split('\n');
    // what follows the last newline is a line still being written (or nothing)
    lines.pop();
    for (const line of lines) {
      const shown = filter.push(line);
      if (shown !== null) out.push(shown);
    }
    return out;
  }

  /**
   * Waits for a line of the worker's log (see logs()) that matches `re`; `from` skips the first
   * lines (`const from = pg.logs(name).length` before the action). Returns the line.
   */
  waitForLog(name: string, re: RegExp, opts: WaitOptions & { from?: number } = {}): Promise<string> {
    return this.waitUntil(`a log line of "${name}" matching ${re}`, () => this.logs(name).slice(opts.from ?? 0).find((l) => re.test(l)), opts.timeoutMs);
  }

  /**
   * Polls `fn` until it returns something other than undefined, null or false. A throw counts as
   * "not yet" (a table being recreated, a worker restarting), as vitest's `vi.waitFor` does; the
   * last error is part of the timeout's message.
   */
  async waitUntil<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        const v = await fn();
        if (v !== undefined && v !== null && v !== false) return v;
        lastError = undefined;
      } catch (e) {
        lastError = e;
      }
      if (performance.now() > deadline) {
        const tail = serverLogTail(this.logFile, 15) ?? [];
        const why = lastError === undefined ? '' : `; the last try threw: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}; last lines of the server log:\n${tail.join('\n')}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Stops the server (fast mode) and removes the directory (unless kept). Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    if (live.size === 0) unhook();
    await this.closeClients();
    const pm = readPostmasterPid(this.datadir);
    if (pm && pm.alive) {
      await runProgram(this.pgCtl, ['stop', '-D', this.datadir, '-m', 'fast', '-w', '-t', '60', '-s'], { as: this.serverUser, cwd: '/' });
      // pg_ctl returns once postmaster.pid is gone; the process exits a moment later
      for (let i = 0; i < 100 && !processExited(pm.pid); i++) await sleep(50);
    }
    if (!this.keep) await removeDevDirectory(this.dir, this.serverUser);
    this.killWatchdog();
  }

  /** @internal stop() for the process's last moments: synchronous, immediate mode. */
  stopSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    spawnSync(this.pgCtl, ['stop', '-D', this.datadir, '-m', 'immediate', '-w', '-t', '30', '-s'], {
      cwd: '/',
      stdio: 'ignore',
      ...(this.serverUser ? { uid: this.serverUser.uid, gid: this.serverUser.gid } : {}),
    });
    if (!this.keep) removeDevDirectorySync(this.dir, this.serverUser);
    this.killWatchdog();
  }

  private killWatchdog(): void {
    if (this.watchdogPid === undefined) return;
    try {
      process.kill(this.watchdogPid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    this.watchdogPid = undefined;
  }
}

/**
 * Fails with a message that says what to do when pg_config cannot run or its server has no
 * pg_node_worker installed (initdb and the server would fail later, less clearly).
 */
function checkInstalled(pgConfig: string): void {
  let pkglibdir: string;
  try {
    pkglibdir = execFileSync(pgConfig, ['--pkglibdir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    throw new Error(
      `cannot run ${pgConfig} (${(e as Error).message.split('\n')[0]}): set PG_CONFIG to the pg_config of the server ` +
        `pg_node_worker is installed in (e.g. /usr/lib/postgresql/15/bin/pg_config)`,
    );
  }
  const lib = path.join(pkglibdir, 'pg_node_worker.so');
  if (!fs.existsSync(lib)) {
    throw new Error(`pg_node_worker is not installed in the server of ${pgConfig} (no ${lib}): run make install in its clone, or set PG_CONFIG to another server's pg_config`);
  }
}

/**
 * Starts a throwaway cluster with pg_node_worker preloaded and `CREATE EXTENSION pg_node_worker`
 * done in database postgres. Takes a few seconds; give the hook that calls it a timeout of a
 * minute.
 *
 * @throws TypeError for a bad setting; Error when pg_config cannot run or its server has no
 * pg_node_worker, when initdb or the server fails (with the server log's last lines), or as root
 * when there is no `postgres` OS user to run the server
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<TestCluster> {
  const pgConfig = pgConfigCommand(opts.pgConfig);
  for (const [k, v] of Object.entries(opts.settings ?? {})) formatSetting(k, v);
  checkInstalled(pgConfig);
  const serverUser = devServerUser();
  const keep = opts.keep ?? Boolean(process.env.PGNW_KEEP_CLUSTERS);
  const cluster = new TestCluster(pgConfig, serverUser, keep);
  try {
    await cluster.setUp(opts.settings ?? {}, opts.startTimeoutMs ?? 60000);
  } catch (e) {
    const tail = serverLogTail(cluster.logFile, 20);
    await cluster.stop().catch(() => undefined);
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`pg-node-worker/testing: could not start a cluster: ${msg}` + (tail ? `\nlast lines of the server log:\n${tail.join('\n')}` : ''));
  }
  return cluster;
}
