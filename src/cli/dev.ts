/**
 * `pg-node-worker dev FILE`: a throwaway cluster running FILE, its log on the terminal, and a
 * rebuild + worker restart on every save.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { BundleResult, bundleWorker } from './bundle';
import { deploy } from './deploy';
import { pgConfigCommand, resolveNodeTarget } from './installed';
import { CliError } from './errors';
import { DirHandle, isRoot } from './fsutil';
import { quoteConfString } from './pgconf';
import { ignoreStreamErrors, printLine } from './terminal';
import { startTypeCheck, TypeChecker } from './typecheck';
import {
  lookupUser,
  OsUser,
  pgProgram,
  processExited,
  psql,
  PsqlTarget,
  readPostmasterPid,
  restartWorker,
  runProgram,
} from './server';

/** The options of dev mode (the CLI's, and hooks for tests). */
export interface DevOptions {
  /** the port of the socket (the socket is in the cluster's own directory, so any port works) */
  port?: number;
  /** keep the directory (with the stopped cluster) on exit */
  keep?: boolean;
  nodeTarget?: string;
  pgConfig?: string;
  out?: (line: string) => void;
  err?: (line: string) => void;
  /** debounce of file events, ms */
  debounceMs?: number;
  /** run the TypeScript checker beside the worker (default true) */
  typeCheck?: boolean;
  /** the worker opens Node's inspector on 127.0.0.1 at this port */
  inspectPort?: number;
}

/** The dev cluster's superuser, and the OS user its server runs as when dev runs as root. */
export const DEV_USER = 'postgres';
const DEFAULT_PORT = 5432;
const LOG_POLL_MS = 100;

// ---------------------------------------------------------------------------------------------
// The worker's lines of the server log

/** log_line_prefix = '%m [%p] ': "2026-11-27 11:04:16.399 UTC [3588] LOG:  msg" */
const LINE_RE = /^(\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d(?:\.\d+)?) \S+) \[(\d+)\] ([A-Z0-9]+):  (.*)$/;
const ATTACHED = new Set(['DETAIL', 'HINT', 'CONTEXT', 'STATEMENT', 'QUERY', 'LOCATION']);

/**
 * Picks the lines of a server log (log_line_prefix '%m [%p] ') that belong to one node worker:
 * lines prefixed `<name>: ` (what the worker logs), every line of a process that logged such a
 * line or that restart() returned, LOG/ERROR lines naming the worker ("<name>", "node_worker
 * <name>", <name>.json, or the "(PID n)" of one of its processes), and FATAL/PANIC lines. The
 * continuation lines of a picked message (tab-indented, DETAIL/HINT/...) come along.
 */
export class WorkerLogFilter {
  private readonly pids = new Set<number>();
  private readonly prefix: string;
  private readonly names: RegExp;
  private lastShown = false;
  private lastPid = -1;

  constructor(readonly name: string) {
    this.prefix = `${name}: `;
    const n = name.replace(/[-]/g, '\\-');
    this.names = new RegExp(`"(?:node_worker )?${n}"|/${n}\\.js(?:on)?\\b`);
  }

  addPid(pid: number): void {
    this.pids.add(pid);
  }

  /** The line to show for a log line, or null. */
  push(line: string): string | null {
    const m = LINE_RE.exec(line);
    if (!m) {
      // a continuation of a multi-line message (tab-indented by the server)
      return this.lastShown ? '             ' + line.replace(/^\t/, '') : null;
    }
    const [, , time, pidText, severity, message] = m;
    const pid = Number(pidText);
    if (ATTACHED.has(severity)) {
      const show = this.lastShown && pid === this.lastPid;
      return show ? `${time.slice(0, 12).padEnd(12)} ${severity}: ${message}` : null;
    }
    let show = false;
    if (message.startsWith(this.prefix)) {
      this.pids.add(pid);
      show = true;
    } else if (this.pids.has(pid) || severity === 'FATAL' || severity === 'PANIC') {
      show = true;
    } else if (severity === 'LOG' || severity === 'ERROR' || severity === 'WARNING') {
      const p = /\(PID (\d+)\)/.exec(message);
      const ofOurs = p !== null && this.pids.has(Number(p[1]));
      show = this.names.test(message) || ofOurs;
      // that process is gone: its pid may be reused by an unrelated backend
      if (ofOurs && / exited | was terminated /.test(message)) this.pids.delete(Number(p[1]));
    }
    this.lastShown = show;
    this.lastPid = pid;
    if (!show) return null;
    return `${time.slice(0, 12).padEnd(12)} ${severity === 'LOG' ? '' : severity + ': '}${message}`;
  }
}

/**
 * Opens a regular file for reading, never through a link (the dev cluster's directory belongs to
 * the server's OS user, who could put one in place of the log, aimed at a file only root may
 * read) and never a FIFO (O_NONBLOCK: open does not wait for a writer).
 */
function openRegularFile(file: string): number {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    throw new CliError(`${file} is not a regular file`);
  }
  return fd;
}

/** Follows a growing file: each poll() returns the complete lines appended since the last one. */
export class FileTail {
  private offset = 0;
  private partial = '';

  constructor(readonly file: string) {}

  poll(): string[] {
    let fd: number;
    try {
      fd = openRegularFile(this.file);
    } catch {
      return [];
    }
    const chunks: Buffer[] = [];
    try {
      const size = fs.fstatSync(fd).size;
      if (size < this.offset) this.offset = 0; // truncated
      while (this.offset < size) {
        const buf = Buffer.alloc(Math.min(size - this.offset, 1 << 20));
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        chunks.push(buf.subarray(0, n));
        this.offset += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    if (chunks.length === 0) return [];
    const text = this.partial + Buffer.concat(chunks).toString('utf8');
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    return lines;
  }
}

// ---------------------------------------------------------------------------------------------
// Watching the sources

/**
 * Watches files through their directories (editors often save by writing a new file and renaming
 * it over the old one, which a watch on the file itself would lose) and calls `onChange` once
 * per burst of events (debounced).
 */
export class SourceWatcher {
  private watchers = new Map<string, fs.FSWatcher>();
  private files = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** after a failed build: any source-like file in a watched directory triggers a rebuild */
  anyFile = false;

  constructor(
    private readonly onChange: () => void,
    private readonly debounceMs: number,
    private readonly onError: (msg: string) => void,
  ) {}

  get watched(): string[] {
    return [...this.files].sort();
  }

  /** Watch exactly these files (adding and removing directory watches as needed). */
  set(files: string[]): void {
    this.files = new Set(files.map((f) => path.resolve(f)));
    const dirs = new Set([...this.files].map((f) => path.dirname(f)));
    for (const [d, w] of this.watchers) {
      if (!dirs.has(d)) {
        w.close();
        this.watchers.delete(d);
      }
    }
    for (const d of dirs) {
      if (this.watchers.has(d)) continue;
      try {
        const w = fs.watch(d, { persistent: true }, (_event, filename) => this.event(d, filename));
        w.on('error', (e) => this.onError(`cannot watch ${d}: ${e.message}`));
        this.watchers.set(d, w);
      } catch (e) {
        this.onError(`cannot watch ${d}: ${(e as Error).message}`);
      }
    }
  }

  private event(dir: string, filename: string | Buffer | null): void {
    if (filename === null) return this.schedule(); // unknown file: better rebuild once too often
    const base = filename.toString();
    const full = path.join(dir, base);
    const relevant = this.files.has(full) || (this.anyFile && !base.startsWith('.') && /\.(?:[cm]?[jt]sx?|json)$/.test(base));
    if (relevant) this.schedule();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onChange();
    }, this.debounceMs);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// The session

/**
 * Appends `text` to <dir>/data/postgresql.conf, as root never through a link: by then the
 * directory belongs to the server's OS user (initdb ran as that user), who could have put a
 * link to any file there.
 */
export function appendToConf(dir: string, serverUser: OsUser | undefined, text: string): void {
  const hint = serverUser
    ? `: the dev cluster's directory belongs to ${serverUser.name}, and dev does not write through what that user placed there`
    : '';
  const top = DirHandle.open(dir, { followLinks: false, hint });
  try {
    const data = top.openDir('data', { followLinks: false });
    try {
      data.appendFile('postgresql.conf', text, serverUser?.uid);
    } finally {
      data.close();
    }
  } finally {
    top.close();
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function rel(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r && !r.startsWith('..') && !path.isAbsolute(r) ? r : p;
}

/** The lines to print for a failed build: esbuild's `file:line:col: message` lines, or the message. */
export function buildErrorLines(e: CliError): string[] {
  const lines = e.message.split('\n');
  if (/^cannot bundle .*:$/.test(lines[0])) return lines.slice(1).map((l) => '  ' + l.trim());
  return lines.map((l) => '  ' + l);
}

/** The signals that end dev mode: Ctrl-C, kill, Ctrl-\, and a closed terminal or SSH session. */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGHUP'];

/**
 * Removes the dev directory. As root it runs `rm -rf` as the server's OS user: everything in it
 * belongs to that user, who could swap a subdirectory for a link while a root-run recursive
 * delete walks the tree, and root would then delete files elsewhere.
 */
export async function removeDevDirectory(dir: string, serverUser: OsUser | undefined): Promise<void> {
  if (!serverUser) {
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  }
  const r = await runProgram('rm', ['-rf', '--', dir], { as: serverUser });
  if (r.status !== 0) throw new CliError(`rm -rf ${dir} (as ${serverUser.name}) failed: ${(r.stdout + r.stderr).trim()}`);
}

/** removeDevDirectory, synchronously (for the process's 'exit' event). */
export function removeDevDirectorySync(dir: string, serverUser: OsUser | undefined): void {
  if (!serverUser) fs.rmSync(dir, { recursive: true, force: true });
  else spawnSync('rm', ['-rf', '--', dir], { uid: serverUser.uid, gid: serverUser.gid, stdio: 'ignore', cwd: '/' });
}

/** What a dev session runs with, settled before the cluster is made. */
interface DevSettings {
  /** the worker file, absolute */
  absFile: string;
  /** the worker's name (dev keeps it: a renamed worker is not deployed) */
  name: string;
  opts: DevOptions;
  out: (line: string) => void;
  err: (line: string) => void;
  pgConfig: string;
  port: number;
  nodeTarget: string;
  /** the OS user the server runs as, when dev runs as root */
  serverUser: OsUser | undefined;
}

/** The throwaway cluster's places, and how psql reaches it. */
interface DevCluster {
  dir: string;
  datadir: string;
  logFile: string;
  pgCtl: string;
  target: PsqlTarget;
}

/** As root, the server runs as DEV_USER: PostgreSQL refuses to run as root. */
export function devServerUser(): OsUser | undefined {
  if (!isRoot()) return undefined;
  const serverUser = lookupUser(DEV_USER);
  if (!serverUser) {
    throw new CliError(
      `as root, dev runs the server as the OS user "${DEV_USER}" (PostgreSQL refuses to run as root), ` +
        `and there is none: create it, or run dev as an ordinary user`,
    );
  }
  return serverUser;
}

/** A new temporary directory for the cluster and the places in it. */
function makeDevCluster(s: DevSettings): DevCluster {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgnw-dev-'));
  return {
    dir,
    datadir: path.join(dir, 'data'),
    logFile: path.join(dir, 'server.log'),
    pgCtl: pgProgram(s.pgConfig, 'pg_ctl'),
    target: {
      args: ['-h', dir, '-p', String(s.port), '-U', DEV_USER, '-d', 'postgres'],
      as: s.serverUser,
      label: 'the dev server',
    },
  };
}

/**
 * Fails when nothing can listen on 127.0.0.1:port (taken by another program, or a previous dev),
 * so that the worker's own failure to open its inspector is not the first sign of it.
 */
async function checkInspectPort(port: number): Promise<void> {
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      `--inspect: cannot listen on 127.0.0.1:${port} (${code === 'EADDRINUSE' ? 'the port is in use' : errorText(e)}): choose another port with --inspect=PORT`,
    );
  } finally {
    server.close();
  }
}

/** The postgresql.conf lines that make the dev worker open its inspector. */
function inspectSettings(name: string, port: number): string {
  return [`node_worker.inspect_worker = ${quoteConfString(name)}`, `node_worker.inspect_port = ${port}`, ''].join('\n');
}

/** The postgresql.conf lines of a dev cluster. */
export function devSettings(dir: string, port: number): string {
  return [
    '',
    '# pg-node-worker dev',
    `listen_addresses = ''`,
    `unix_socket_directories = ${quoteConfString(dir)}`,
    `port = ${port}`,
    `shared_preload_libraries = 'pg_node_worker'`,
    `node_worker.shutdown_grace_ms = 1000`,
    `fsync = off`,
    `log_line_prefix = '%m [%p] '`,
    '',
  ].join('\n');
}

/** The last lines of the server log, if there is one to read (not a link, not a FIFO). */
export function serverLogTail(logFile: string, lines: number): string[] | undefined {
  let logText: string | undefined;
  try {
    const fd = openRegularFile(logFile);
    try {
      logText = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    /* no log (yet), or not a file to read */
  }
  return logText === undefined ? undefined : logText.trimEnd().split('\n').slice(-lines);
}

/**
 * One run of dev mode: the cluster, the log on the terminal, the watch-rebuild-restart loop and
 * the cleanup, whatever ends it.
 */
class DevSession {
  private stopRequested = false;
  private serverDied = false;
  private wake: () => void = () => undefined;
  private readonly stopped = new Promise<void>((resolve) => (this.wake = resolve));
  private cluster!: DevCluster;
  private tail!: FileTail;
  private readonly filter: WorkerLogFilter;
  private pollTimer: NodeJS.Timeout | undefined;
  private postmasterPid: number | undefined;
  private watcher: SourceWatcher | undefined;
  private checker: TypeChecker | undefined;
  private inflight: Promise<void> = Promise.resolve();
  /** one build at a time; saves during a build make one more build after it */
  private building = false;
  private again = false;

  constructor(
    private readonly s: DevSettings,
    private bundle: BundleResult,
  ) {
    this.filter = new WorkerLogFilter(s.name);
  }

  private requestStop(): void {
    this.stopRequested = true;
    this.wake();
  }

  /** The stop signals mean "stop the server, clean up, exit". */
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    if (this.stopRequested) this.s.err(`(${sig}: already stopping)`);
    else this.requestStop();
  };

  /** The last resort, disarmed when cleanup() is done: only synchronous work is possible here. */
  private readonly onExit = (): void => {
    const { datadir, dir, pgCtl } = this.cluster;
    const serverUser = this.s.serverUser;
    spawnSync(pgCtl, ['stop', '-D', datadir, '-m', 'immediate', '-w', '-t', '30', '-s'], {
      cwd: '/',
      stdio: 'ignore',
      ...(serverUser ? { uid: serverUser.uid, gid: serverUser.gid } : {}),
    });
    if (!this.s.opts.keep) removeDevDirectorySync(dir, serverUser);
  };

  /** Runs the session to its end; see dev(). */
  async run(): Promise<number> {
    for (const sig of STOP_SIGNALS) process.on(sig, this.onSignal);
    this.cluster = makeDevCluster(this.s);
    process.on('exit', this.onExit);
    this.tail = new FileTail(this.cluster.logFile);
    try {
      await this.setUp();
    } catch (e) {
      if (this.stopRequested) {
        // Ctrl-C while setting up (it also reached initdb or pg_ctl): not an error
        await this.cleanup();
        return this.serverDied ? 1 : 0;
      }
      const lines = serverLogTail(this.cluster.logFile, 20);
      if (lines !== undefined) {
        this.s.err(`last lines of the server log:`);
        for (const l of lines) this.s.err(`  | ${l}`);
      }
      await this.cleanup().catch((e2) => this.s.err(`cleanup failed: ${errorText(e2)}`));
      throw e;
    }
    if (this.stopRequested) {
      await this.cleanup();
      return 0;
    }
    this.announce();
    this.watcher = new SourceWatcher(() => this.onChange(), this.s.opts.debounceMs ?? 100, (m) => this.s.err(`warning: ${m}`));
    this.watcher.set([this.s.absFile, ...this.bundle.inputs]);
    if (this.s.opts.typeCheck !== false) this.checker = startTypeCheck(this.s.absFile, { out: this.s.out, err: this.s.err });
    await this.stopped;
    await this.cleanup();
    return this.serverDied ? 1 : 0;
  }

  /** Runs a program as the server's OS user in the dev directory; throws when it fails. */
  private async runAsServer(prog: string, args: string[], what: string): Promise<void> {
    const r = await runProgram(prog, args, { as: this.s.serverUser, cwd: this.cluster.dir, env: { LC_ALL: 'C' } });
    if (r.status !== 0) throw new CliError(`${what} failed (${r.status ?? r.signal}):\n${(r.stdout + r.stderr).trimEnd()}`);
  }

  /** Deploys a bundle into the dev cluster. */
  private async deployBundle(bundle: BundleResult): Promise<void> {
    const { absFile, pgConfig, nodeTarget } = this.s;
    await deploy(absFile, { pgdata: this.cluster.datadir, pgConfig, prebuilt: { ...bundle, nodeTarget }, log: () => undefined, warn: this.s.err });
  }

  /** The cluster, the deployment, the server, the extension. */
  private async setUp(): Promise<void> {
    const { dir, datadir, logFile, pgCtl } = this.cluster;
    const { serverUser, pgConfig } = this.s;
    const devDir = DirHandle.open(dir, { followLinks: false });
    try {
      // trust authentication: the socket's directory is what protects the cluster
      devDir.setModeAndOwner(0o700, serverUser);
    } finally {
      devDir.close();
    }
    this.s.out(`creating a throwaway cluster in ${dir}`);
    const initdb = pgProgram(pgConfig, 'initdb');
    await this.runAsServer(initdb, ['-D', datadir, '-A', 'trust', '-U', DEV_USER, '--no-sync', '-E', 'UTF8', '--locale=C', '--no-instructions'], 'initdb');
    appendToConf(dir, serverUser, devSettings(dir, this.s.port));
    if (this.s.opts.inspectPort !== undefined) appendToConf(dir, serverUser, inspectSettings(this.s.name, this.s.opts.inspectPort));
    await this.deployBundle(this.bundle);
    if (this.stopRequested) return;
    this.pollTimer = setInterval(() => this.poll(), LOG_POLL_MS);
    await this.runAsServer(pgCtl, ['start', '-D', datadir, '-l', logFile, '-w', '-t', '60', '-s'], 'pg_ctl start');
    this.postmasterPid = readPostmasterPid(datadir)?.pid;
    await psql(pgConfig, this.cluster.target, 'SET client_min_messages = warning;\nCREATE EXTENSION IF NOT EXISTS pg_node_worker;\n');
  }

  /** Every LOG_POLL_MS: the new log lines, and whether the server is still there. */
  private poll(): void {
    this.drainLog();
    if (!this.stopRequested && this.postmasterPid !== undefined && processExited(this.postmasterPid)) {
      this.s.err(`the server (pid ${this.postmasterPid}) is gone`);
      this.serverDied = true;
      this.requestStop();
    }
  }

  private drainLog(): void {
    for (const l of this.tail.poll()) {
      const shown = this.filter.push(l);
      if (shown !== null) this.s.out(shown);
    }
  }

  private announce(): void {
    const { out, port, name, opts } = this.s;
    const dir = this.cluster.dir;
    out(`server running (pid ${this.postmasterPid}); connect with: psql -h ${dir} -p ${port} -U ${DEV_USER}`);
    out(`worker "${name}" deployed; watching ${this.bundle.inputs.map(rel).join(', ')}`);
    if (opts.inspectPort !== undefined) {
      out(
        `debugger: "${name}" listens on 127.0.0.1:${opts.inspectPort} (a new DevTools URL in its log at each restart); ` +
          `chrome://inspect with target 127.0.0.1:${opts.inspectPort}, or VS Code's "attach" to that port`,
      );
    }
    out(`Ctrl-C stops the server and ${opts.keep ? 'keeps' : 'removes'} ${dir}`);
  }

  /**
   * Stops the server and removes (or keeps) the directory. The signal handlers stay until the
   * end: a second SIGHUP or Ctrl-C during the cleanup must not end the process half-way with the
   * server still running.
   */
  private async cleanup(): Promise<void> {
    const { dir, datadir, logFile, pgCtl } = this.cluster;
    const { serverUser, out, err } = this.s;
    this.watcher?.close();
    this.checker?.close();
    if (this.pollTimer) clearInterval(this.pollTimer);
    await this.inflight.catch(() => undefined);
    const pm = readPostmasterPid(datadir);
    if (pm && pm.alive) {
      const r = await runProgram(pgCtl, ['stop', '-D', datadir, '-m', 'fast', '-w', '-t', '60', '-s'], { as: serverUser, cwd: dir });
      if (r.status !== 0) err(`pg_ctl stop failed: ${(r.stdout + r.stderr).trim()}`);
      // pg_ctl returns when postmaster.pid is gone; the process itself exits a moment later
      for (let i = 0; i < 100 && !processExited(pm.pid); i++) await new Promise((r) => setTimeout(r, 50));
    }
    this.drainLog();
    if (this.s.opts.keep) {
      out(
        `kept ${dir} (server stopped): start it again with pg_ctl start -D ${datadir} -l ${logFile}` +
          (serverUser ? ` (as ${serverUser.name})` : ''),
      );
    } else {
      await removeDevDirectory(dir, serverUser);
      out(`stopped the server and removed ${dir}`);
    }
    process.removeListener('exit', this.onExit);
    for (const sig of STOP_SIGNALS) process.removeListener(sig, this.onSignal);
  }

  /** A save: build now, or once more after the build that runs. */
  private onChange(): void {
    if (this.stopRequested) return;
    if (this.building) {
      this.again = true;
      return;
    }
    this.building = true;
    this.inflight = (async () => {
      do {
        this.again = false;
        await this.buildOnce();
      } while (this.again && !this.stopRequested);
      this.building = false;
    })();
  }

  /** A build that failed: say so, keep the old code, rebuild on a save of any source file. */
  private buildFailed(e: CliError): void {
    this.watcher!.anyFile = true;
    this.s.err(`build failed; worker "${this.s.name}" keeps running the previous code:`);
    for (const l of buildErrorLines(e)) this.s.err(l);
  }

  /** One build; on success deploy and restart the worker. Never throws. */
  private async buildOnce(): Promise<void> {
    const { absFile, nodeTarget, name, err } = this.s;
    try {
      let next: BundleResult;
      try {
        next = await bundleWorker(absFile, { nodeTarget });
      } catch (e) {
        if (!(e instanceof CliError)) throw e;
        if (!this.stopRequested) this.buildFailed(e);
        return;
      }
      if (this.stopRequested) return;
      this.watcher!.anyFile = false;
      this.watcher!.set([absFile, ...next.inputs]);
      for (const w of next.warnings) err(`warning: ${w}`);
      if (next.definition.name !== name) {
        err(
          `the worker is now named "${next.definition.name}", not "${name}": dev keeps running "${name}" ` +
            `with the previous code (restart dev to rename it)`,
        );
        return;
      }
      this.bundle = next;
      await this.deployBundle(next);
      const r = await restartWorker(this.s.pgConfig, this.cluster.target, name);
      if (!r.ok) throw new Error('pg_node_worker is not loaded in the dev server');
      this.filter.addPid(r.pid);
      this.drainLog();
      this.s.out(`restarted ${name} (pid ${r.pid})`);
    } catch (e) {
      if (!this.stopRequested) err(`could not restart "${name}": ${errorText(e)}`);
    }
  }
}

/**
 * Run dev mode until SIGINT, SIGTERM, SIGQUIT or SIGHUP (resolves 0 after the cleanup) or until
 * the server dies (resolves 1 after the cleanup). A failure while setting up rejects, after
 * removing what was created. Should the process exit any other way before the cleanup is done (an
 * uncaught error), the server is stopped (immediate mode) and the directory removed on the way out.
 */
export async function dev(file: string, opts: DevOptions = {}): Promise<number> {
  const out = opts.out ?? ((l: string) => printLine(process.stdout, l));
  const err = opts.err ?? ((l: string) => printLine(process.stderr, l));
  // after a hangup the terminal is gone: a write error must not end the process before cleanup
  ignoreStreamErrors(process.stdout);
  ignoreStreamErrors(process.stderr);
  const pgConfig = pgConfigCommand(opts.pgConfig);
  const port = opts.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CliError(`invalid port ${opts.port}`);
  const absFile = path.resolve(file);
  const nodeTarget = opts.nodeTarget ?? resolveNodeTarget(pgConfig, err).target;

  // Build first: a file that does not build needs no cluster; nor does a port that is taken.
  const bundle = await bundleWorker(absFile, { nodeTarget });
  if (opts.inspectPort !== undefined) await checkInspectPort(opts.inspectPort);
  for (const w of bundle.warnings) err(`warning: ${w}`);
  const serverUser = devServerUser();
  const settings: DevSettings = { absFile, name: bundle.definition.name, opts, out, err, pgConfig, port, nodeTarget, serverUser };
  return new DevSession(settings, bundle).run();
}
