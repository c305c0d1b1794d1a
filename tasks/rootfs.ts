// The only module that writes beneath ROOT.
//
// Everything in ROOT may have been planted by an attacker, so no write or delete ever
// resolves a path through ROOT. Node has no openat(), so each directory is opened
// once, component by component with O_NOFOLLOW|O_DIRECTORY, and every later operation
// names its file as /proc/self/fd/<dirfd>/<name>: the kernel resolves the directory
// through the descriptor we hold and looks up only the last name in it, which is what
// openat(dirfd, name) does. A planted `etc -> /etc` makes the open fail instead of
// sending writes to the host.
//
// Files are written under a temporary name beside their destination and renamed into
// place, so a crash never leaves half a file under its final name. Deleting never
// crosses into another filesystem or a mount point beneath ROOT. Pruning deletes only
// what the plan judged jail's: the entry is moved into a directory of jail's own first,
// and checked there, so nothing a service renamed over the name since is deleted.
//
// Each write returns the stat of what it made (taken through the descriptor it holds, or
// by descriptor path right after): the stamp recorded for a file, and what the checks
// after a build look at instead of walking the new jail again.
//
// A small file's copy is one sequence (rootfs-copy.ts) that a first build of many files
// also runs on copy threads (rootfs-copy-threads.ts): the directory descriptor and the
// temporary name still come from here, and whatever the sequence cannot do safely on its
// own (a name blocked by a directory, a swapped temporary file) comes back here.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { run } from './shell.js';
import { baseName, octal, parentOf } from './targets.js';
import { jailError, type JailError } from './result.js';
import { devNumbers, fstatOf, lstatOf, type Stat } from './stat.js';
import { copySmall, finishFd, openSource, type CopyDone, type CopyJob } from './rootfs-copy.js';
import { CopyThreads } from './rootfs-copy-threads.js';
import { joinBytes, readNames } from './byte-names.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = fs.constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
/** Linux's O_PATH (x86_64, aarch64): names an inode without opening it, so no device driver runs. */
const O_PATH = 0o10000000;

/**
 * Files up to this size are copied synchronously. Handing a copy to the thread pool costs
 * the main thread a wake-up of a pool thread and a callback, more than copying a small
 * file takes; most of a jail's files are small, and most of its bytes are in a few big
 * ones, which the pool copies side by side while the main thread does the small ones.
 */
const SYNC_COPY_MAX = 1024 * 1024;

/** Files up to this size are read whole and written by copySmall(): most of a jail's files. */
const INLINE_COPY_MAX = 256 * 1024;

/** Temporary names this module creates; a crashed build's leftovers are recognised by it. */
export const TEMP_NAME = /^\.jail-tmp\.\d+\.\d+$/;

/** A write into ROOT that could not be done safely; apply() turns it into an error value. */
export class RootFsError extends Error {
  constructor(readonly error: JailError) {
    super(error.message);
  }
}

const swapped = (p: string) =>
  `The temporary file for ${p} was swapped while jail was writing it (something in the jail is racing the build). Stop the jail's services and run make again.`;

/** A source that is not the file the plan saw: apply.ts puts the entry in front of this. */
const changedSource = (source: string, what: string, p: string) =>
  `the source ${source} changed during the build (${what === 'gone' ? 'it is gone' : `it is now ${what}`}); nothing was written at ${p}. Run make again.`;

const raced = (p: string) =>
  `${p} in ROOT was changed while jail was removing what it made there (something in the jail is racing the build). Stop the jail's services and run make again.`;

/** What prune() did: removed the path, kept a directory that holds files, or left what is not jail's (why). */
export type Pruned = 'removed' | 'kept' | { left: string };

/** A directory of jail's own that a removal moves its entry into first (RootFs.#holdIn). */
interface Hold { fd: number; dir: string; name: string; dev: bigint; ino: bigint }

/**
 * Is `st`, what a removal moved, the inode the plan judged jail's (`seen`), of the same
 * kind and, for a file, the same bytes? A rename moves an inode's ctime and nothing else;
 * a directory's size and times move as its entries are removed.
 */
function sameInode(st: Stat, seen: Stat): boolean {
  if (st.dev !== seen.dev || st.ino !== seen.ino || (st.mode & fs.constants.S_IFMT) !== (seen.mode & fs.constants.S_IFMT)) return false;
  if (st.isDirectory()) return true;
  if (st.size !== seen.size || st.rdev !== seen.rdev) return false;
  return !st.isFile() || st.stamp.slice(0, st.stamp.lastIndexOf(':')) === seen.stamp.slice(0, seen.stamp.lastIndexOf(':'));
}

/** Why a removal left what it found: the plan judged the path jail's, and something else has the name now. */
const REPLACED = 'it was replaced while jail was removing it';

/** `; ... put beside it as ...` when what was put back could not have its own name again. */
const movedTo = (p: string, at: string): string =>
  at === baseName(p) ? '' : `; its name was taken again meanwhile, so it was put beside it as ${parentOf(p) === '/' ? '' : parentOf(p)}/${at}`;

const refuse = (code: string, message: string, p: string): never => {
  throw new RootFsError(jailError(code, message, { path: p }));
};

/** Descriptors a tree removal holds open at most, however deep the tree. */
const REMOVE_FDS = 64;

/**
 * The mount a descriptor is on, from /proc/self/fdinfo (Node has no statx): a bind mount
 * of ROOT's own filesystem has ROOT's st_dev but not its mount. Undefined before Linux 3.15.
 */
function mountIdOf(fd: number): string | undefined {
  try {
    return /^mnt_id:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Mount points strictly beneath ROOT, as jail paths, from /proc/self/mountinfo. The table
 * holds real paths, so ROOT is matched as given and as its real path (`real`, by default
 * realpath(ROOT)): a symlink in ROOT's path would otherwise hide every mount beneath it.
 */
export function mountsBeneath(root: string, real?: string): string[] {
  let text = '';
  try { text = fs.readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return []; }
  if (real === undefined) try { real = fs.realpathSync(root); } catch { real = root; }
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = mp.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    for (const r of [root, real]) if (p.startsWith(r + '/')) out.add(p.slice(r.length));
  }
  return [...out];
}

export class RootFs {
  readonly #root: string;
  readonly #dev: bigint;
  readonly #dirs = new Map<string, number>();
  readonly #mounts: string[];
  readonly #mountId: string | undefined;
  readonly #threads: CopyThreads | undefined;
  /** Holding directories (#holdIn), by the jail directory they are in. */
  readonly #holds = new Map<string, Hold>();
  #counter = 0;

  private constructor(root: string, rootFd: number, dev: bigint, copyThreads: number) {
    this.#root = root;
    this.#dev = dev;
    this.#dirs.set('/', rootFd);
    // The real path of the directory opened, not of whatever ROOT's name leads to now.
    let real: string | undefined;
    try { real = fs.readlinkSync(`/proc/self/fd/${rootFd}`); } catch { /* realpath, then */ }
    this.#mounts = mountsBeneath(root, real);
    this.#mountId = mountIdOf(rootFd);
    this.#threads = CopyThreads.start(copyThreads);
  }

  /**
   * Opens ROOT (creating it if missing; it must not be a symlink). `copyThreads` small-file
   * copies run beside the main thread (0: all on it).
   */
  static open(root: string, copyThreads = 0): RootFs {
    fs.mkdirSync(root, { recursive: true, mode: 0o755 });
    let fd: number;
    try {
      fd = fs.openSync(root, DIR_FLAGS);
    } catch (err) {
      return refuse('bad-root', `ROOT ${root} is not a directory (${(err as NodeJS.ErrnoException).code}); name a real directory, not a symlink.`, root);
    }
    return new RootFs(root, fd, fs.fstatSync(fd, { bigint: true }).dev, copyThreads);
  }

  close(): void {
    this.#release();
    this.#threads?.close();
    for (const fd of this.#dirs.values()) fs.closeSync(fd);
    this.#dirs.clear();
  }

  /** `name` in the directory `fd`; its real bytes when a walk found it not UTF-8 (byte-names.ts). */
  #proc(fd: number, name: string): string | Buffer {
    return joinBytes(`/proc/self/fd/${fd}`, name);
  }

  #tmp(): string {
    return `.jail-tmp.${process.pid}.${++this.#counter}`;
  }

  /** The descriptor of a jail directory, opened component by component without following links. */
  #dirFd(p: string): number {
    const have = this.#dirs.get(p);
    if (have !== undefined) return have;
    const pfd = this.#dirFd(parentOf(p));
    let fd: number;
    try {
      fd = fs.openSync(this.#proc(pfd, baseName(p)), DIR_FLAGS);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return refuse('unsafe-path', `${p} in ROOT is not a real directory (${code === 'ELOOP' ? 'it is a symlink' : code}); ` +
        'jail does not write through it. Run make again: the directory target is restored first.', p);
    }
    this.#dirs.set(p, fd);
    return fd;
  }

  /** Forget descriptors for `p` and beneath (it was replaced or removed). */
  #forget(p: string): void {
    for (const [k, fd] of this.#dirs) {
      if (k !== '/' && (k === p || k.startsWith(p + '/'))) {
        fs.closeSync(fd);
        this.#dirs.delete(k);
      }
    }
  }

  #lstat(pfd: number, name: string): Stat | undefined {
    return lstatOf(this.#proc(pfd, name));
  }

  #checkNoMount(p: string): void {
    const m = this.#mounts.find((mp) => mp === p || mp.startsWith(p + '/'));
    if (m !== undefined) {
      refuse('mount-point', `${m} in ROOT is a mount point (another filesystem or a bind mount). jail never deletes across it, ` +
        `so it cannot remove or replace ${p}. Unmount ${this.#root}${m} and run make again.`, p);
    }
  }

  /** Removes whatever is at `name` in the directory `pfd`, a whole tree if need be. */
  #removeAt(pfd: number, name: string, p: string): void {
    this.#checkNoMount(p);
    const st = this.#lstat(pfd, name);
    if (!st) return;
    if (st.isDirectory()) {
      this.#forget(p);
      this.#removeTree(pfd, name, p);
    } else {
      fs.unlinkSync(this.#proc(pfd, name));
    }
  }

  /**
   * Empties and removes the directory `name` in `pfd`, depth first with a stack of its own
   * (a planted tree may be deeper than any call stack). Only the REMOVE_FDS deepest levels
   * keep a descriptor; a shallower one is reopened through its child's `..` on the way up
   * and must be the directory it was. Every level must be on ROOT's mount.
   */
  #removeTree(pfd: number, name: string, p: string): void {
    interface Level { name: string; fd: number; dev: bigint; ino: bigint; names: string[]; next: number }
    const stack: Level[] = [];
    // Paths only for messages: built on demand, as a 25,000-deep tree's would be quadratic.
    const where = (n = stack.length) => [p, ...stack.slice(1, n).map((l) => l.name)].join('/');
    const enter = (parentFd: number, child: string): void => {
      const fd = fs.openSync(this.#proc(parentFd, child), DIR_FLAGS);
      try {
        const st = fs.fstatSync(fd, { bigint: true });
        this.#sameMount(fd, st.dev, () => (stack.length ? `${where()}/${child}` : p));
        stack.push({ name: child, fd, dev: st.dev, ino: st.ino, names: readNames(this.#proc(fd, '.')), next: 0 });
      } catch (err) {
        fs.closeSync(fd);
        throw err;
      }
      // The open levels are the deepest ones, at most REMOVE_FDS of them.
      const far = stack[stack.length - 1 - REMOVE_FDS];
      if (far && far.fd !== -1) {
        fs.closeSync(far.fd);
        far.fd = -1;
      }
    };
    try {
      enter(pfd, name);
      while (stack.length) {
        const top = stack[stack.length - 1]!;
        if (top.next < top.names.length) {
          const child = top.names[top.next++]!;
          const st = this.#lstat(top.fd, child);
          if (st?.isDirectory()) enter(top.fd, child);
          else if (st) fs.unlinkSync(this.#proc(top.fd, child));
          continue;
        }
        const parent = stack[stack.length - 2];
        try {
          if (parent && parent.fd === -1) parent.fd = this.#reopenParent(top.fd, parent, () => where(stack.length - 1));
        } finally {
          stack.pop();
          fs.closeSync(top.fd);
        }
        fs.rmdirSync(this.#proc(parent ? parent.fd : pfd, top.name));
      }
    } finally {
      for (const l of stack) if (l.fd !== -1) fs.closeSync(l.fd);
    }
  }

  /** Refuses a directory on another filesystem, or on another mount of ROOT's (a bind mount). */
  #sameMount(fd: number, dev: bigint, path: () => string): void {
    if (dev !== this.#dev) {
      const p = path();
      refuse('mount-point', `${p} in ROOT is on another filesystem; jail never deletes across filesystems. Unmount it and run make again.`, p);
    }
    if (this.#mountId !== undefined && mountIdOf(fd) !== this.#mountId) {
      const p = path();
      refuse('mount-point', `${p} in ROOT is a mount point (a bind mount); jail never deletes across it. Unmount ${this.#root}${p} and run make again.`, p);
    }
  }

  /** A directory whose descriptor was closed, reopened as its child's `..`: it must still be the same directory. */
  #reopenParent(childFd: number, parent: { dev: bigint; ino: bigint }, path: () => string): number {
    const fd = fs.openSync(this.#proc(childFd, '..'), DIR_FLAGS);
    const st = fs.fstatSync(fd, { bigint: true });
    if (st.dev !== parent.dev || st.ino !== parent.ino) {
      fs.closeSync(fd);
      const p = path();
      refuse('unsafe-path', `${p} in ROOT was moved while jail was removing it (something in the jail is racing the build). Stop the jail's services and run make again.`, p);
    }
    return fd;
  }

  /** Renames the temporary `tmp` over `name`, clearing a directory that stands in the way. */
  #install(pfd: number, tmp: string, name: string, p: string): void {
    try {
      fs.renameSync(this.#proc(pfd, tmp), this.#proc(pfd, name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') {
        try { fs.unlinkSync(this.#proc(pfd, tmp)); } catch { /* nothing to clean */ }
        throw err;
      }
      try {
        this.#removeAt(pfd, name, p);
      } catch (e) {
        try { fs.unlinkSync(this.#proc(pfd, tmp)); } catch { /* nothing to clean */ }
        throw e;
      }
      fs.renameSync(this.#proc(pfd, tmp), this.#proc(pfd, name));
    }
  }

  /** A real directory at `p` with exactly this mode and owner; anything else there is replaced. */
  ensureDir(p: string, mode: number, uid: number, gid: number): Stat {
    const pfd = this.#dirFd(parentOf(p));
    const name = baseName(p);
    const st = this.#lstat(pfd, name);
    if (st && !st.isDirectory()) this.#removeAt(pfd, name, p);
    if (!st || !st.isDirectory()) fs.mkdirSync(this.#proc(pfd, name), 0o700);
    // Only an existing directory can have descriptors open beneath it (and scanning for
    // them on every new directory made a first build quadratic in its directory count).
    else if (this.#dirs.has(p)) this.#forget(p);
    const fd = fs.openSync(this.#proc(pfd, name), DIR_FLAGS);
    this.#dirs.set(p, fd);
    fs.fchownSync(fd, uid, gid);
    fs.fchmodSync(fd, mode);
    return fstatOf(fd);
  }

  /** Sets owner and mode through a descriptor, after checking it is the file we just made. */
  #finish(fd: number, p: string, mode: number, uid: number, gid: number): void {
    if (!finishFd(fd, mode, uid, gid)) refuse('unsafe-path', swapped(p), p);
  }

  /**
   * Copies a host file to `p`. Returns the written file's stat. `size` (the source's, as
   * expand saw it) picks how: a small file is copied right here, a big one on libuv's
   * thread pool while the build goes on with others. `id` (its dev:ino as expand saw it,
   * sourceId()) is the only file copied: anything else at `source` now is refused.
   */
  async copyFile(p: string, source: string, mode: number, uid: number, gid: number, size = Infinity, id?: string): Promise<Stat> {
    const pfd = this.#dirFd(parentOf(p));
    const tmp = this.#tmp();
    if (size <= INLINE_COPY_MAX) {
      const job: CopyJob = { source, size, id, dirFd: pfd, tmp, name: baseName(p), mode, uid, gid };
      return this.#settle(this.#threads ? await this.#threads.copy(job) : copySmall(job), job, p);
    }
    // The temporary file is made here and held: the copy writes into it through its
    // descriptor's /proc path, which lands on this inode whatever is renamed over the name
    // meanwhile, and owner and mode are set through the descriptor. Copying by name let
    // something in the jail swap its own file in, which the build then made root's. One
    // renamed over the name in the instant before the final rename lands in place instead,
    // as its owner made it (never root's): its stamp is not the one recorded, so the next
    // make replaces it. The source is read through its checked descriptor's /proc path in
    // the same way, which reopens that inode whatever is renamed over the source meanwhile.
    const src = openSource(source, id);
    if (typeof src !== 'number') return refuse('source-changed', changedSource(source, src.changed, p), p);
    let fd: number;
    try {
      fd = fs.openSync(this.#proc(pfd, tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (err) {
      fs.closeSync(src);
      throw err;
    }
    let installed = false;
    try {
      const from = `/proc/self/fd/${src}`, into = `/proc/self/fd/${fd}`;
      if (size <= SYNC_COPY_MAX) fs.copyFileSync(from, into);
      else await fsp.copyFile(from, into);
      const st = this.#finishTemp(fd, pfd, tmp, p, mode, uid, gid);
      installed = true;
      return st;
    } finally {
      fs.closeSync(src);
      fs.closeSync(fd);
      if (!installed) try { fs.unlinkSync(this.#proc(pfd, tmp)); } catch { /* gone already */ }
    }
  }

  /** What a small file's copy (here or on a copy thread) came to, as the stat of the file in place. */
  #settle(done: CopyDone, job: CopyJob, p: string): Stat {
    if (done.ok) return done.st;
    // Stamped through a descriptor held across the rename, as every other copy is.
    if ('blocked' in done) return this.#installTemp(job.dirFd, job.tmp, p, job.mode, job.uid, job.gid, done.made);
    if ('refused' in done) return refuse('unsafe-path', swapped(p), p);
    if ('changed' in done) return refuse('source-changed', changedSource(job.source, done.changed, p), p);
    throw Object.assign(new Error(done.error.message), { code: done.error.code });
  }

  /**
   * A finished temporary file, reopened by name: it must still be the inode that was made
   * (`made`), or something in the jail swapped its own file in. Then as #finishTemp.
   */
  #installTemp(pfd: number, tmp: string, p: string, mode: number, uid: number, gid: number, made: { dev: bigint; ino: bigint }): Stat {
    const fd = fs.openSync(this.#proc(pfd, tmp), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      if (st.dev !== made.dev || st.ino !== made.ino) refuse('unsafe-path', swapped(p), p);
      return this.#finishTemp(fd, pfd, tmp, p, mode, uid, gid);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The temporary file held by `fd` checked, owned and moded through it, renamed over `p` (clearing the way) and stamped through it. */
  #finishTemp(fd: number, pfd: number, tmp: string, p: string, mode: number, uid: number, gid: number): Stat {
    this.#finish(fd, p, mode, uid, gid);
    this.#install(pfd, tmp, baseName(p), p);
    return fstatOf(fd);
  }

  /** Writes `content` to `p`. Returns the written file's stat. */
  writeText(p: string, content: Buffer, mode: number, uid: number, gid: number): Stat {
    const pfd = this.#dirFd(parentOf(p));
    const tmp = this.#tmp();
    const fd = fs.openSync(this.#proc(pfd, tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      for (let off = 0; off < content.length;) off += fs.writeSync(fd, content, off);
      this.#finish(fd, p, mode, uid, gid);
      this.#install(pfd, tmp, baseName(p), p);
      return fstatOf(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Makes `p` another name of the jail file `existing` (a hard link a pack or layer
   * carries). link(2) does not follow a final symlink, and both names are reached
   * through directory descriptors; `existing` must be a regular file.
   */
  hardlink(p: string, existing: string): Stat | undefined {
    const efd = this.#dirFd(parentOf(existing));
    const st = this.#lstat(efd, baseName(existing));
    if (!st?.isFile()) refuse('unsafe-path', `${existing} in ROOT is not a regular file, so ${p} cannot be made another name of it. Run make again.`, p);
    const pfd = this.#dirFd(parentOf(p));
    const tmp = this.#tmp();
    fs.linkSync(this.#proc(efd, baseName(existing)), this.#proc(pfd, tmp));
    this.#install(pfd, tmp, baseName(p), p);
    return this.#lstat(pfd, baseName(p));
  }

  /**
   * Owner and mode of a node just made under the temporary name `tmp`, set through an
   * O_PATH descriptor and never by name: something in the jail may have renamed a hard
   * link of a file outside ROOT over `tmp` meanwhile. The descriptor must hold what was
   * made (`made`) with one name; /proc/self/fd/<fd> then lands on exactly that inode (for
   * a symlink, on the link itself, as glibc's lchmod relies on).
   */
  #stampNode(pfd: number, tmp: string, p: string, made: (st: fs.Stats) => boolean, uid: number, gid: number, mode?: number): void {
    let fd: number | undefined;
    let st: fs.Stats | undefined;
    try {
      fd = fs.openSync(this.#proc(pfd, tmp), O_PATH | O_NOFOLLOW);
      st = fs.fstatSync(fd);
    } catch { /* gone: swapped */ }
    try {
      if (!st || st.nlink !== 1 || !made(st)) {
        try { fs.unlinkSync(this.#proc(pfd, tmp)); } catch { /* nothing to clean */ }
        return refuse('unsafe-path', swapped(p), p);
      }
      const at = `/proc/self/fd/${fd}`;
      // Root made it: most nodes already have the right owner.
      const chown = st.uid !== uid || st.gid !== gid;
      if (chown) fs.chownSync(at, uid, gid); // before chmod: chown clears setuid bits
      if (mode !== undefined && (chown || (st.mode & 0o7777) !== mode)) fs.chmodSync(at, mode);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  symlink(p: string, target: string, uid: number, gid: number): Stat | undefined {
    const pfd = this.#dirFd(parentOf(p));
    const tmp = this.#tmp();
    fs.symlinkSync(target, this.#proc(pfd, tmp));
    // A symlink's size is its target's length: enough to tell ours from one planted over it.
    const size = Buffer.byteLength(target);
    this.#stampNode(pfd, tmp, p, (st) => st.isSymbolicLink() && st.size === size, uid, gid);
    this.#install(pfd, tmp, baseName(p), p);
    return this.#lstat(pfd, baseName(p));
  }

  /**
   * Node cannot mknod, so the host's mknod makes the node under a temporary name, by
   * descriptor path, with umask 077 (root's alone until stamped) and without -m, which
   * would chmod by name. Node cannot set a child's umask, hence the one shell jail runs: sh
   * with a clean environment and no start-up file (non-interactive dash reads none, and
   * bash run as sh skips the ~/.bashrc it reads for sshd), and the arguments as "$@".
   */
  async mknod(p: string, type: 'c' | 'b', major: number, minor: number, mode: number, uid: number, gid: number): Promise<Stat | undefined> {
    const pfd = this.#dirFd(parentOf(p));
    const tmp = this.#tmp();
    const r = await run(['sh', '-c', 'umask 077 && exec mknod -- "$@"', 'mknod', `/proc/${process.pid}/fd/${pfd}/${tmp}`, type, String(major), String(minor)]);
    if (!r.ok) refuse('mknod-failed', `Could not create device ${p} (${type} ${major}:${minor}): ${r.error}. Device nodes need root and a filesystem mounted without nodev.`, p);
    const ours = (st: fs.Stats) => {
      const n = devNumbers(st.rdev);
      return (type === 'c' ? st.isCharacterDevice() : st.isBlockDevice()) && n.major === major && n.minor === minor;
    };
    this.#stampNode(pfd, tmp, p, ours, uid, gid, mode);
    this.#install(pfd, tmp, baseName(p), p);
    return this.#lstat(pfd, baseName(p));
  }

  /**
   * Removes an output that is no longer declared. A directory goes only when empty: what
   * a service put in it is not ours. With `seen` (what the plan judged jail's), only that
   * inode is removed: the entry is first moved into a directory of jail's own, where
   * nothing in the jail can reach it, and checked there (#removeSeen).
   */
  prune(p: string, seen?: Stat): Pruned {
    let pfd: number;
    try { pfd = this.#dirFd(parentOf(p)); } catch { return 'kept'; }
    const name = baseName(p);
    if (seen) return this.#removeSeen(pfd, name, p, seen);
    const st = this.#lstat(pfd, name);
    if (!st) return 'removed';
    this.#checkNoMount(p);
    if (st.isDirectory()) {
      try {
        this.#forget(p);
        fs.rmdirSync(this.#proc(pfd, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') return 'kept';
        throw err;
      }
      return 'removed';
    }
    fs.unlinkSync(this.#proc(pfd, name));
    return 'removed';
  }

  /**
   * Removes `name` in `pfd` only if it is `seen`. Deleting by name would delete whatever a
   * service renamed over the name since the plan looked; rename(2) moves exactly what is
   * there now into a directory of jail's own (#holdIn), where it is checked and unlinked
   * without a name anyone else can change. Not `seen`: it is put back, never over what took
   * the name meanwhile (#putBack). A file costs a rename, an lstat and an unlink.
   */
  #removeSeen(pfd: number, name: string, p: string, seen: Stat): Pruned {
    this.#checkNoMount(p);
    const dir = seen.isDirectory();
    if (dir) {
      // Moved only when it is jail's and empty a moment before: a directory being filled
      // (kept) or someone else's stays where the service expects it.
      const why = this.#notEmptyDir(pfd, name, seen);
      if (why !== undefined) return why;
      this.#release(p);
      this.#forget(p);
    }
    // ROOT's top, unless this directory is on another mount beneath ROOT and has one of its own.
    let hold = this.#holds.get(parentOf(p)) ?? this.#holdIn('/');
    const held = this.#tmp();
    let moved = this.#moveInto(hold, pfd, name, held, p);
    if (moved === 'EXDEV') moved = this.#moveInto(hold = this.#holdIn(parentOf(p)), pfd, name, held, p);
    if (moved === 'gone') return 'removed';
    if (moved === 'EXDEV') return refuse('mount-point', `${p} in ROOT is on another mount than its directory; jail never deletes across mounts. Unmount it and run make again.`, p);
    const st = this.#lstat(hold.fd, held);
    if (st && sameInode(st, seen)) {
      try {
        if (dir) fs.rmdirSync(this.#proc(hold.fd, held));
        else fs.unlinkSync(this.#proc(hold.fd, held));
        return 'removed';
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (!dir || (code !== 'ENOTEMPTY' && code !== 'EEXIST')) {
          this.#putBack(hold.fd, held, pfd, name, p, dir);
          throw err;
        }
        // Filled in the instant since it was found empty: kept, as one the plan found filled.
        const at = this.#putBack(hold.fd, held, pfd, name, p, true);
        return at === name ? 'kept' : { left: `it was filled while jail was removing it${movedTo(p, at)}` };
      }
    }
    const at = this.#putBack(hold.fd, held, pfd, name, p, st?.isDirectory() ?? false);
    return { left: `${REPLACED}${movedTo(p, at)}` };
  }

  /** Renames `name` in `pfd` to `held` in the holding directory: 'gone' when nothing is at the name, EXDEV when the two are on different mounts. */
  #moveInto(hold: Hold, pfd: number, name: string, held: string, p: string): 'moved' | 'gone' | 'EXDEV' {
    try {
      fs.renameSync(this.#proc(pfd, name), this.#proc(hold.fd, held));
      return 'moved';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EXDEV') return code;
      if (code !== 'ENOENT') throw err;
      // No entry at the name, or the holding directory was removed under us.
      if (fs.fstatSync(hold.fd).nlink === 0) refuse('unsafe-path', raced(p), p);
      return 'gone';
    }
  }

  /** Why the directory `name` in `pfd` is not removed now (kept: it holds files; left: it is not `seen`), or undefined to go on. */
  #notEmptyDir(pfd: number, name: string, seen: Stat): Pruned | undefined {
    let fd: number;
    try {
      fd = fs.openSync(this.#proc(pfd, name), DIR_FLAGS);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return 'removed';
      if (code === 'ENOTDIR' || code === 'ELOOP') return { left: REPLACED };
      throw err;
    }
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      if (st.dev !== seen.dev || st.ino !== seen.ino) return { left: REPLACED };
      // Only jail's holding directory may be in it, which #release removes.
      const names = fs.readdirSync(this.#proc(fd, '.'));
      return names.every((n) => this.#holdNamed(n, fd)) ? undefined : 'kept';
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Puts back what #removeSeen moved into the holding directory, at `name` in `pfd` if that
   * is free, else under a new name beside it: returns the name it now has. A file is
   * linked back, as link(2) never replaces what took the name meanwhile. A directory
   * can only be renamed, which would replace an empty directory that took the name, so
   * the name is looked at first; an empty directory moved there in between those two calls
   * is the one thing this can still replace (Node has no renameat2(RENAME_NOREPLACE)).
   */
  #putBack(hfd: number, held: string, pfd: number, name: string, p: string, dir: boolean): string {
    const from = this.#proc(hfd, held);
    for (let to = name, tries = 0; ; to = `.jail-left.${process.pid}.${++this.#counter}`) {
      try {
        if (!dir) {
          fs.linkSync(from, this.#proc(pfd, to));
          fs.unlinkSync(from);
          return to;
        }
        if (!this.#lstat(pfd, to)) {
          fs.renameSync(from, this.#proc(pfd, to));
          return to;
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY' && code !== 'ENOTDIR' && code !== 'EISDIR') throw err;
      }
      if (++tries === 100) refuse('unsafe-path', `Could not put back what was found at ${p} (something in the jail keeps taking the names jail tries); it is held in a .jail-tmp directory of ROOT's. Stop the jail's services and run make again.`, p);
    }
  }

  /**
   * The holding directory in the jail directory `dir`: made on first use, root's alone, so
   * nothing in the jail can rename into or out of it. One at ROOT's top serves every
   * removal on ROOT's mount (rename(2) does not cross mounts); close() removes it.
   */
  #holdIn(dir: string): Hold {
    const have = this.#holds.get(dir);
    if (have) return have;
    const pfd = this.#dirFd(dir);
    const name = this.#tmp();
    fs.mkdirSync(this.#proc(pfd, name), 0o700);
    const fd = fs.openSync(this.#proc(pfd, name), DIR_FLAGS);
    const st = fs.fstatSync(fd, { bigint: true });
    // A directory renamed over the new name in the instant since: not one to hold in.
    if (Number(st.uid) !== process.geteuid?.() || (st.mode & 0o077n) !== 0n) {
      fs.closeSync(fd);
      refuse('unsafe-path', raced(dir), dir);
    }
    const hold = { fd, dir, name, dev: st.dev, ino: st.ino };
    this.#holds.set(dir, hold);
    return hold;
  }

  /** Is `name`, in the directory `fd`, one of this build's holding directories? */
  #holdNamed(name: string, fd: number): boolean {
    if (!TEMP_NAME.test(name)) return false;
    const st = this.#lstat(fd, name);
    for (const h of this.#holds.values()) if (st && h.ino === st.ino && h.dev === st.dev) return true;
    return false;
  }

  /** Removes the holding directories at and beneath `p` (all with no argument): they are empty between removals. */
  #release(p?: string): void {
    for (const [dir, h] of this.#holds) {
      if (p !== undefined && dir !== p && !dir.startsWith(p + '/')) continue;
      this.#holds.delete(dir);
      try {
        const pfd = this.#dirFd(dir);
        const st = this.#lstat(pfd, h.name);
        if (st && st.ino === h.ino && st.dev === h.dev) fs.rmdirSync(this.#proc(pfd, h.name));
      } catch { /* moved or filled by something in the jail: left, as that is */ } finally {
        fs.closeSync(h.fd);
      }
    }
  }

  /** lstat of `p`, reached through directory descriptors; undefined when nothing is there or its directory is not a real one. */
  stat(p: string): Stat | undefined {
    let pfd: number;
    try { pfd = this.#dirFd(parentOf(p)); } catch { return undefined; }
    return this.#lstat(pfd, baseName(p));
  }

  /**
   * Deletes temporary files a killed build left in the directory `p`, and the holding
   * directories of its removals (#holdIn: root's alone, so nothing in the jail put what
   * they hold there; a removal moved at most one entry in, to delete it).
   */
  sweepTemp(p: string): number {
    let pfd: number;
    try { pfd = this.#dirFd(p); } catch { return 0; }
    let n = 0;
    for (const name of fs.readdirSync(this.#proc(pfd, '.'))) {
      if (!TEMP_NAME.test(name)) continue;
      const st = this.#lstat(pfd, name);
      if (st && !st.isDirectory()) { fs.unlinkSync(this.#proc(pfd, name)); n++; }
      else if (st && st.uid === process.geteuid?.() && (st.mode & 0o077) === 0 && !this.#holdNamed(name, pfd)) {
        this.#removeAt(pfd, name, `${p === '/' ? '' : p}/${name}`);
        n++;
      }
    }
    return n;
  }
}
