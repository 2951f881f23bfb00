/**
 * `pg-node-worker deploy`: bundle a worker, write <name>.js and <name>.json into the worker
 * directory of a data directory, and make sure shared_preload_libraries loads pg_node_worker.
 *
 * deploy() runs in two halves: planDeployment() bundles, reads and checks everything and finds
 * the server, writing nothing; writeDeployment() then writes the files and restarts the worker
 * when asked, undoing the files when the server refuses them.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WorkerMetadata } from '../define';
import { BundleResult, bundleWorker, displayPath } from './bundle';
import { CliError } from './errors';
import { DirHandle, effectiveUid, FileContent, isRoot, Owner } from './fsutil';
import { LIBRARY, majorOf, NodeTargetInfo, pgConfigCommand, resolveNodeTarget } from './installed';
import { Manifest, manifestOf, manifestText } from './manifest';
import { addPreloadLibrary, AUTO_CONF, confEntriesOfText, PreloadEdit, readConfEntries } from './pgconf';
import { localTarget, lookupUser, PostmasterInfo, PsqlTarget, readPostmasterPid, restartWorker } from './server';
import { printLine } from './terminal';
import {
  DIRECTORY_SETTING, keepPrevious, locateWorkerDirectory, openWorkerDirectory, PreviousDeployment, whoAmI,
  WorkerDirectory, WriteContext,
} from './workerdir';

export type { Manifest } from './manifest';

const FILE_MODE = 0o640;
/** The server's limit on a path (MAXPGPATH, with its NUL): it reads no longer manifest or bundle path. */
const MAXPGPATH = 1024;
/**
 * The largest bundle deploy writes. Each start of the worker reads and compiles the whole bundle
 * (a 50 MB bundle: ~1 s and ~100 MB of JavaScript heap), so data belongs in a table or a file read
 * at run time, not in the code.
 */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

/** How to deploy (the CLI's options, and hooks for dev mode and tests). */
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

/** What deploy did. */
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

/**
 * Refuses anything that is not a data directory.
 *
 * @returns its absolute path
 * @throws CliError when it is missing, not a directory, or has no PG_VERSION
 */
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

function fsError(what: string, e: unknown): never {
  if (e instanceof CliError) throw e;
  const err = e as NodeJS.ErrnoException;
  const hint = err.code === 'EACCES' || err.code === 'EPERM' ? " (run as the data directory's owner or root)" : '';
  throw new CliError(`cannot ${what}: ${err.message}${hint}`);
}

function formatSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1000 * 1000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function formatLimit(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
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

/** Who writes, and for whom, given the data directory's owner (`st`, of the open directory). */
function writeContextOf(pgdata: string, st: fs.Stats, warn: (l: string) => void): WriteContext {
  const dataOwner: Owner = { uid: st.uid, gid: st.gid };
  const root = isRoot();
  const myUid = effectiveUid();
  const guarded = myUid !== -1 && myUid !== dataOwner.uid;
  const ownerName = lookupUser(dataOwner.uid)?.name ?? `uid ${dataOwner.uid}`;
  if (guarded && !root) {
    warn(`warning: the data directory belongs to uid ${dataOwner.uid}, not to you: the server must be able to read what is written`);
  }
  return { pgdata, dataOwner, ownerName, guarded, root, chownTo: root ? dataOwner : undefined };
}

/** Appended to a refusal inside the data directory when the CLI runs as another user. */
function dataDirectoryHint(ctx: WriteContext): string {
  return ctx.guarded
    ? `: running as ${whoAmI()}, deploy does not read or write through links, or files with more than one ` +
        `name, in the data directory: its owner (${ctx.ownerName}) can place them there, aimed at any file. ` +
        `Replace it with a regular file, or run deploy as ${ctx.ownerName}`
    : '';
}

/** The esbuild target: the prebuilt bundle's, --target, else the installed extension's Node version. */
function nodeTargetOf(opts: DeployOptions, pgConfig: string, warn: (l: string) => void): NodeTargetInfo {
  if (opts.prebuilt) return { target: opts.prebuilt.nodeTarget };
  if (opts.nodeTarget) return { target: opts.nodeTarget };
  return resolveNodeTarget(pgConfig, warn);
}

/** Warns when the data directory is of another major version than the server pg_config names. */
function warnOnOtherMajor(pgdataDir: DirHandle, ctx: WriteContext, tgt: NodeTargetInfo, pgConfig: string, warn: (l: string) => void): void {
  if (!tgt.pgMajor) return;
  let version: FileContent | undefined;
  try {
    version = pgdataDir.readFile('PG_VERSION', { followLinks: !ctx.guarded });
  } catch {
    /* only for the warning below */
  }
  const dataMajor = version && majorOf(version.data.toString('utf8').trim());
  if (dataMajor && dataMajor !== tgt.pgMajor) {
    warn(
      `warning: ${ctx.pgdata} is a PostgreSQL ${dataMajor} data directory but ${pgConfig} is PostgreSQL ` +
        `${tgt.pgMajor}: set PG_CONFIG to the server's pg_config`,
    );
  }
}

/** The server's configuration as deploy needs it, read before anything is written. */
interface Configuration {
  /** the main configuration file (it may not exist) */
  configFile: string;
  /** PGDATA/postgresql.auto.conf */
  autoFile: string;
  /** postgresql.auto.conf as read, when it exists */
  auto: FileContent | undefined;
  /** where the worker goes */
  where: WorkerDirectory;
  /** postgresql.auto.conf with pg_node_worker in shared_preload_libraries */
  edit: PreloadEdit;
}

function readConfiguration(pgdataDir: DirHandle, ctx: WriteContext, opts: DeployOptions): Configuration {
  const pgdata = ctx.pgdata;
  const configFile = findConfigFile(pgdata, opts.configFile);
  const autoFile = path.join(pgdata, AUTO_CONF);
  const confEntries = readConfEntries(configFile);
  let auto: FileContent | undefined;
  try {
    auto = pgdataDir.readFile(AUTO_CONF, { followLinks: !ctx.guarded });
  } catch (e) {
    fsError(`read ${autoFile}`, e);
  }
  const autoText = auto ? auto.data.toString('utf8') : null;
  const autoEntries = autoText === null ? [] : confEntriesOfText(autoText, autoFile);
  const where = locateWorkerDirectory(pgdata, opts.directory, [...confEntries, ...autoEntries]);
  const edit = addPreloadLibrary(autoText, autoFile, confEntries, LIBRARY);
  return { configFile, autoFile, auto, where, edit };
}

/** The files of a worker in the worker directory, and the bundle's size and hash. */
interface WorkerFiles {
  bundleFile: string;
  manifestFile: string;
  bundlePath: string;
  manifestPath: string;
  sha256: string;
  bytes: number;
}

/** Names the worker's files and checks the bundle's size and the paths' lengths against the server's limits. */
function workerFiles(name: string, directory: string, code: string, maxBytes: number): WorkerFiles {
  const bundleFile = `${name}.js`;
  const manifestFile = `${name}.json`;
  const bundlePath = path.join(directory, bundleFile);
  const manifestPath = path.join(directory, manifestFile);
  const sha256 = createHash('sha256').update(code, 'utf8').digest('hex');
  const bytes = Buffer.byteLength(code, 'utf8');
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
  return { bundleFile, manifestFile, bundlePath, manifestPath, sha256, bytes };
}

/** The server of the data directory, and how to reach it when the worker is to be restarted. */
interface ServerState {
  pm: PostmasterInfo | null;
  /** postmaster.pid names a live process */
  running: boolean;
  /** --restart, the server runs and has pg_node_worker loaded already (as far as the configuration says) */
  willRestart: boolean;
  /** psql's way in, when willRestart */
  target: PsqlTarget | undefined;
}

/**
 * The server, and how to reach it when the worker is to be restarted (a server without a unix
 * socket cannot be): found before writing, so that such a deploy changes nothing.
 */
function findServer(pgdata: string, restart: boolean, edit: PreloadEdit): ServerState {
  const pm = readPostmasterPid(pgdata);
  const running = pm !== null && pm.alive;
  const willRestart = running && restart && edit.text === null;
  const target = willRestart ? localTarget(pgdata, pm) : undefined;
  return { pm, running, willRestart, target };
}

/** Everything deploy found and checked before its first write. */
interface DeployPlan {
  ctx: WriteContext;
  pgConfig: string;
  /** the data directory, open */
  pgdataDir: DirHandle;
  code: string;
  name: string;
  manifest: Manifest;
  files: WorkerFiles;
  conf: Configuration;
  server: ServerState;
}

/**
 * The first half of deploy: bundle, read and check everything, find the server. Writes nothing.
 */
async function planDeployment(file: string, opts: DeployOptions, ctx: WriteContext, pgdataDir: DirHandle, warn: (l: string) => void): Promise<DeployPlan> {
  const pgConfig = pgConfigCommand(opts.pgConfig);
  const tgt = nodeTargetOf(opts, pgConfig, warn);
  warnOnOtherMajor(pgdataDir, ctx, tgt, pgConfig, warn);

  const { code, definition, warnings } = opts.prebuilt ?? (await bundleWorker(file, { nodeTarget: tgt.target }));
  for (const w of warnings) warn(`warning: ${w}`);
  for (const w of privilegeWarnings(definition)) warn(`warning: ${w}`);

  // Read and check everything before writing anything.
  const conf = readConfiguration(pgdataDir, ctx, opts);
  const name = definition.name;
  const files = workerFiles(name, conf.where.path, code, opts.maxBundleBytes ?? MAX_BUNDLE_BYTES);
  const manifest = manifestOf(definition, {
    bundle: files.bundleFile,
    sha256: files.sha256,
    deployedAt: opts.now ?? new Date(),
    nodeTarget: tgt.target,
  });
  const server = findServer(ctx.pgdata, opts.restart === true, conf.edit);
  return { ctx, pgConfig, pgdataDir, code, name, manifest, files, conf, server };
}

/** Writes the bundle, then the manifest: a manifest never names a bundle that is not complete. */
function writeWorkerFiles(workerDir: DirHandle, plan: DeployPlan, replaced: boolean, log: (l: string) => void): void {
  const { files, manifest, ctx } = plan;
  try {
    workerDir.writeFileAtomic(files.bundleFile, plan.code, { mode: FILE_MODE, owner: ctx.chownTo });
  } catch (e) {
    fsError(`write ${files.bundlePath}`, e);
  }
  try {
    workerDir.writeFileAtomic(files.manifestFile, manifestText(manifest), { mode: FILE_MODE, owner: ctx.chownTo });
  } catch (e) {
    fsError(`write ${files.manifestPath}`, e);
  }
  log(
    `${replaced ? 'updated' : 'deployed'} worker "${plan.name}" to ${plan.conf.where.path} ` +
      `(bundle ${formatSize(files.bytes)}, sha256 ${files.sha256.slice(0, 12)}…)`,
  );
  log(
    `  database ${manifest.database}, role ${manifest.role ?? '(bootstrap superuser)'}, ` +
      `restart ${manifest.restart === 'never' ? 'never' : manifest.restart + ' s'}, start ${manifest.start}, ` +
      `target ${manifest.nodeTarget}`,
  );
}

/** Writes postgresql.auto.conf when shared_preload_libraries lacks pg_node_worker. */
function writePreload(plan: DeployPlan, opts: DeployOptions, log: (l: string) => void, warn: (l: string) => void): void {
  const { conf, ctx } = plan;
  const { edit, auto, autoFile } = conf;
  if (edit.text === null) {
    log(`shared_preload_libraries already includes ${LIBRARY}`);
    return;
  }
  try {
    // a new file: it gets the old one's mode and owner (an owner deploy did not choose)
    plan.pgdataDir.writeFileAtomic(AUTO_CONF, edit.text, {
      mode: auto ? auto.stat.mode & 0o7777 : 0o600,
      owner: ctx.root ? (auto ? { uid: auto.stat.uid, gid: auto.stat.gid } : ctx.dataOwner) : undefined,
    });
  } catch (e) {
    fsError(`write ${autoFile}`, e);
  }
  log(`shared_preload_libraries now includes ${LIBRARY} (${displayPath(autoFile)}: '${edit.value}')`);
  if (!opts.configFile && !fs.existsSync(conf.configFile)) {
    warn(
      `warning: no ${conf.configFile}: if the server's configuration file is elsewhere and sets ` +
        `shared_preload_libraries, the value above replaces it: rerun with --config-file FILE`,
    );
  }
}

/** What to do next, when deploy does not restart the worker itself. */
function nextStepLine(plan: DeployPlan, opts: DeployOptions): string {
  const { pm, running } = plan.server;
  const pgdata = plan.ctx.pgdata;
  const as = plan.ctx.root ? `as ${plan.ctx.ownerName}; ` : '';
  if (!running) {
    const stale = pm !== null ? ` (postmaster.pid names pid ${pm.pid}, which is not running)` : '';
    return opts.restart
      ? `the server is not running${stale}: no restart attempted; the new code runs at the next ` +
          `start: pg_ctl start -D ${pgdata}  (${as}the worker starts when the server starts)`
      : `next: pg_ctl start -D ${pgdata}  (${as}the worker starts when the server starts)`;
  }
  return plan.conf.edit.text !== null
    ? `next: pg_ctl restart -D ${pgdata}  (${as}the running server has not loaded ${LIBRARY}: ` +
        `the worker starts when the server restarts)`
    : `next: the new code runs on the next restart of the worker ` +
        `(SELECT node_worker.restart('${plan.name}'), or deploy --restart) or of the server`;
}

/** The error for a running server that cannot restart one worker: it did not load pg_node_worker. */
function notLoadedError(plan: DeployPlan): CliError {
  const { ctx, name } = plan;
  return new CliError(
    `worker "${name}" is deployed, but the running server (pid ${plan.server.pm!.pid}) has not loaded ${LIBRARY} ` +
      `(it was not in shared_preload_libraries when the server started), so the worker cannot be ` +
      `restarted on its own. The server was not restarted: restart it to start the worker: ` +
      `pg_ctl restart -D ${ctx.pgdata}${ctx.root ? ` (as ${ctx.ownerName})` : ''}`,
  );
}

/** The server refused the new manifest: put the previous deployment back, and say so (always throws). */
function undoRefused(plan: DeployPlan, previous: PreviousDeployment, message: string): never {
  const { name, files } = plan;
  let undone: 'restored' | 'removed';
  try {
    undone = previous.restore();
  } catch (e) {
    throw new CliError(
      `the server refused the manifest of worker "${name}": ${message}\nand putting the previous ` +
        `deployment back failed: ${(e as Error).message}. Remove ${files.manifestPath} (the server will refuse it ` +
        `at every start), or deploy again with a CLI of the installed extension's version.`,
    );
  }
  throw new CliError(
    `the server refused the manifest of worker "${name}": ${message}\n` +
      (undone === 'restored'
        ? `The previous deployment of "${name}" was restored (${files.bundleFile}, ${files.manifestFile}); the server stopped nothing, so the worker runs the code it ran before.`
        : `${files.bundleFile} and ${files.manifestFile} were removed again: "${name}" is not deployed.`) +
      ` The CLI accepted what the server does not: use the pg-node-worker CLI of the installed extension's version.`,
  );
}

/** --restart on a running server: restart just this worker; its new pid. */
async function restartNow(plan: DeployPlan, previous: PreviousDeployment | undefined, log: (l: string) => void): Promise<number> {
  const { server, name } = plan;
  const pm = server.pm!;
  if (!server.target) throw notLoadedError(plan);
  log(`restarting worker "${name}" in the running server (pid ${pm.pid}, socket ${pm.socketDir}, port ${pm.port})`);
  const r = await restartWorker(plan.pgConfig, server.target, name);
  if (!r.ok && r.reason === 'refused') undoRefused(plan, previous!, r.message);
  if (!r.ok) throw notLoadedError(plan);
  log(`restarted worker "${name}" with the new code: pid ${r.pid} (the server kept running)`);
  return r.pid;
}

/**
 * The second half of deploy: open (or create) the worker directory, write the files and the
 * preload setting, then restart the worker or say what runs the new code.
 */
async function writeDeployment(plan: DeployPlan, opts: DeployOptions, log: (l: string) => void, warn: (l: string) => void): Promise<DeployResult> {
  const { conf, files, server } = plan;
  let workerDir: DirHandle;
  try {
    workerDir = openWorkerDirectory(plan.pgdataDir, conf.where, plan.ctx, warn);
  } catch (e) {
    fsError(`create ${conf.where.path}`, e);
  }
  try {
    const replaced = workerDir.lstat(files.manifestFile) !== undefined;
    let previous: PreviousDeployment | undefined;
    try {
      if (server.willRestart) previous = keepPrevious(workerDir, files.bundleFile, files.manifestFile);
    } catch (e) {
      fsError(`keep the previous deployment in ${conf.where.path}`, e);
    }
    try {
      writeWorkerFiles(workerDir, plan, replaced, log);
      writePreload(plan, opts, log, warn);
      let restartedPid: number | undefined;
      if (plan.manifest.autostart === false)
        log(`autostart is false: the worker runs when launched (SELECT node_worker.launch('${plan.name}', args))`);
      else if (server.running && opts.restart) restartedPid = await restartNow(plan, previous, log);
      else log(nextStepLine(plan, opts));
      return {
        manifest: plan.manifest,
        directory: conf.where.path,
        bundlePath: files.bundlePath,
        manifestPath: files.manifestPath,
        bytes: files.bytes,
        replaced,
        preload: { changed: conf.edit.text !== null, file: conf.autoFile, value: conf.edit.value },
        serverRunning: server.running,
        restartedPid,
      };
    } finally {
      previous?.discard();
    }
  } finally {
    workerDir.close();
  }
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

  // The data directory is the admin's path (followed if it is a link); what is inside it is
  // reached through this handle from now on.
  const opened = DirHandle.open(pgdata, { followLinks: true });
  let pgdataDir: DirHandle | undefined;
  try {
    const ctx = writeContextOf(pgdata, opened.stat(), warn);
    pgdataDir = opened.dup(dataDirectoryHint(ctx));
    const plan = await planDeployment(file, opts, ctx, pgdataDir, warn);
    return await writeDeployment(plan, opts, log, warn);
  } finally {
    pgdataDir?.close();
    opened.close();
  }
}
