/**
 * `pg-node-worker deploy`: bundle a worker, write <name>.js and <name>.json into the worker
 * directory of a data directory, and make sure shared_preload_libraries loads pg_node_worker.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StartTime } from '../types';
import { BundleResult, bundleWorker, displayPath } from './bundle';
import { CliError } from './errors';
import { isRoot, Owner, writeFileAtomic } from './fsutil';
import { addPreloadLibrary, AUTO_CONF, ConfEntry, lastSetting, readConfEntries } from './pgconf';
import { localTarget, lookupUser, readPostmasterPid, restartWorker } from './server';

export const LIBRARY = 'pg_node_worker';
export const DIRECTORY_SETTING = 'node_worker.directory';
export const DEFAULT_DIRECTORY = 'node_worker';
export const FALLBACK_NODE_TARGET = 'node18';
const FILE_MODE = 0o640;
const DIR_MODE = 0o750;
/**
 * The largest bundle deploy writes. Each start of the worker reads and compiles the whole bundle
 * (a 50 MB bundle: ~1 s and ~100 MB of JavaScript heap), so data belongs in a table or a file read
 * at run time, not in the code.
 */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

/** `<node_worker.directory>/<name>.json`, see docs/DESIGN.md. Field order is the documented one. */
export interface Manifest {
  format: 1;
  name: string;
  database: string;
  role: string | null;
  restart: number | 'never';
  start: StartTime;
  bundle: string;
  sha256: string;
  deployedAt: string;
  nodeTarget: string;
  /** roles that may call/notify/wake it, comma-separated (omitted: admins only) */
  callers?: string;
  /** the search_path, schema names comma-separated (omitted: pg_catalog only) */
  searchPath?: string;
  /** V8 heap limit in MB (omitted: node_worker.heap_limit_mb) */
  heapLimitMb?: number;
  /** ArrayBuffer/Buffer limit in MB (omitted: node_worker.buffer_limit_mb) */
  bufferLimitMb?: number;
}

export interface DeployOptions {
  /** the data directory */
  pgdata: string;
  /** where to put the worker (default: node_worker.directory from the configuration, else PGDATA/node_worker) */
  directory?: string;
  /** the server's postgresql.conf when it is not PGDATA/postgresql.conf (default: from postmaster.opts) */
  configFile?: string;
  /** esbuild target; default: from the installed extension's node-version file */
  nodeTarget?: string;
  /** pg_config to ask for --pkglibdir / --bindir (default: $PG_CONFIG, else pg_config on PATH) */
  pgConfig?: string;
  /**
   * when the server is running: restart just this worker (node_worker.restart) so that the new
   * code runs; the server keeps running. Not running: nothing to restart.
   */
  restart?: boolean;
  /** an already bundled worker (dev mode): deploy it instead of bundling `file` again */
  prebuilt?: BundleResult & { nodeTarget: string };
  /** a line for stdout (default: process.stdout) */
  log?: (line: string) => void;
  /** a line for stderr (default: process.stderr) */
  warn?: (line: string) => void;
  /** deployedAt (tests) */
  now?: Date;
  /** refuse bundles larger than this (default MAX_BUNDLE_BYTES; tests) */
  maxBundleBytes?: number;
}

export interface DeployResult {
  manifest: Manifest;
  directory: string;
  bundlePath: string;
  manifestPath: string;
  bytes: number;
  /** true when this replaced an earlier deployment of the same name */
  replaced: boolean;
  preload: { changed: boolean; file: string; value: string };
  /** whether the server was running (postmaster.pid present and its process alive) */
  serverRunning: boolean;
  /** the new pid of the worker, when --restart restarted it */
  restartedPid?: number;
}

export function pgConfigCommand(explicit?: string): string {
  return explicit || process.env.PG_CONFIG || 'pg_config';
}

export interface NodeTargetInfo {
  target: string;
  /** from pg_config --pkglibdir, when pg_config ran */
  pkglibdir?: string;
  /** the server's major version according to pg_config, when known */
  pgMajor?: string;
}

/** 'PostgreSQL 15.20 (Debian ...)' -> '15'; '9.6.1' -> '9.6' */
function majorOf(version: string): string | undefined {
  const m = /(\d+)(?:\.(\d+))?/.exec(version);
  if (!m) return undefined;
  return Number(m[1]) >= 10 ? m[1] : `${m[1]}.${m[2] ?? '0'}`;
}

/**
 * The esbuild target for the Node embedded in the server: `<pkglibdir>/pg_node_worker/node-version`
 * ("18.20.4" -> "node18.20"). Not installed: node18, with a warning.
 */
export function resolveNodeTarget(pgConfig: string, warn: (l: string) => void): NodeTargetInfo {
  let out: string;
  try {
    out = execFileSync(pgConfig, ['--pkglibdir', '--version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    warn(
      `warning: cannot run ${pgConfig} (${(e as Error).message.split('\n')[0]}); ` +
        `bundling for ${FALLBACK_NODE_TARGET} (set PG_CONFIG or use --target)`,
    );
    return { target: FALLBACK_NODE_TARGET };
  }
  const [pkglibdir = '', versionLine = ''] = out.split('\n').map((l) => l.trim());
  const pgMajor = majorOf(versionLine);
  const file = path.join(pkglibdir, LIBRARY, 'node-version');
  let version: string;
  try {
    version = fs.readFileSync(file, 'utf8').trim();
  } catch {
    warn(
      `warning: pg_node_worker is not installed in ${pkglibdir} (no ${file}); ` +
        `bundling for ${FALLBACK_NODE_TARGET}`,
    );
    return { target: FALLBACK_NODE_TARGET, pkglibdir, pgMajor };
  }
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  if (!m) {
    warn(`warning: ${file} says ${JSON.stringify(version)}, not a version; bundling for ${FALLBACK_NODE_TARGET}`);
    return { target: FALLBACK_NODE_TARGET, pkglibdir, pgMajor };
  }
  return { target: `node${m[1]}.${m[2]}`, pkglibdir, pgMajor };
}

/** Refuse anything that is not a data directory. Returns its absolute path. */
export function checkDataDirectory(pgdata: string): string {
  const abs = path.resolve(pgdata);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new CliError(`data directory ${pgdata} does not exist`);
  }
  if (!st.isDirectory()) throw new CliError(`${pgdata} is not a directory`);
  if (!fs.existsSync(path.join(abs, 'PG_VERSION'))) {
    throw new CliError(`${pgdata} is not a PostgreSQL data directory (no PG_VERSION file)`);
  }
  return abs;
}

/**
 * The server's main configuration file: explicit, else the config_file the server was last
 * started with (postmaster.opts; Debian keeps it in /etc/postgresql/...), else PGDATA/postgresql.conf.
 */
export function findConfigFile(pgdata: string, explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  try {
    const opts = fs.readFileSync(path.join(pgdata, 'postmaster.opts'), 'utf8');
    const m = /"(?:--)?config[-_]file=([^"]+)"/.exec(opts);
    if (m) return path.resolve(pgdata, m[1]);
  } catch {
    /* never started */
  }
  return path.join(pgdata, 'postgresql.conf');
}

/** --directory (relative to the cwd), else node_worker.directory (relative to PGDATA), else PGDATA/node_worker. */
export function resolveWorkerDirectory(pgdata: string, explicit: string | undefined, entries: ConfEntry[]): string {
  if (explicit) return path.resolve(explicit);
  const e = lastSetting(entries, DIRECTORY_SETTING);
  if (e && e.value !== '') return path.resolve(pgdata, e.value);
  return path.join(pgdata, DEFAULT_DIRECTORY);
}

function fsError(what: string, e: unknown): never {
  if (e instanceof CliError) throw e;
  const err = e as NodeJS.ErrnoException;
  const hint = err.code === 'EACCES' || err.code === 'EPERM' ? " (run as the data directory's owner or root)" : '';
  throw new CliError(`cannot ${what}: ${err.message}${hint}`);
}

/** Create the worker directory (and missing parents) mode 0750, owned by `owner` when given. */
function ensureDirectory(dir: string, pgdata: string, owner: Owner | undefined, warn: (l: string) => void): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch {
    /* missing */
  }
  if (st) {
    if (!st.isDirectory()) throw new CliError(`${dir} exists and is not a directory`);
    const inside = !path.relative(pgdata, dir).startsWith('..');
    if (owner && (st.uid !== owner.uid || st.gid !== owner.gid)) {
      if (inside) fs.chownSync(dir, owner.uid, owner.gid);
      else warn(`warning: ${dir} is not owned by the data directory's owner (uid ${owner.uid}): the server must be able to read it`);
    }
    return;
  }
  const missing: string[] = [];
  for (let p = dir; !fs.existsSync(p); p = path.dirname(p)) missing.unshift(p);
  for (const p of missing) {
    fs.mkdirSync(p, DIR_MODE);
    fs.chmodSync(p, DIR_MODE);
    if (owner) fs.chownSync(p, owner.uid, owner.gid);
  }
}

function formatSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1000 * 1000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function formatLimit(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

export async function deploy(file: string, opts: DeployOptions): Promise<DeployResult> {
  const log = opts.log ?? ((l: string) => void process.stdout.write(l + '\n'));
  const warn = opts.warn ?? ((l: string) => void process.stderr.write(l + '\n'));

  const pgdata = checkDataDirectory(opts.pgdata);
  if (!fs.existsSync(file)) throw new CliError(`${file}: no such file`);
  const pgConfig = pgConfigCommand(opts.pgConfig);

  const tgt: NodeTargetInfo = opts.prebuilt
    ? { target: opts.prebuilt.nodeTarget }
    : opts.nodeTarget
      ? { target: opts.nodeTarget }
      : resolveNodeTarget(pgConfig, warn);
  if (tgt.pgMajor) {
    const dataMajor = majorOf(fs.readFileSync(path.join(pgdata, 'PG_VERSION'), 'utf8').trim());
    if (dataMajor && dataMajor !== tgt.pgMajor) {
      warn(
        `warning: ${pgdata} is a PostgreSQL ${dataMajor} data directory but ${pgConfig} is PostgreSQL ` +
          `${tgt.pgMajor}: set PG_CONFIG to the server's pg_config`,
      );
    }
  }

  const { code, definition, warnings } = opts.prebuilt ?? (await bundleWorker(file, { nodeTarget: tgt.target }));
  for (const w of warnings) warn(`warning: ${w}`);

  // Read and check everything before writing anything.
  const configFile = findConfigFile(pgdata, opts.configFile);
  const autoFile = path.join(pgdata, AUTO_CONF);
  const confEntries = readConfEntries(configFile);
  const autoEntries = readConfEntries(autoFile);
  const directory = resolveWorkerDirectory(pgdata, opts.directory, [...confEntries, ...autoEntries]);
  let autoText: string | null = null;
  let autoStat: fs.Stats | undefined;
  try {
    autoText = fs.readFileSync(autoFile, 'utf8');
    autoStat = fs.statSync(autoFile);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') fsError(`read ${autoFile}`, e);
  }
  const edit = addPreloadLibrary(autoText, autoFile, confEntries, LIBRARY);

  const pgdataStat = fs.statSync(pgdata);
  const dataOwner: Owner = { uid: pgdataStat.uid, gid: pgdataStat.gid };
  const root = isRoot();
  const chownTo = root ? dataOwner : undefined;
  if (!root && typeof process.getuid === 'function' && process.getuid() !== dataOwner.uid) {
    warn(`warning: the data directory belongs to uid ${dataOwner.uid}, not to you: the server must be able to read what is written`);
  }

  const name = definition.name;
  const bundleFile = `${name}.js`;
  const bundlePath = path.join(directory, bundleFile);
  const manifestPath = path.join(directory, `${name}.json`);
  const sha256 = createHash('sha256').update(code, 'utf8').digest('hex');
  const bytes = Buffer.byteLength(code, 'utf8');
  const maxBytes = opts.maxBundleBytes ?? MAX_BUNDLE_BYTES;
  if (bytes > maxBytes) {
    throw new CliError(
      `the bundle of worker "${name}" is ${formatSize(bytes)} (${bytes} bytes), more than the limit of ` +
        `${formatLimit(maxBytes)}: every start of the worker reads and compiles all of it; keep large data ` +
        `out of the code (read it from a table or a file at run time)`,
    );
  }
  const manifest: Manifest = {
    format: 1,
    name,
    database: definition.database,
    role: definition.role,
    restart: definition.restart,
    start: definition.start,
    bundle: bundleFile,
    sha256,
    deployedAt: (opts.now ?? new Date()).toISOString(),
    nodeTarget: tgt.target,
    ...(definition.callers ? { callers: definition.callers.join(',') } : {}),
    ...(definition.searchPath ? { searchPath: definition.searchPath.join(',') } : {}),
    ...(definition.heapLimitMb ? { heapLimitMb: definition.heapLimitMb } : {}),
    ...(definition.bufferLimitMb ? { bufferLimitMb: definition.bufferLimitMb } : {}),
  };

  try {
    ensureDirectory(directory, pgdata, chownTo, warn);
  } catch (e) {
    fsError(`create ${directory}`, e);
  }
  const replaced = fs.existsSync(manifestPath);
  // Bundle first, manifest second: a manifest never names a bundle that is not complete.
  try {
    writeFileAtomic(bundlePath, code, { mode: FILE_MODE, owner: chownTo });
  } catch (e) {
    fsError(`write ${bundlePath}`, e);
  }
  try {
    writeFileAtomic(manifestPath, JSON.stringify(manifest, null, 2) + '\n', { mode: FILE_MODE, owner: chownTo });
  } catch (e) {
    fsError(`write ${manifestPath}`, e);
  }
  log(
    `${replaced ? 'updated' : 'deployed'} worker "${name}" to ${directory} ` +
      `(bundle ${formatSize(bytes)}, sha256 ${sha256.slice(0, 12)}…)`,
  );
  log(
    `  database ${manifest.database}, role ${manifest.role ?? '(bootstrap superuser)'}, ` +
      `restart ${manifest.restart === 'never' ? 'never' : manifest.restart + ' s'}, start ${manifest.start}, ` +
      `target ${manifest.nodeTarget}`,
  );

  if (edit.text !== null) {
    try {
      writeFileAtomic(autoFile, edit.text, {
        mode: autoStat ? autoStat.mode & 0o7777 : 0o600,
        owner: root ? (autoStat ? { uid: autoStat.uid, gid: autoStat.gid } : dataOwner) : undefined,
      });
    } catch (e) {
      fsError(`write ${autoFile}`, e);
    }
    log(`shared_preload_libraries now includes ${LIBRARY} (${displayPath(autoFile)}: '${edit.value}')`);
    if (!opts.configFile && !fs.existsSync(configFile)) {
      warn(
        `warning: no ${configFile}: if the server's configuration file is elsewhere and sets ` +
          `shared_preload_libraries, the value above replaces it: rerun with --config-file FILE`,
      );
    }
  } else {
    log(`shared_preload_libraries already includes ${LIBRARY}`);
  }

  const pm = readPostmasterPid(pgdata);
  const running = pm !== null && pm.alive;
  const ownerName = lookupUser(dataOwner.uid)?.name ?? `uid ${dataOwner.uid}`;
  const as = root ? `as ${ownerName}; ` : '';
  let restartedPid: number | undefined;
  if (!running) {
    const stale = pm !== null ? ` (postmaster.pid names pid ${pm.pid}, which is not running)` : '';
    log(
      opts.restart
        ? `the server is not running${stale}: no restart attempted; the new code runs at the next ` +
            `start: pg_ctl start -D ${pgdata}  (${as}the worker starts when the server starts)`
        : `next: pg_ctl start -D ${pgdata}  (${as}the worker starts when the server starts)`,
    );
  } else if (!opts.restart) {
    log(
      edit.text !== null
        ? `next: pg_ctl restart -D ${pgdata}  (${as}the running server has not loaded ${LIBRARY}: ` +
            `the worker starts when the server restarts)`
        : `next: the new code runs on the next restart of the worker ` +
            `(SELECT node_worker.restart('${name}'), or deploy --restart) or of the server`,
    );
  } else {
    const notLoaded = () =>
      new CliError(
        `worker "${name}" is deployed, but the running server (pid ${pm.pid}) has not loaded ${LIBRARY} ` +
          `(it was not in shared_preload_libraries when the server started), so the worker cannot be ` +
          `restarted on its own. The server was not restarted: restart it to start the worker: ` +
          `pg_ctl restart -D ${pgdata}${root ? ` (as ${ownerName})` : ''}`,
      );
    if (edit.text !== null) throw notLoaded();
    const target = localTarget(pgdata, pm);
    log(`restarting worker "${name}" in the running server (pid ${pm.pid}, socket ${pm.socketDir}, port ${pm.port})`);
    const r = await restartWorker(pgConfig, target, name);
    if (!r.ok) throw notLoaded();
    restartedPid = r.pid;
    log(`restarted worker "${name}" with the new code: pid ${r.pid} (the server kept running)`);
  }

  return {
    manifest,
    directory,
    bundlePath,
    manifestPath,
    bytes,
    replaced,
    preload: { changed: edit.text !== null, file: autoFile, value: edit.value },
    serverRunning: running,
    restartedPid,
  };
}
