// The copy of one small file into a jail directory: the sequence rootfs.ts runs on the main
// thread, and its copy threads (rootfs-copy-thread.ts) run beside it on a first build.
// rootfs.ts alone hands out the work: it opens the directory (component by component,
// never following a link) and names the temporary file; this code writes only that
// temporary name and renames it to the name it was given, through the directory's
// descriptor, and reports anything else back for rootfs.ts to decide.

import fs from 'node:fs';
import { Stat } from './stat.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

export interface CopyJob {
  /** The host file. */
  source: string;
  /** Its size as expand saw it. */
  size: number;
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
  | { ok: false; error: { code?: string; message: string } };

/** Rename failures that mean "something is in the way", which rootfs.ts clears. */
export const BLOCKED = new Set(['EISDIR', 'ENOTEMPTY', 'EEXIST', 'ENOTDIR']);

/** One buffer per thread for the files read whole (one copy at a time per thread). */
let buf = Buffer.allocUnsafe(64 * 1024);

/**
 * A host file's bytes, `size` expected. One read of size+1 bytes tells a file that grew
 * from one that did not; it is read on to its end either way. Valid until the next call.
 */
function readWhole(source: string, size: number): Buffer {
  // O_NONBLOCK: a source swapped for a FIFO since expand looked must not hang the build.
  const fd = fs.openSync(source, O_RDONLY | O_NONBLOCK);
  try {
    let len = 0;
    for (;;) {
      if (buf.length < Math.max(size + 1, len + 1)) buf = Buffer.allocUnsafe(Math.max(size + 1, buf.length * 2));
      const n = fs.readSync(fd, buf, len, buf.length - len, len);
      if (n <= 0) break;
      len += n;
      if (len <= size) break; // a short read of a regular file is its end
    }
    return buf.subarray(0, len);
  } finally {
    fs.closeSync(fd);
  }
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
    const data = readWhole(job.source, job.size);
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
