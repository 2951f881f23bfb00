/**
 * Talking to a running server from the CLI: postmaster.pid, the data directory's owner, the
 * PostgreSQL programs (pg_config --bindir) and SQL through psql.
 *
 * Why psql and not a driver in this process: on Debian the default pg_hba.conf authenticates
 * local connections by `peer` (the OS user must be the database user). The CLI usually runs as
 * root (it writes into the data directory), and root is no database user; a client library
 * inside this process would connect as root. So as root the CLI runs psql as the data
 * directory's owner (uid/gid of PGDATA) and connects as the database user of the same name,
 * which both `peer` and `trust` accept. It also gets libpq's behaviour for free: conninfo
 * strings and URIs, PGUSER/PGPASSWORD/.pgpass, PGSERVICE, sslmode.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError } from './errors';
import { DirHandle, FileContent, isRoot } from './fsutil';

// ---------------------------------------------------------------------------------------------
// Users

/** An OS user by name and ids. */
export interface OsUser {
  uid: number;
  gid: number;
  name: string;
  home: string;
}

function parsePasswd(text: string, match: (f: string[]) => boolean): OsUser | undefined {
  for (const l of text.split('\n')) {
    const f = l.split(':');
    if (f.length >= 7 && match(f)) return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' };
  }
  return undefined;
}

/** An OS user by uid or name: /etc/passwd, else `getent passwd` (NSS: LDAP, sssd). */
export function lookupUser(key: number | string): OsUser | undefined {
  const match = (f: string[]) => (typeof key === 'number' ? Number(f[2]) === key : f[0] === key);
  try {
    const u = parsePasswd(fs.readFileSync('/etc/passwd', 'utf8'), match);
    if (u) return u;
  } catch {
    /* no passwd file */
  }
  try {
    const out = execFileSync('getent', ['passwd', String(key)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return parsePasswd(out, match);
  } catch {
    return undefined;
  }
}

/** The owner of the data directory: the OS user the server runs as. */
export function dataOwner(pgdata: string): OsUser {
  const st = fs.statSync(pgdata);
  return lookupUser(st.uid) ?? { uid: st.uid, gid: st.gid, name: String(st.uid), home: '/' };
}

// ---------------------------------------------------------------------------------------------
// Programs

const bindirCache = new Map<string, string | null>();

/** `<pg_config --bindir>/<prog>` when it exists, else `<prog>` (found on PATH). */
export function pgProgram(pgConfig: string, prog: string): string {
  let bindir = bindirCache.get(pgConfig);
  if (bindir === undefined) {
    try {
      bindir = execFileSync(pgConfig, ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
    } catch {
      bindir = null;
    }
    bindirCache.set(pgConfig, bindir);
  }
  if (bindir) {
    const p = path.join(bindir, prog);
    if (fs.existsSync(p)) return p;
  }
  return prog;
}

/** How a program run by runProgram ended, and what it printed. */
export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** How runProgram runs a program. */
export interface RunOptions {
  /** run as this OS user (only possible as root) */
  as?: OsUser;
  /** text for stdin */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Run a program asynchronously and collect its output. Rejects only when it cannot be started. */
export function runProgram(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...opts.env };
    if (opts.as) {
      env.HOME = opts.as.home;
      env.USER = env.LOGNAME = opts.as.name;
    }
    const child = spawn(file, args, {
      cwd: opts.cwd ?? '/',
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.as ? { uid: opts.as.uid, gid: opts.as.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => reject(new CliError(`cannot run ${file}: ${e.message}`)));
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    child.stdin.on('error', () => undefined); // the program may exit without reading
    child.stdin.end(opts.input ?? '');
  });
}

// ---------------------------------------------------------------------------------------------
// postmaster.pid

/** What postmaster.pid says about a server. */
export interface PostmasterInfo {
  pid: number;
  /** true when a process with that pid exists */
  alive: boolean;
  port: number;
  /** the first of unix_socket_directories (absolute), or '' when the server has no unix socket */
  socketDir: string;
  /** 'starting', 'ready', 'stopping', 'standby', or '' (older servers) */
  status: string;
}

/** A process with this pid exists (it may belong to another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True once a process has exited (a zombie waiting for its parent to reap it counts as exited). */
export function processExited(pid: number): boolean {
  if (!processAlive(pid)) return true;
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] === 'Z';
  } catch {
    return !processAlive(pid);
  }
}

/**
 * Read PGDATA/postmaster.pid (see pidfile.h): line 1 pid, 4 port, 5 first socket directory,
 * 8 status. Null when there is no such file (the server is not running).
 */
export function readPostmasterPid(pgdata: string): PostmasterInfo | null {
  // The server writes postmaster.pid as a regular file. A link in its place was put there by
  // someone else (the data directory's owner can): reading through it as root would hand lines
  // of any file to psql's command line (run as that owner) and to error messages.
  const file = path.join(pgdata, 'postmaster.pid');
  const hint =
    ': the server writes postmaster.pid as a regular file, so someone else put this there; ' +
    'the CLI does not read through it. Find out who, and remove it';
  let dir: DirHandle | undefined;
  let content: FileContent | undefined;
  try {
    dir = DirHandle.open(pgdata, { followLinks: true, hint });
    content = dir.readFile('postmaster.pid', { followLinks: false });
  } catch (e) {
    if (e instanceof CliError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  } finally {
    dir?.close();
  }
  if (!content) return null;
  const text = content.data.toString('utf8');
  const lines = text.split('\n');
  const pid = Math.abs(Number(lines[0]?.trim())); // negative: a single-user backend
  let socketDir = (lines[4] ?? '').trim();
  if (socketDir !== '' && !socketDir.startsWith('@') && !path.isAbsolute(socketDir)) {
    socketDir = path.resolve(pgdata, socketDir); // relative to the server's cwd, the data directory
  }
  return {
    pid,
    alive: processAlive(pid),
    port: Number((lines[3] ?? '').trim()) || 5432,
    socketDir,
    status: (lines[7] ?? '').trim(),
  };
}

// ---------------------------------------------------------------------------------------------
// psql

/** How to reach a server with psql. */
export interface PsqlTarget {
  /** connection arguments for psql (-h/-p/-U/-d, or -d CONNSTRING) */
  args: string[];
  /** run psql as this OS user (root connecting to a local cluster as its owner) */
  as?: OsUser;
  /** for messages: "the server of /var/lib/postgresql/15/main" */
  label: string;
}

/**
 * The local server of a data directory, over the unix socket named in postmaster.pid, as the
 * database user $PGUSER or else the name of the data directory's owner. As root, psql runs as
 * that owner (peer authentication maps the OS user to the database user of the same name).
 */
export function localTarget(pgdata: string, pm: PostmasterInfo, database = 'postgres', env = process.env): PsqlTarget {
  const label = `the server of ${pgdata}`;
  if (pm.socketDir === '') {
    throw new CliError(
      `${label} (pid ${pm.pid}) listens on no unix socket (the socket directory line of ` +
        `postmaster.pid is empty: unix_socket_directories = ''), so the CLI cannot connect to it; ` +
        `set unix_socket_directories, or connect yourself`,
    );
  }
  const owner = dataOwner(pgdata);
  const user = env.PGUSER || owner.name;
  return {
    args: ['-h', pm.socketDir, '-p', String(pm.port), '-U', user, '-d', database],
    as: isRoot() && owner.uid !== 0 ? owner : undefined,
    label,
  };
}

/** A server given by a connection string (or database name), psql run as the current user. */
export function conninfoTarget(conninfo: string): PsqlTarget {
  return { args: ['-d', conninfo], label: `the server of "${conninfo}"` };
}

/** psql's error lines without its "psql:<stdin>:3: " / "psql: error: " prefixes. */
export function cleanPsqlErrors(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.replace(/^psql:<stdin>:\d+: /, '').replace(/^psql: error: /, ''))
    .filter((l) => l.trim() !== '')
    .join('\n');
}

/**
 * Run a psql script (stdin) against `target`: no psqlrc, unaligned tuples only, stop at the
 * first error. `vars` become psql variables (use them as :'name' for a quoted literal).
 * Returns stdout; a failure throws a CliError with the server's message.
 */
export async function psql(pgConfig: string, target: PsqlTarget, script: string, vars: Record<string, string> = {}): Promise<string> {
  const prog = pgProgram(pgConfig, 'psql');
  const args = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1'];
  for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
  args.push(...target.args, '-f', '-');
  const r = await runProgram(prog, args, {
    as: target.as,
    input: script,
    env: { PGAPPNAME: 'pg-node-worker', PGCONNECT_TIMEOUT: process.env.PGCONNECT_TIMEOUT ?? '10' },
  });
  if (r.status !== 0) {
    const msg = cleanPsqlErrors(r.stderr) || `psql exited with ${r.status ?? r.signal}`;
    const who = target.as ? ` (psql ran as the OS user ${target.as.name})` : '';
    throw new CliError(`${target.label}${who}: ${msg}`);
  }
  return r.stdout;
}

/** The SQL expression: is pg_node_worker in the running server's shared_preload_libraries? */
export const PRELOADED_SQL = `SELECT 'pg_node_worker' = ANY (
  SELECT regexp_replace(btrim(l, ' "'), '^.*/|\\.so$', '', 'g')
  FROM unnest(string_to_array(current_setting('shared_preload_libraries'), ',')) AS l) AS pgnw_preloaded \\gset
`;

/** What restartWorker achieved. */
export type RestartOutcome =
  | { ok: true; pid: number }
  | { ok: false; reason: 'not-preloaded' }
  /** the server could not load the manifest on disk (`message`: its error); nothing was stopped */
  | { ok: false; reason: 'refused'; message: string };

/** node_worker.restart()'s error for a manifest it cannot load (it checks before stopping anything). */
const MANIFEST_REFUSED_RE = /could not load node worker manifest/;

/**
 * In the running server: CREATE EXTENSION IF NOT EXISTS pg_node_worker, then
 * node_worker.restart(name), which starts the worker again from its current bundle and returns
 * the new pid. Nothing is done when the server did not load pg_node_worker at start.
 */
export async function restartWorker(pgConfig: string, target: PsqlTarget, name: string): Promise<RestartOutcome> {
  const out = await psql(
    pgConfig,
    target,
    `SET client_min_messages = warning;
${PRELOADED_SQL}\\if :pgnw_preloaded
CREATE EXTENSION IF NOT EXISTS pg_node_worker;
SELECT 'pid=' || node_worker.restart(:'pgnw_name');
\\else
\\echo not-preloaded
\\endif
`,
    { pgnw_name: name },
  ).catch((e: unknown): string | RestartOutcome => {
    if (e instanceof CliError && MANIFEST_REFUSED_RE.test(e.message)) return { ok: false, reason: 'refused', message: e.message };
    if (e instanceof CliError && /function node_worker\.restart\(.*\) does not exist/.test(e.message)) {
      throw new CliError(
        `${e.message}\n(the extension in database postgres is an older version: ALTER EXTENSION pg_node_worker UPDATE)`,
      );
    }
    throw e;
  });
  if (typeof out !== 'string') return out;
  const m = /^pid=(\d+)$/m.exec(out);
  if (m) return { ok: true, pid: Number(m[1]) };
  if (/^not-preloaded$/m.test(out)) return { ok: false, reason: 'not-preloaded' };
  throw new Error(`unexpected output of psql: ${JSON.stringify(out)}`);
}
