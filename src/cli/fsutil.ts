import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Owner {
  uid: number;
  gid: number;
}

export interface AtomicWriteOptions {
  mode: number;
  /** chown the file to this owner (only possible as root) */
  owner?: Owner;
}

/** fsync a directory, so that a rename inside it is durable. Best effort. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* some file systems refuse; the rename itself is still atomic */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Replace `target` atomically: write a temporary file in the same directory, set its mode (and
 * owner), fsync it, rename it over the target, fsync the directory. Readers see the old or the new
 * content, never a part.
 */
export function writeFileAtomic(target: string, data: string | Uint8Array, opts: AtomicWriteOptions): void {
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fd = fs.openSync(tmp, 'wx', opts.mode);
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
    fs.renameSync(tmp, target);
    renamed = true;
  } finally {
    if (!renamed) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    }
  }
  fsyncDir(dir);
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
