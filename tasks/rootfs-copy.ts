// The copy of one small file into a jail directory: the sequence rootfs.ts runs on the main
// thread, and its copy threads (rootfs-copy-thread.ts) run beside it on a first build.
// rootfs.ts alone hands out the work: it opens the directory (component by component,
// never following a link) and names the temporary file; this code writes only that
// temporary name and renames it to the name it was given, through the directory's
// descriptor, and reports anything else back for rootfs.ts to decide.
//
// The source is read only if it is still the file expand() planned (openSource): a host
// path may be swapped for a link to a secret between the plan and the copy.

import fs from 'node:fs';
import { Stat } from './stat.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, S_IFMT, S_IFLNK, S_IFDIR, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK } = fs.constants;
/** Linux's O_PATH (x86_64, aarch64): names an inode without opening it, so no device driver runs. */
const O_PATH = 0o10000000;

export interface CopyJob {
  /** The host file. */
  source: string;
  /** Its size as expand saw it. */
  size: number;
  /** Its `dev:ino` as expand saw it (sourceId); none for a file jail staged itself (a pack's member). */
  id?: string;
  /** The jail directory's descriptor, opened by rootfs.ts. */
  dirFd: number;
  tmp: string;
  name: string;
  mode: number;
  uid: number;
  gid: number;
}

export type CopyDone =
  | { ok: true; st: Stat }
  /** Something stands at the name (a directory, say): the finished temporary file waits for rootfs.ts to clear the way. */
  | { ok: false; blocked: true; made: { dev: bigint; ino: bigint } }
  /** The temporary file is not the one made here any more; it was removed. */
  | { ok: false; refused: true }
  /** The source is not the file expand() planned any more: what it is now ("a symlink"). Nothing was written. */
  | { ok: false; changed: string }
  | { ok: false; error: { code?: string; message: string } };

/** Rename failures that mean "something is in the way", which rootfs.ts clears. */
export const BLOCKED = new Set(['EISDIR', 'ENOTEMPTY', 'EEXIST', 'ENOTDIR']);

/** One buffer per thread for the files read whole (one copy at a time per thread). */
let buf = Buffer.allocUnsafe(64 * 1024);

/** The `dev:ino` of a target's source stamp (tasks/stat.ts stampOf), racy-marked or not; undefined for a hash stamp. */
export function sourceId(stamp: string): string | undefined {
  if (stamp.startsWith('sha256:')) return undefined;
  const [dev, ino] = stamp.split(':');
  return `${dev}:${ino}`;
}

/** What a source found in place of the planned file is, for "it is now ...". */
function kindOf(mode: number): string {
  switch (mode & S_IFMT) {
    case S_IFLNK: return 'a symlink';
    case S_IFDIR: return 'a directory';
    case S_IFIFO: return 'a FIFO';
    case S_IFSOCK: return 'a socket';
    case S_IFCHR: case S_IFBLK: return 'a device node';
    default: return 'another file';
  }
}

/**
 * The source opened for reading, if it is still the regular file `id` (dev:ino) that
 * expand() planned; else what it is now ("a symlink", "gone"), with nothing opened. The
 * identity check is the rule: it also catches a directory of the path swapped for a link,
 * which O_NOFOLLOW (last component only) does not. A link where the plan saw one, as
 * copy(..., { follow: true }) plans, is followed by an O_PATH descriptor, which runs no
 * device driver, and reopened through /proc only when it leads to the planned file.
 * O_NONBLOCK: whatever was swapped in must not hang the build.
 */
export function openSource(source: string, id: string | undefined): number | { changed: string } {
  let fd: number;
  try {
    fd = fs.openSync(source, O_RDONLY | O_NONBLOCK | O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' && id !== undefined) return openFollowed(source, id);
    if (code === 'ELOOP') return { changed: 'a symlink' };
    if (code === 'ENOENT' || code === 'ENOTDIR') return { changed: 'gone' };
    if (code === 'ENXIO') return { changed: 'a socket' };
    throw err;
  }
  const what = changedFrom(fd, id);
  if (what === undefined) return fd;
  fs.closeSync(fd);
  return { changed: what };
}

/** Why the file open at `fd` is not the planned one; undefined when it is. */
function changedFrom(fd: number, id: string | undefined): string | undefined {
  const st = fs.fstatSync(fd, { bigint: true });
  const mode = Number(st.mode);
  if ((mode & S_IFMT) !== fs.constants.S_IFREG) return kindOf(mode);
  return id === undefined || `${st.dev}:${st.ino}` === id ? undefined : 'another file';
}

/** A source that is a symlink: the file it leads to, if that is the planned one. */
function openFollowed(source: string, id: string): number | { changed: string } {
  let p: number;
  try {
    p = fs.openSync(source, O_PATH);
  } catch {
    return { changed: 'a symlink' };
  }
  try {
    if (changedFrom(p, id) !== undefined) return { changed: 'a symlink' };
    return fs.openSync(`/proc/self/fd/${p}`, O_RDONLY | O_NONBLOCK);
  } finally {
    fs.closeSync(p);
  }
}

/**
 * A host file's bytes from its descriptor, `size` expected. One read of size+1 bytes tells
 * a file that grew from one that did not; it is read on to its end either way. Valid until
 * the next call.
 */
function readWhole(fd: number, size: number): Buffer {
  let len = 0;
  for (;;) {
    if (buf.length < Math.max(size + 1, len + 1)) buf = Buffer.allocUnsafe(Math.max(size + 1, buf.length * 2));
    const n = fs.readSync(fd, buf, len, buf.length - len, len);
    if (n <= 0) break;
    len += n;
    if (len <= size) break; // a short read of a regular file is its end
  }
  return buf.subarray(0, len);
}

/**
 * Owner and mode through a descriptor, after checking it is still the file just made
 * (a regular file with one name). False when it is not: something in the jail raced us.
 */
export function finishFd(fd: number, mode: number, uid: number, gid: number): boolean {
  const st = fs.fstatSync(fd);
  if (!st.isFile() || st.nlink !== 1) return false;
  // Most copies already have the right owner (root made them) and mode: two syscalls saved.
  const chown = st.uid !== uid || st.gid !== gid;
  if (chown) fs.fchownSync(fd, uid, gid); // before chmod: chown clears setuid bits
  if (chown || (st.mode & 0o7777) !== mode) fs.fchmodSync(fd, mode);
  return true;
}

/**
 * Read whole, written through the O_EXCL|O_NOFOLLOW descriptor that creates the temporary
 * name, checked, renamed into place, stamped: about half the system calls of copyFileSync
 * followed by a reopen. Never throws: what went wrong comes back as a value.
 */
export function copySmall(job: CopyJob): CopyDone {
  const at = (n: string) => `/proc/self/fd/${job.dirFd}/${n}`;
  let fd: number | undefined;
  let keepTmp = false;
  try {
    const src = openSource(job.source, job.id);
    if (typeof src !== 'number') return { ok: false, changed: src.changed };
    let data: Buffer;
    try { data = readWhole(src, job.size); } finally { fs.closeSync(src); }
    fd = fs.openSync(at(job.tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, job.mode & 0o777);
    for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off);
    if (!finishFd(fd, job.mode, job.uid, job.gid)) return { ok: false, refused: true };
    try {
      fs.renameSync(at(job.tmp), at(job.name));
      keepTmp = true; // it is the file's name now
    } catch (err) {
      if (!BLOCKED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      keepTmp = true;
      // Which inode was made: rootfs.ts reopens the name to finish, and must find this one.
      const st = fs.fstatSync(fd, { bigint: true });
      return { ok: false, blocked: true, made: { dev: st.dev, ino: st.ino } };
    }
    return { ok: true, st: new Stat(fs.fstatSync(fd, { bigint: true })) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, error: { code: e.code, message: e.message } };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
    // Anything but a file renamed into place or waiting for its way to be cleared goes.
    if (!keepTmp) try { fs.unlinkSync(at(job.tmp)); } catch { /* never made */ }
  }
}
