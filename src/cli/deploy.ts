/**
 * `pg-node-worker deploy`: bundle a worker, write <name>.js and <name>.json into the worker
 * directory of a data directory, and make sure shared_preload_libraries loads pg_node_worker.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StartTime } from '../types';
import type { WorkerMetadata } from '../define';
import { BundleResult, bundleWorker, displayPath } from './bundle';
import { printLine } from './terminal';
import { CliError, UnsafePathError } from './errors';
import { DirHandle, effectiveUid, FileContent, isRoot, openPath, Owner } from './fsutil';
import { addPreloadLibrary, AUTO_CONF, ConfEntry, confEntriesOfText, lastSetting, readConfEntries } from './pgconf';
import { localTarget, lookupUser, PsqlTarget, readPostmasterPid, restartWorker } from './server';

export const LIBRARY = 'pg_node_worker';
export const DIRECTORY_SETTING = 'node_worker.directory';
export const DEFAULT_DIRECTORY = 'node_worker';
export const FALLBACK_NODE_TARGET = 'node18';
const FILE_MODE = 0o640;
const DIR_MODE = 0o750;
/** The server's limit on a path (MAXPGPATH, with its NUL): it reads no longer manifest or bundle path. */
const MAXPGPATH = 1024;
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

/** Where the worker directory comes from: --directory, the node_worker.directory setting, or neither. */
export interface WorkerDirectory {
  path: string;
  source: 'option' | 'setting' | 'default';
  /** the assignment it comes from, when source is 'setting' */
  setting?: ConfEntry;
}

/** --directory (relative to the cwd), else node_worker.directory (relative to PGDATA), else PGDATA/node_worker. */
export function locateWorkerDirectory(pgdata: string, explicit: string | undefined, entries: ConfEntry[]): WorkerDirectory {
  if (explicit) return { path: path.resolve(explicit), source: 'option' };
  const e = lastSetting(entries, DIRECTORY_SETTING);
  if (e && e.value !== '') return { path: path.resolve(pgdata, e.value), source: 'setting', setting: e };
  return { path: path.join(pgdata, DEFAULT_DIRECTORY), source: 'default' };
}

/** The path of locateWorkerDirectory. */
export function resolveWorkerDirectory(pgdata: string, explicit: string | undefined, entries: ConfEntry[]): string {
  return locateWorkerDirectory(pgdata, explicit, entries).path;
}

function fsError(what: string, e: unknown): never {
  if (e instanceof CliError) throw e;
  const err = e as NodeJS.ErrnoException;
  const hint = err.code === 'EACCES' || err.code === 'EPERM' ? " (run as the data directory's owner or root)" : '';
  throw new CliError(`cannot ${what}: ${err.message}${hint}`);
}

/** `p` is `dir` or below it (by the text of the paths: both absolute and normalised). */
function isInside(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!path.isAbsolute(rel) && rel !== '..' && !rel.startsWith('..' + path.sep));
}

/** Who writes, and for whom: decides what may be followed and what gets chowned. */
interface WriteContext {
  pgdata: string;
  dataOwner: Owner;
  /** the data directory's owner by name, for messages */
  ownerName: string;
  /**
   * the CLI runs as someone other than the data directory's owner (root, usually): what that
   * owner placed in the data directory, or in the configuration, is not to be trusted
   */
  guarded: boolean;
  /** fchown what the CLI creates to this owner (as root) */
  chownTo?: Owner;
}

/**
 * Opens the worker directory, creating what is missing (mode 0750, owned by the data directory's
 * owner when running as root). Nothing that exists already gets a new owner.
 *
 * Running as someone other than the data directory's owner (root):
 * - inside the data directory, no component may be a symbolic link: that owner can place one,
 *   and following it would aim root's writes (and the chown of what it creates) anywhere;
 * - outside it, a directory named by node_worker.directory must exist and belong to that owner:
 *   the setting lives in files that owner can change (postgresql.conf, ALTER SYSTEM), so it
 *   must not be able to send root's writes into a directory the owner could not write itself;
 * - a directory named by --directory is the admin's own choice and is used as given.
 */
function openWorkerDirectory(pgdataDir: DirHandle, where: WorkerDirectory, ctx: WriteContext, warn: (l: string) => void): DirHandle {
  const dir = where.path;
  const create = { mode: DIR_MODE, owner: ctx.chownTo };
  let opened: { dir: DirHandle; created: boolean };
  if (isInside(ctx.pgdata, dir)) {
    const rel = path.relative(ctx.pgdata, dir);
    const hint = ctx.guarded
      ? `: running as ${whoAmI()}, deploy does not follow links inside the data directory, where its owner ` +
        `(${ctx.ownerName}) can place them. If the worker directory is elsewhere on purpose, set ` +
        `${DIRECTORY_SETTING} to its real path or pass --directory; otherwise remove the link`
      : '';
    opened = openPath(pgdataDir, rel === '' ? [] : rel.split(path.sep), { followLinks: !ctx.guarded, create, hint });
  } else if (ctx.guarded && where.source === 'setting') {
    const e = where.setting!;
    const said = `${DIRECTORY_SETTING} = '${e.value}' (${displayPath(e.file)}:${e.line})`;
    const why =
      `running as ${whoAmI()}, deploy does not write outside the data directory on the strength of a setting ` +
      `that the data directory's owner (${ctx.ownerName}) can change (postgresql.conf, ALTER SYSTEM)`;
    let d: DirHandle;
    try {
      d = DirHandle.open(dir, { followLinks: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CliError(
          `${said} names ${dir}, which does not exist, and ${why}: create it yourself (owned by ${ctx.ownerName}), ` +
            `or pass --directory ${dir}`,
        );
      }
      throw err;
    }
    const st = d.stat();
    if (st.uid !== ctx.dataOwner.uid) {
      d.close();
      throw new UnsafePathError(
        dir,
        `${said} names ${dir}, which belongs to uid ${st.uid}, not to the data directory's owner (${ctx.ownerName}), ` +
          `and ${why}: if that is the right directory, say so with --directory ${dir}`,
      );
    }
    opened = { dir: d, created: false };
  } else {
    // the admin's path: links on it are followed, except those the data directory's owner
    // could have placed there (in a directory of theirs, say ~postgres) to redirect it
    const hint = ctx.guarded
      ? `: running as ${whoAmI()}, deploy does not follow it (the data directory's owner is ${ctx.ownerName}); ` +
        `pass --directory with the real path`
      : '';
    const root = DirHandle.open('/', { followLinks: true });
    try {
      opened = openPath(root, dir.split(path.sep).filter((c) => c !== ''), {
        followLinks: true,
        create,
        hint,
        distrust: ctx.guarded ? ctx.dataOwner : undefined,
      });
    } finally {
      root.close();
    }
  }
  const st = opened.dir.stat();
  if (!opened.created && ctx.chownTo && st.uid !== ctx.dataOwner.uid) {
    warn(
      `warning: ${dir} belongs to uid ${st.uid}, not to the data directory's owner (${ctx.ownerName}, uid ` +
        `${ctx.dataOwner.uid}); deploy leaves the owner of what it did not create alone: the server must be able to read it`,
    );
  }
  return opened.dir;
}

function whoAmI(): string {
  const uid = effectiveUid();
  return uid === 0 ? 'root' : `uid ${uid}`;
}

function formatSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1000 * 1000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function formatLimit(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

/** The previous bundle and manifest of a worker, kept under second names while a deployment may be undone. */
interface PreviousDeployment {
  /** Puts the previous files back (or removes the new ones when there were none). */
  restore(): 'restored' | 'removed';
  /** Drops the second names. */
  discard(): void;
}

/**
 * Gives the current `bundle` and `manifest` in `dir` a second name each (a hard link: a link at
 * either name is linked itself, not followed), so that a deployment the server refuses can be
 * undone by renaming them back: the exact previous files, owners and modes included.
 */
function keepPrevious(dir: DirHandle, bundle: string, manifest: string): PreviousDeployment {
  const saved = new Map<string, string | null>();
  const discard = () => {
    for (const b of saved.values()) if (b !== null) dir.unlink(b);
    saved.clear();
  };
  try {
    for (const n of [bundle, manifest]) {
      if (!dir.lstat(n)) {
        saved.set(n, null);
        continue;
      }
      const b = `.${n}.prev-${process.pid}-${randomBytes(4).toString('hex')}`;
      dir.link(n, b);
      saved.set(n, b);
    }
  } catch (e) {
    discard();
    throw e;
  }
  return {
    restore() {
      const oldManifest = saved.get(manifest) ?? null;
      const oldBundle = saved.get(bundle) ?? null;
      // the old manifest comes back last, after its bundle: no manifest the server would accept
      // ever names a bundle other than its own (the refused one may, until it is replaced)
      if (oldManifest === null) dir.unlink(manifest);
      if (oldBundle !== null) dir.rename(oldBundle, bundle);
      else dir.unlink(bundle);
      if (oldManifest !== null) dir.rename(oldManifest, manifest);
      saved.clear();
      dir.fsync();
      return oldManifest !== null ? 'restored' : 'removed';
    },
    discard,
  };
}

/**
 * What deploy says about a worker that runs with more rights than it may need: as the bootstrap
 * superuser (no role), and, worse, resolving names through schemas that non-superusers can
 * create in (README: Threat model).
 */
export function privilegeWarnings(definition: WorkerMetadata): string[] {
  if (definition.role !== null) return [];
  const out = [
    `worker "${definition.name}" runs as the bootstrap superuser (no role): give it a role with only the rights it needs (role: '...')`,
  ];
  const open = (definition.searchPath ?? []).filter((s) => s === 'public' || s === '$user');
  if (open.length)
    out.push(
      `worker "${definition.name}" runs as a superuser with ${open.map((s) => `'${s}'`).join(', ')} in its searchPath: ` +
        `whoever can create objects there (the database owner, for public) can run code as the worker; qualify names or use a role`,
    );
  return out;
}

/**
 * Deploys worker `file` into the data directory `opts.pgdata`: bundle, check, then write
 * `<name>.js`, `<name>.json` and the shared_preload_libraries line, and restart the worker when
 * asked. Every check, and finding the server to restart, happens before the first write; a
 * manifest the server refuses at `--restart` is rolled back to the previous deployment.
 *
 * @throws CliError (UnsafePathError among them) for anything the user can act on.
 */
export async function deploy(file: string, opts: DeployOptions): Promise<DeployResult> {
  const log = opts.log ?? ((l: string) => printLine(process.stdout, l));
  const warn = opts.warn ?? ((l: string) => printLine(process.stderr, l));

  const pgdata = checkDataDirectory(opts.pgdata);
  if (!fs.existsSync(file)) throw new CliError(`${file}: no such file`);
  const pgConfig = pgConfigCommand(opts.pgConfig);

  // The data directory is the admin's path (followed if it is a link); what is inside it is
  // reached through this handle from now on.
  const opened = DirHandle.open(pgdata, { followLinks: true });
  let pgdataDir: DirHandle | undefined;
  try {
    const pgdataStat = opened.stat();
    const dataOwner: Owner = { uid: pgdataStat.uid, gid: pgdataStat.gid };
    const root = isRoot();
    const myUid = effectiveUid();
    const guarded = myUid !== -1 && myUid !== dataOwner.uid;
    const ownerName = lookupUser(dataOwner.uid)?.name ?? `uid ${dataOwner.uid}`;
    const ctx: WriteContext = { pgdata, dataOwner, ownerName, guarded, chownTo: root ? dataOwner : undefined };
    if (guarded && !root) {
      warn(`warning: the data directory belongs to uid ${dataOwner.uid}, not to you: the server must be able to read what is written`);
    }
    pgdataDir = opened.dup(
      guarded
        ? `: running as ${whoAmI()}, deploy does not read or write through links, or files with more than one ` +
            `name, in the data directory: its owner (${ownerName}) can place them there, aimed at any file. ` +
            `Replace it with a regular file, or run deploy as ${ownerName}`
        : '',
    );

    const tgt: NodeTargetInfo = opts.prebuilt
      ? { target: opts.prebuilt.nodeTarget }
      : opts.nodeTarget
        ? { target: opts.nodeTarget }
        : resolveNodeTarget(pgConfig, warn);
    if (tgt.pgMajor) {
      let version: FileContent | undefined;
      try {
        version = pgdataDir.readFile('PG_VERSION', { followLinks: !guarded });
      } catch {
        /* only for the warning below */
      }
      const dataMajor = version && majorOf(version.data.toString('utf8').trim());
      if (dataMajor && dataMajor !== tgt.pgMajor) {
        warn(
          `warning: ${pgdata} is a PostgreSQL ${dataMajor} data directory but ${pgConfig} is PostgreSQL ` +
            `${tgt.pgMajor}: set PG_CONFIG to the server's pg_config`,
        );
      }
    }

    const { code, definition, warnings } = opts.prebuilt ?? (await bundleWorker(file, { nodeTarget: tgt.target }));
    for (const w of warnings) warn(`warning: ${w}`);
    for (const w of privilegeWarnings(definition)) warn(`warning: ${w}`);

    // Read and check everything before writing anything.
    const configFile = findConfigFile(pgdata, opts.configFile);
    const autoFile = path.join(pgdata, AUTO_CONF);
    const confEntries = readConfEntries(configFile);
    let auto: FileContent | undefined;
    try {
      auto = pgdataDir.readFile(AUTO_CONF, { followLinks: !guarded });
    } catch (e) {
      fsError(`read ${autoFile}`, e);
    }
    const autoText = auto ? auto.data.toString('utf8') : null;
    const autoEntries = autoText === null ? [] : confEntriesOfText(autoText, autoFile);
    const where = locateWorkerDirectory(pgdata, opts.directory, [...confEntries, ...autoEntries]);
    const directory = where.path;
    const edit = addPreloadLibrary(autoText, autoFile, confEntries, LIBRARY);

    const name = definition.name;
    const bundleFile = `${name}.js`;
    const manifestFile = `${name}.json`;
    const bundlePath = path.join(directory, bundleFile);
    const manifestPath = path.join(directory, manifestFile);
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
    for (const p of [bundlePath, manifestPath]) {
      if (Buffer.byteLength(p, 'utf8') >= MAXPGPATH) {
        throw new CliError(
          `${p} is ${Buffer.byteLength(p, 'utf8')} bytes long; the server reads no path of ${MAXPGPATH} bytes or more: ` +
            `use a worker directory with a shorter path (--directory or ${DIRECTORY_SETTING})`,
        );
      }
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

    // The server, and how to reach it when the worker is to be restarted (a server without a
    // unix socket cannot be): found before writing, so that such a deploy changes nothing.
    const pm = readPostmasterPid(pgdata);
    const running = pm !== null && pm.alive;
    const willRestart = running && opts.restart === true && edit.text === null;
    const target: PsqlTarget | undefined = willRestart ? localTarget(pgdata, pm) : undefined;

    let workerDir: DirHandle;
    try {
      workerDir = openWorkerDirectory(pgdataDir, where, ctx, warn);
    } catch (e) {
      fsError(`create ${directory}`, e);
    }
    try {
      const replaced = workerDir.lstat(manifestFile) !== undefined;
      let previous: PreviousDeployment | undefined;
      try {
        if (willRestart) previous = keepPrevious(workerDir, bundleFile, manifestFile);
      } catch (e) {
        fsError(`keep the previous deployment in ${directory}`, e);
      }
      try {
        // Bundle first, manifest second: a manifest never names a bundle that is not complete.
        try {
          workerDir.writeFileAtomic(bundleFile, code, { mode: FILE_MODE, owner: ctx.chownTo });
        } catch (e) {
          fsError(`write ${bundlePath}`, e);
        }
        try {
          workerDir.writeFileAtomic(manifestFile, JSON.stringify(manifest, null, 2) + '\n', { mode: FILE_MODE, owner: ctx.chownTo });
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
            // a new file: it gets the old one's mode and owner (an owner deploy did not choose)
            pgdataDir.writeFileAtomic(AUTO_CONF, edit.text, {
              mode: auto ? auto.stat.mode & 0o7777 : 0o600,
              owner: root ? (auto ? { uid: auto.stat.uid, gid: auto.stat.gid } : dataOwner) : undefined,
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
          if (!target) throw notLoaded();
          log(`restarting worker "${name}" in the running server (pid ${pm.pid}, socket ${pm.socketDir}, port ${pm.port})`);
          const r = await restartWorker(pgConfig, target, name);
          if (!r.ok && r.reason === 'refused') {
            let undone: 'restored' | 'removed';
            try {
              undone = previous!.restore();
            } catch (e) {
              throw new CliError(
                `the server refused the manifest of worker "${name}": ${r.message}\nand putting the previous ` +
                  `deployment back failed: ${(e as Error).message}. Remove ${manifestPath} (the server will refuse it ` +
                  `at every start), or deploy again with a CLI of the installed extension's version.`,
              );
            }
            throw new CliError(
              `the server refused the manifest of worker "${name}": ${r.message}\n` +
                (undone === 'restored'
                  ? `The previous deployment of "${name}" was restored (${bundleFile}, ${manifestFile}); the server stopped nothing, so the worker runs the code it ran before.`
                  : `${bundleFile} and ${manifestFile} were removed again: "${name}" is not deployed.`) +
                ` The CLI accepted what the server does not: use the pg-node-worker CLI of the installed extension's version.`,
            );
          }
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
      } finally {
        previous?.discard();
      }
    } finally {
      workerDir.close();
    }
  } finally {
    pgdataDir?.close();
    opened.close();
  }
}
