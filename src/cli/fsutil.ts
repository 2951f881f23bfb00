/**
 * Writing files where another OS user may be at work.
 *
 * The CLI usually runs as root and writes into a data directory that belongs to the server's OS
 * user (postgres). That user can place symbolic links, rename directories and swap entries at
 * any moment, so a path that pointed into the data directory when it was checked may point at
 * /etc when it is used. Node has no openat()/mkdirat()/renameat(); DirHandle gets the same effect
 * through /proc/self/fd/<fd>/<name>: the kernel resolves such a path from the directory the fd
 * holds open, not from its name, so what was opened and checked is what is written into, and
 * the last component is then created with O_EXCL, opened with O_NOFOLLOW, or renamed (rename
 * replaces a link, it does not follow it). Owners are set with fchown on a descriptor the CLI
 * opened, never by path, and only on what the CLI created.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UnsafePathError } from './errors';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const PROC_FD = '/proc/self/fd';

/** An OS owner: a file's, or what the CLI fchowns to. */
export interface Owner {
  uid: number;
  gid: number;
}

/** How writeFileAtomic makes the new file. */
export interface AtomicWriteOptions {
  mode: number;
  /** fchown the new file to this owner (only possible as root) */
  owner?: Owner;
}

/** How DirHandle.open treats a link at the path. */
export interface OpenOptions {
  /**
   * follow a symbolic link at this path. True only for what the person running the CLI named
   * (a -D or --directory argument); false for anything found inside a directory that another
   * user controls.
   */
  followLinks: boolean;
  /** appended to a refusal: why links are not followed here and what to do instead */
  hint?: string;
}

/** A file read through a DirHandle. */
export interface FileContent {
  data: Buffer;
  /** of the file that was read (fstat of the descriptor) */
  stat: fs.Stats;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** The effective uid, or -1 where there is none (Windows). */
export function effectiveUid(): number {
  return typeof process.geteuid === 'function' ? process.geteuid() : -1;
}

/** The CLI runs as root. */
export function isRoot(): boolean {
  return effectiveUid() === 0;
}

/**
 * An open directory. Its entries are reached through the descriptor (see the top of this file);
 * where /proc is not mounted they are reached by path, which still refuses links at the last
 * component but not a swap of the directory itself between two calls.
 */
export class DirHandle {
  private closed = false;

  private constructor(
    private readonly fd: number,
    /** the path it was opened by, for messages */
    readonly path: string,
    private readonly viaProc: boolean,
    private readonly hint: string,
  ) {}

  /**
   * Opens a directory by path.
   *
   * @throws UnsafePathError for a link (when not following links) or something that is not a
   *   directory; the usual ErrnoException (ENOENT, EACCES) otherwise.
   */
  static open(dirPath: string, opts: OpenOptions): DirHandle {
    const abs = path.resolve(dirPath);
    const hint = opts.hint ?? '';
    let fd: number;
    try {
      fd = fs.openSync(abs, O_RDONLY | O_DIRECTORY | (opts.followLinks ? 0 : O_NOFOLLOW));
    } catch (e) {
      throw explainOpenError(e, abs, () => fs.lstatSync(abs), () => fs.readlinkSync(abs), 'a directory', hint);
    }
    return DirHandle.wrap(fd, abs, hint);
  }

  private static wrap(fd: number, abs: string, hint: string): DirHandle {
    let viaProc = false;
    try {
      const a = fs.fstatSync(fd);
      const b = fs.statSync(`${PROC_FD}/${fd}/.`);
      viaProc = a.ino === b.ino && a.dev === b.dev;
    } catch {
      /* no procfs: entries by path */
    }
    return new DirHandle(fd, abs, viaProc, hint);
  }

  /** The path to use for entry `name` (one path component) in system calls. */
  private entry(name: string): string {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
      throw new Error(`internal error: ${JSON.stringify(name)} is not a single path component`);
    }
    if (this.closed) throw new Error(`internal error: ${this.path} is closed`);
    return (this.viaProc ? `${PROC_FD}/${this.fd}` : this.path) + '/' + name;
  }

  /** The path of entry `name`, for messages. */
  pathOf(name: string): string {
    return path.join(this.path, name);
  }

  stat(): fs.Stats {
    return fs.fstatSync(this.fd);
  }

  /** lstat of an entry; undefined when there is none. */
  lstat(name: string): fs.Stats | undefined {
    try {
      return fs.lstatSync(this.entry(name));
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** The target of link `name`. */
  readLink(name: string): string {
    return fs.readlinkSync(this.entry(name));
  }

  /** The parent directory ('..' of the directory itself, whatever path led here). */
  parent(): DirHandle {
    const fd = fs.openSync(this.viaProc ? `${PROC_FD}/${this.fd}/..` : path.dirname(this.path), O_RDONLY | O_DIRECTORY);
    return DirHandle.wrap(fd, path.dirname(this.path), this.hint);
  }

  /** The names in the directory. */
  list(): string[] {
    return fs.readdirSync(this.viaProc ? `${PROC_FD}/${this.fd}` : this.path);
  }

  /** A second handle on the same directory (closed independently), with another refusal hint if given. */
  dup(hint?: string): DirHandle {
    const fd = fs.openSync(this.viaProc ? `${PROC_FD}/${this.fd}` : this.path, O_RDONLY | O_DIRECTORY);
    const again = DirHandle.wrap(fd, this.path, hint ?? this.hint);
    const a = this.stat();
    const b = again.stat();
    if (a.ino !== b.ino || a.dev !== b.dev) {
      again.close();
      throw new UnsafePathError(this.path, `${this.path} was replaced while the CLI was using it${this.hint}`);
    }
    return again;
  }

  /**
   * Opens subdirectory `name`.
   *
   * @throws UnsafePathError for a link (when not following links) or a non-directory;
   *   ErrnoException ENOENT when there is none.
   */
  openDir(name: string, opts: { followLinks: boolean }): DirHandle {
    const p = this.entry(name);
    let fd: number;
    try {
      fd = fs.openSync(p, O_RDONLY | O_DIRECTORY | (opts.followLinks ? 0 : O_NOFOLLOW));
    } catch (e) {
      throw explainOpenError(e, this.pathOf(name), () => fs.lstatSync(p), () => fs.readlinkSync(p), 'a directory', this.hint);
    }
    return DirHandle.wrap(fd, this.pathOf(name), this.hint);
  }

  /**
   * Creates subdirectory `name` with `mode` and, when given, fchowns it to `owner`. Returns
   * undefined when `name` exists already (whatever it is): the caller decides what to do.
   */
  createDir(name: string, mode: number, owner?: Owner): DirHandle | undefined {
    const p = this.entry(name);
    try {
      fs.mkdirSync(p, mode); // never follows a link at `name`: EEXIST
    } catch (e) {
      if (errno(e) === 'EEXIST') return undefined;
      throw e;
    }
    const dir = this.openDir(name, { followLinks: false });
    try {
      // between mkdir and open another user with write access here could have put their own
      // directory in its place; ours is owned by us and empty
      const st = dir.stat();
      if (st.uid !== effectiveUid() || dir.list().length > 0) {
        throw new UnsafePathError(dir.path, `${dir.path} was replaced by someone else's right after the CLI created it${this.hint}`);
      }
      fs.fchmodSync(dir.fd, mode); // mkdir's mode went through the umask
      if (owner) fs.fchownSync(dir.fd, owner.uid, owner.gid);
    } catch (e) {
      dir.close();
      throw e;
    }
    return dir;
  }

  /**
   * Reads regular file `name`; undefined when there is none. Without following links, a file
   * with more than one name is refused too: its other name may be anywhere on the file system.
   *
   * @throws UnsafePathError for a link (when not following links), a hard-linked file or
   *   anything but a regular file.
   */
  readFile(name: string, opts: { followLinks: boolean }): FileContent | undefined {
    const p = this.entry(name);
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO in its place must not hang the CLI in open()
      fd = fs.openSync(p, O_RDONLY | O_NONBLOCK | (opts.followLinks ? 0 : O_NOFOLLOW));
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      throw explainOpenError(e, this.pathOf(name), () => fs.lstatSync(p), () => fs.readlinkSync(p), 'a regular file', this.hint);
    }
    try {
      const stat = fs.fstatSync(fd);
      checkRegular(stat, this.pathOf(name), !opts.followLinks, this.hint);
      return { data: fs.readFileSync(fd), stat };
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Replaces entry `name` atomically: a new temporary file (O_CREAT | O_EXCL | O_NOFOLLOW) in
   * this directory gets the data, its mode and owner (fchmod/fchown), fsync, then rename over
   * `name` and fsync of the directory. Readers see the old or the new content, never a part; a
   * link at `name` is replaced, not followed.
   */
  writeFileAtomic(name: string, data: string | Uint8Array, opts: AtomicWriteOptions): void {
    const tmp = `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const fd = fs.openSync(this.entry(tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, opts.mode);
    let renamed = false;
    try {
      try {
        fs.writeFileSync(fd, data);
        fs.fchmodSync(fd, opts.mode);
        if (opts.owner) fs.fchownSync(fd, opts.owner.uid, opts.owner.gid);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(this.entry(tmp), this.entry(name));
      renamed = true;
    } finally {
      if (!renamed) this.unlink(tmp);
    }
    this.fsync();
  }

  /**
   * Appends to an existing regular file `name` with a single name, never through a link.
   *
   * @param expectOwner refuse the file unless this uid owns it
   */
  appendFile(name: string, text: string, expectOwner?: number): void {
    const p = this.entry(name);
    let fd: number;
    try {
      fd = fs.openSync(p, O_WRONLY | O_APPEND | O_NONBLOCK | O_NOFOLLOW);
    } catch (e) {
      throw explainOpenError(e, this.pathOf(name), () => fs.lstatSync(p), () => fs.readlinkSync(p), 'a regular file', this.hint);
    }
    try {
      const st = fs.fstatSync(fd);
      checkRegular(st, this.pathOf(name), true, this.hint);
      if (expectOwner !== undefined && st.uid !== expectOwner) {
        throw new UnsafePathError(this.pathOf(name), `${this.pathOf(name)} belongs to uid ${st.uid}, not to uid ${expectOwner}${this.hint}`);
      }
      fs.writeFileSync(fd, text);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A second name `to` for entry `from` (a link at `from` gets linked itself, not followed). */
  link(from: string, to: string): void {
    fs.linkSync(this.entry(from), this.entry(to));
  }

  /** Renames entry `from` over `to` (both in this directory). */
  rename(from: string, to: string): void {
    fs.renameSync(this.entry(from), this.entry(to));
  }

  /** Removes entry `name` (a file or link); no error when it is gone already. */
  unlink(name: string): void {
    try {
      fs.unlinkSync(this.entry(name));
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
  }

  /** fsync the directory, so that renames inside it are durable. Best effort. */
  fsync(): void {
    try {
      fs.fsyncSync(this.fd);
    } catch {
      /* some file systems refuse; the rename itself is still atomic */
    }
  }

  /** fchmod/fchown the directory itself. */
  setModeAndOwner(mode: number, owner?: Owner): void {
    fs.fchmodSync(this.fd, mode);
    if (owner) fs.fchownSync(this.fd, owner.uid, owner.gid);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

function checkRegular(st: fs.Stats, where: string, singleName: boolean, hint: string): void {
  if (!st.isFile()) throw new UnsafePathError(where, `${where} is not a regular file${hint}`);
  if (singleName && st.nlink > 1) {
    throw new UnsafePathError(
      where,
      `${where} has ${st.nlink} names (hard links): another of them may be anywhere on the file system${hint}`,
    );
  }
}

/** The error of a failed open: an UnsafePathError when a link or the wrong kind of file is in the way. */
function explainOpenError(
  e: unknown,
  where: string,
  lstat: () => fs.Stats,
  readlink: () => string,
  expected: string,
  hint: string,
): Error {
  const code = errno(e);
  if (code !== 'ELOOP' && code !== 'ENOTDIR' && code !== 'ENXIO' && code !== 'EISDIR') return e as Error;
  let st: fs.Stats | undefined;
  try {
    st = lstat();
  } catch {
    return e as Error;
  }
  if (st.isSymbolicLink()) {
    let target = '?';
    try {
      target = readlink();
    } catch {
      /* gone again */
    }
    return new UnsafePathError(where, `${where} is a symbolic link (to ${target})${hint}`);
  }
  return new UnsafePathError(where, `${where} is not ${expected}${hint}`);
}

/** How openPath walks and creates the components. */
export interface OpenPathOptions {
  /**
   * follow links in the components that exist already. Below a component the CLI created,
   * links are never followed (the new directory may belong to another user at once).
   */
  followLinks: boolean;
  /** create missing components with this mode, fchowned to `owner` */
  create?: { mode: number; owner?: Owner };
  /** appended to refusals (default: start's) */
  hint?: string;
  /**
   * with followLinks: follow no link that this user could have placed or swapped (one it owns,
   * or one in a directory it owns or may write to), as if followLinks were false for those
   */
  distrust?: Owner;
}

/**
 * Could `user` have put entry `link` in `dir`, or replace it? The owner of the link, or anyone
 * who may write to the directory: its owner, its group when group-writable, everyone when it is
 * world-writable without the sticky bit (with it, as in /tmp, only an entry's owner may replace it).
 */
function placeableBy(user: Owner, link: fs.Stats, dir: fs.Stats): boolean {
  return (
    link.uid === user.uid ||
    dir.uid === user.uid ||
    (dir.gid === user.gid && (dir.mode & 0o020) !== 0) ||
    ((dir.mode & 0o002) !== 0 && (dir.mode & 0o1000) === 0)
  );
}

/** How many links one openPath follows by hand before giving up (the kernel's limit is 40 too). */
const MAX_LINKS = 40;

/**
 * Opens existing subdirectory `name`. With `distrust`, a link there is followed only when that
 * user could not have placed it, and by hand (its target walked component by component under
 * the same rule), so that a trusted link cannot lead on through one of theirs.
 */
function openExisting(dir: DirHandle, name: string, follow: boolean, opts: OpenPathOptions, links: { n: number }): DirHandle {
  const distrust = opts.distrust;
  if (!follow || !distrust) return dir.openDir(name, { followLinks: follow });
  try {
    return dir.openDir(name, { followLinks: false });
  } catch (e) {
    const link = dir.lstat(name);
    if (!(e instanceof UnsafePathError) || !link?.isSymbolicLink()) throw e;
    const target = dir.readLink(name);
    if (placeableBy(distrust, link, dir.stat())) {
      throw new UnsafePathError(
        dir.pathOf(name),
        `${dir.pathOf(name)} is a symbolic link (to ${target}) that uid ${distrust.uid} could have placed or replaced${opts.hint ?? ''}`,
      );
    }
    if (++links.n > MAX_LINKS) {
      throw new UnsafePathError(dir.pathOf(name), `${dir.pathOf(name)}: more than ${MAX_LINKS} symbolic links on the way`);
    }
    const from = path.isAbsolute(target) ? DirHandle.open('/', { followLinks: false }) : dir;
    try {
      return walk(from, target.split('/').filter((c) => c !== '' && c !== '.'), { ...opts, create: undefined }, links).dir;
    } finally {
      if (from !== dir) from.close();
    }
  }
}

/**
 * Opens the directory `components` (path components; no '.' or '..' unless inside a link target)
 * below `start`, one component at a time, creating the missing ones when asked. `created` says
 * whether the last one was created by this call.
 *
 * @throws UnsafePathError when a component is a link (not followed) or not a directory;
 *   ErrnoException ENOENT when one is missing and `create` is not given.
 */
export function openPath(start: DirHandle, components: string[], opts: OpenPathOptions): { dir: DirHandle; created: boolean } {
  return walk(start, components, opts, { n: 0 });
}

function walk(start: DirHandle, components: string[], opts: OpenPathOptions, links: { n: number }): { dir: DirHandle; created: boolean } {
  let dir = start.dup(opts.hint);
  let created = false;
  let follow = opts.followLinks;
  try {
    for (const name of components) {
      let next: DirHandle | undefined;
      created = false;
      if (name === '..') {
        next = dir.parent();
      } else if (opts.create && !dir.lstat(name)) {
        next = dir.createDir(name, opts.create.mode, opts.create.owner);
        if (next) {
          created = true;
          follow = false;
        }
      }
      next ??= openExisting(dir, name, follow, opts, links);
      dir.close();
      dir = next;
    }
    return { dir, created };
  } catch (e) {
    dir.close();
    throw e;
  }
}

/**
 * Replaces the file at `target` atomically (see DirHandle.writeFileAtomic), in the directory the
 * caller named: its path is followed, a link at `target` itself is replaced.
 */
export function writeFileAtomic(target: string, data: string | Uint8Array, opts: AtomicWriteOptions): void {
  const dir = DirHandle.open(path.dirname(path.resolve(target)), { followLinks: true });
  try {
    dir.writeFileAtomic(path.basename(target), data, opts);
  } finally {
    dir.close();
  }
}
