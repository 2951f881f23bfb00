/**
 * What the tests that break things share: how the server log says a child crashed, aborted or
 * exited, the memory of a process, manifests and files written into node_worker.directory by hand.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { Cluster, PG_BIN, procStat } from './cluster';

/** what the postmaster logs when a child crashed and it resets the cluster */
export const RESET = /terminated by signal|was terminated by|terminating any other active server processes|all server processes terminated/;
/** what libnode/V8 print when the process aborts (static destructors, fatal errors) */
export const ABORT = /Disposing the isolate|FATAL ERROR|Fatal error in|Native stack trace|Aborted|core dumped/;
/** the %m timestamp at the start of a server log line */
export const TS = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3}';
/** a %m timestamp in seconds */
export const logTime = (ts: string): number => Date.parse(ts.replace(' ', 'T') + 'Z') / 1000;
/** seconds since a process.hrtime.bigint() */
export const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

/**
 * A client whose connection errors never become uncaught exceptions (a cluster reset makes the
 * server close every connection; pg emits 'error' on an idle client).
 */
export async function connect(cluster: Cluster, database = 'postgres', user = 'postgres'): Promise<pg.Client> {
  const client = new pg.Client({ host: cluster.dir, port: cluster.port, user, database });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Runs sql as `user` (a fresh connection); resolves to the rows or to the error. */
export async function queryAs(
  cluster: Cluster,
  user: string,
  sql: string,
  params: unknown[] = [],
): Promise<{ rows?: any[]; error?: { code: string; message: string } }> {
  const client = await connect(cluster, 'postgres', user);
  try {
    return { rows: (await client.query(sql, params)).rows };
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { error: { code: err.code ?? '', message: err.message } };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Resident set size of a process in kB (VmRSS), or null when it is gone. */
export function rssKb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export interface MemoryKb {
  /** VmRSS: everything resident, shared memory pages the process touched included */
  rss: number;
  /** RssAnon: private memory (malloc, the V8 heap, Buffers): what the process itself uses */
  anon: number;
  /** RssFile: mapped files (libnode, the server binary, ...) */
  file: number;
  /** RssShmem: PostgreSQL's shared memory (shared_buffers, ...) the process touched */
  shmem: number;
}

/** The resident memory of a process split by kind (kB), or null when it is gone. */
export function memoryKb(pid: number): MemoryKb | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile'), shmem: field('RssShmem') };
}

/** pids whose parent is `ppid`. */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const fields = procStat(Number(name));
    if (fields && Number(fields[1]) === ppid) out.push(Number(name));
  }
  return out;
}

/** The directory the server reads manifests from (the default node_worker.directory). */
export function workerDir(cluster: Cluster): string {
  return path.join(cluster.datadir, 'node_worker');
}

/** A manifest as the CLI writes it, with `fields` overriding; `null` values stay, `undefined` drops the key. */
export function manifest(name: string, fields: Record<string, unknown> = {}): string {
  const m: Record<string, unknown> = {
    format: 1,
    name,
    database: 'postgres',
    role: null,
    restart: 1,
    start: 'recovery-finished',
    bundle: `${name}.js`,
    sha256: null,
    ...fields,
  };
  for (const k of Object.keys(m)) if (m[k] === undefined) delete m[k];
  return JSON.stringify(m, null, 2) + '\n';
}

/** Writes a file into the worker directory, owned like the data directory (as deploy does). */
export function writeOwned(cluster: Cluster, file: string, data: string | Buffer, mode = 0o640): string {
  const p = path.isAbsolute(file) ? file : path.join(workerDir(cluster), file);
  fs.writeFileSync(p, data, { mode });
  fs.chmodSync(p, mode);
  const st = fs.statSync(cluster.datadir);
  if (process.getuid?.() === 0) fs.lchownSync(p, st.uid, st.gid);
  return p;
}

/**
 * Starts the cluster with `ulimit -d` (RLIMIT_DATA, kB) on the postmaster, inherited by every
 * server process: allocations past it fail with ENOMEM instead of waking the OOM killer.
 */
export function startWithDataLimit(cluster: Cluster, limitKb: number): void {
  cluster.run('/bin/bash', [
    '-c',
    `ulimit -d ${limitKb} && exec "$0" "$@"`,
    path.join(PG_BIN, 'pg_ctl'),
    '-D', cluster.datadir, '-l', cluster.logFile, '-w', '-t', '60', 'start',
  ]);
}

/** The [pid] of every log line matching re (which must not have the g flag). */
export function pidsOf(log: string, re: RegExp): number[] {
  const out: number[] = [];
  for (const line of log.split('\n')) {
    if (!re.test(line)) continue;
    const m = /\[(\d+)\]/.exec(line);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

/** How a child ended according to the postmaster's log line, or null when not logged yet. */
export function exitOf(log: string, pid: number): string | null {
  const m = new RegExp(`\\(PID ${pid}\\) (exited with exit code \\d+|was terminated by signal \\d+)`).exec(log);
  return m ? m[1] : null;
}

/**
 * The log entry of process `pid` whose first line matches `re` (searched after the `[pid] `
 * prefix): that line, its continuation lines (a stack) and the DETAIL, HINT and CONTEXT lines
 * after it; null when there is none.
 */
export function logEntry(log: string, pid: number, re: RegExp): string | null {
  const lines = log.split('\n');
  const prefix = `[${pid}] `;
  const start = lines.findIndex((l) => l.includes(prefix) && re.test(l.slice(l.indexOf(prefix) + prefix.length)));
  if (start < 0) return null;
  const newLine = new RegExp(`^${TS}`);
  const detail = new RegExp(`\\[${pid}\\] (DETAIL|HINT|CONTEXT):  `);
  const out = [lines[start]];
  for (const l of lines.slice(start + 1)) {
    if (newLine.test(l) && !detail.test(l)) break;
    out.push(l);
  }
  return out.join('\n');
}

/**
 * The log entry that says why worker `name` (process `pid`) left: the runtime's line when it gives
 * up on a worker, or the error that ended it (uncaught, main failed, its bundle did not load), with
 * their DETAIL lines; null when there is none. Which of them it is depends on which thread or
 * allocation noticed first: tests judge what it says (see OUT_OF_MEMORY), not which one it is.
 */
export function whyItLeft(log: string, pid: number, name: string): string | null {
  return logEntry(
    log,
    pid,
    new RegExp(`^(LOG:  node worker "${name}"[: ]|ERROR:  ${name}: |FATAL:  |PANIC:  )`),
  );
}

/** what whyItLeft() says when memory ran out (the V8 heap, a Buffer, Node's own allocations) */
export const OUT_OF_MEMORY = /memory|heap|allocation failed/i;

/**
 * The message of the RangeError an ArrayBuffer past the budget throws: V8's words for a refused
 * backing store (up to V8 12, Node 22: "Array buffer allocation failed"; V8 13, Node 24: "Failed
 * to allocate memory").
 */
export const BUFFER_REFUSED = /^(Array buffer allocation failed|Failed to allocate memory)$/;
export const BUFFER_REFUSED_TEXT = 'RangeError: (?:Array buffer allocation failed|Failed to allocate memory)';
