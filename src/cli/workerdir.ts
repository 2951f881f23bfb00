/**
 * The worker directory of a data directory: where it is (--directory, node_worker.directory or
 * the default), opening it without following what another OS user may have placed there, and
 * keeping a worker's previous files while a deployment may still be undone.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { displayPath } from './bundle';
import { CliError, UnsafePathError } from './errors';
import { DirHandle, effectiveUid, openPath, Owner } from './fsutil';
import { ConfEntry, lastSetting } from './pgconf';

/** The setting that names the worker directory. */
export const DIRECTORY_SETTING = 'node_worker.directory';
/** The worker directory when nothing names one, relative to the data directory. */
export const DEFAULT_DIRECTORY = 'node_worker';
const DIR_MODE = 0o750;

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

/** `p` is `dir` or below it (by the text of the paths: both absolute and normalised). */
function isInside(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!path.isAbsolute(rel) && rel !== '..' && !rel.startsWith('..' + path.sep));
}

/** Who writes, and for whom: decides what may be followed and what gets chowned. */
export interface WriteContext {
  pgdata: string;
  dataOwner: Owner;
  /** the data directory's owner by name, for messages */
  ownerName: string;
  /**
   * the CLI runs as someone other than the data directory's owner (root, usually): what that
   * owner placed in the data directory, or in the configuration, is not to be trusted
   */
  guarded: boolean;
  /** the CLI runs as root */
  root: boolean;
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
export function openWorkerDirectory(pgdataDir: DirHandle, where: WorkerDirectory, ctx: WriteContext, warn: (l: string) => void): DirHandle {
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

/** The CLI's user for messages: root, or uid N. */
export function whoAmI(): string {
  const uid = effectiveUid();
  return uid === 0 ? 'root' : `uid ${uid}`;
}

/** The previous bundle and manifest of a worker, kept under second names while a deployment may be undone. */
export interface PreviousDeployment {
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
export function keepPrevious(dir: DirHandle, bundle: string, manifest: string): PreviousDeployment {
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

