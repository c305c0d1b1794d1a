// Read-only access to a hostile ROOT. Nothing here follows a symlink that lies inside
// ROOT: each directory is opened component by component with O_NOFOLLOW|O_DIRECTORY and
// every later lookup names its file as /proc/self/fd/<dirfd>/<name> (openat() by another
// name, as rootfs.ts does for writes). Only regular files are ever opened for reading,
// with O_NOFOLLOW|O_NONBLOCK|O_NOCTTY, and only when fstat shows the inode lstat saw: a
// FIFO or device planted in the jail is never opened.

import fs from 'node:fs';
import { baseName, parentOf } from '../targets.js';
import { fstatOf, lstatOf, type Stat } from '../stat.js';
import { joinBytes } from '../byte-names.js';

const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK, O_NOCTTY } = fs.constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const FILE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
/** Directory descriptors kept open for lookups; beyond this the cache is emptied and refilled. */
const MAX_OPEN_DIRS = 256;

/** `name` in the directory `fd`, as fs takes it: its real bytes when it holds some that are not UTF-8 (byte-names.ts). */
export const procPath = (fd: number, name: string): string | Buffer => joinBytes(`/proc/self/fd/${fd}`, name);

/** Opens a regular file at `p` (a /proc/self/fd path or a host path) only if it is the inode `st` describes. */
export function openVerified(p: fs.PathLike, st: Stat): number | undefined {
  if (!st.isFile()) return undefined;
  let fd: number;
  try { fd = fs.openSync(p, FILE_FLAGS); } catch { return undefined; }
  try {
    const now = fs.fstatSync(fd, { bigint: true });
    if (now.isFile() && now.dev === st.dev && now.ino === st.ino) return fd;
  } catch { /* fall through */ }
  fs.closeSync(fd);
  return undefined;
}

/** Up to `max` bytes from the start of an open file. */
export function readHead(fd: number, max: number): Buffer {
  const buf = Buffer.alloc(max);
  let off = 0;
  while (off < max) {
    const n = fs.readSync(fd, buf, off, max - off, off);
    if (n <= 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

export class RootReader {
  readonly root: string;
  readonly rootFd: number;
  readonly rootStat: Stat;
  readonly #dirs = new Map<string, number>();

  private constructor(root: string, fd: number) {
    this.root = root;
    this.rootFd = fd;
    this.rootStat = fstatOf(fd);
  }

  /** Opens ROOT itself; undefined (with the errno code) when it is missing, a symlink or not a directory. */
  static open(root: string): RootReader | { code: string } {
    try {
      return new RootReader(root, fs.openSync(root, DIR_FLAGS));
    } catch (err) {
      return { code: (err as NodeJS.ErrnoException).code ?? 'EIO' };
    }
  }

  close(): void {
    this.#drop();
    fs.closeSync(this.rootFd);
  }

  #drop(): void {
    for (const fd of this.#dirs.values()) fs.closeSync(fd);
    this.#dirs.clear();
  }

  /** The descriptor of a jail directory; undefined when some component is not a real directory. */
  dirFd(p: string): number | undefined {
    if (p === '/' || p === '') return this.rootFd;
    const have = this.#dirs.get(p);
    if (have !== undefined) return have;
    const pfd = this.dirFd(parentOf(p));
    if (pfd === undefined) return undefined;
    let fd: number;
    try { fd = fs.openSync(procPath(pfd, baseName(p)), DIR_FLAGS); } catch { return undefined; }
    if (this.#dirs.size >= MAX_OPEN_DIRS) {
      // The parent's descriptor may be among those dropped: keep the one just opened only.
      this.#drop();
    }
    this.#dirs.set(p, fd);
    return fd;
  }

  /** lstat of a jail path, its directories looked up without following links. */
  lstat(p: string): Stat | undefined {
    if (p === '/') return this.rootStat;
    const pfd = this.dirFd(parentOf(p));
    if (pfd === undefined) return undefined;
    try {
      return lstatOf(procPath(pfd, baseName(p)));
    } catch {
      return undefined;
    }
  }

  readlink(p: string): string | undefined {
    const pfd = this.dirFd(parentOf(p));
    if (pfd === undefined) return undefined;
    try { return fs.readlinkSync(procPath(pfd, baseName(p))); } catch { return undefined; }
  }

  /**
   * A whole regular file of at most `max` bytes; undefined when it is anything else, bigger,
   * or swapped. `seen`: the stat the caller holds, which the file must still be (not lstat again).
   */
  readFile(p: string, max: number, seen?: Stat): Buffer | undefined {
    const st = seen ?? this.lstat(p);
    if (!st || !st.isFile() || st.size > max) return undefined;
    const pfd = this.dirFd(parentOf(p));
    if (pfd === undefined) return undefined;
    const fd = openVerified(procPath(pfd, baseName(p)), st);
    if (fd === undefined) return undefined;
    try { return readHead(fd, st.size); } catch { return undefined; } finally { fs.closeSync(fd); }
  }
}
