// What the build keeps of an lstat: the few fields plan() and the checks read, and a
// regular file's stamp, built once. Node 20 builds every field of a BigIntStats eagerly
// (18 BigInts and 4 Dates); a no-op make keeps one per jail path from the plan to the
// checks, and collecting those cost more than the lstat calls themselves. The stat is
// still taken with bigint (the stamp's times must be exact to the nanosecond, which the
// millisecond doubles of a plain Stats are not) and dropped right after.

import fs from 'node:fs';

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } = fs.constants;

/** The fields of a stat a stamp is made of: a BigIntStats, or anything holding the same. */
export interface StampFields { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }

/**
 * The identity of a file's bytes without reading them: inode, size, mtime and ctime in
 * nanoseconds. ctime cannot be set from user space, so a same-size edit whose mtime was
 * put back still moves the stamp (git's index and redo use the same trick).
 */
export function stampOf(st: StampFields): string {
  // join() makes one flat string. A template literal makes a chain of nine cons strings,
  // which V8 compares and hashes without flattening, so every stamp kept (one per file in
  // the targets, and one per file in ROOT in the plan) kept the chain: 3.5 times the bytes
  // for the collector to copy.
  return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(':');
}

/**
 * How close to the present a file's times may be before its stamp cannot be trusted. File
 * times come from the kernel's coarse clock (one tick: 4 ms at HZ=250, 10 ms at HZ=100), so
 * a same-size write landing in the same tick as our lstat would leave the stamp unchanged
 * and the change unseen (git's "racy clean" files). Kernels with fine-grained timestamps
 * (6.13 and later on ext4, xfs, btrfs, tmpfs) close that hole themselves.
 */
export const RACY_WINDOW_NS = 20_000_000n;

/** The last clock reading and the racy threshold it gives: the clock moves once a millisecond, a walk stamps many files in one. */
let lastMs = -1, lastThreshold = 0n;

/** `now` (the wall clock in nanoseconds by default) less RACY_WINDOW_NS, without a BigInt product per file. */
function racyThreshold(now?: bigint): bigint {
  if (now !== undefined) return now - RACY_WINDOW_NS;
  const ms = Date.now();
  if (ms !== lastMs) { lastMs = ms; lastThreshold = BigInt(ms) * 1_000_000n - RACY_WINDOW_NS; }
  return lastThreshold;
}

/** True when the file changed too recently (or claims a time in the future) for its stamp to be trusted. */
export function isRacy(st: StampFields, now?: bigint): boolean {
  const t = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
  return t > racyThreshold(now);
}

/**
 * A source's stamp as a build records it. A racy one is marked, so it never equals the
 * source's next stamp: the next build compares bytes (and writes only if they differ)
 * instead of trusting a stamp that may hide a change.
 */
export function sourceStampOf(st: StampFields, now?: bigint): string {
  return isRacy(st, now) ? `${stampOf(st)}:racy` : stampOf(st);
}

// The fields are `declare`d: with ES2022 class fields each would first be defined as
// undefined and then assigned, twice the stores for an object made once per jail path.
export class Stat {
  /** st_mode, type bits included. */
  declare readonly mode: number;
  declare readonly uid: number;
  declare readonly gid: number;
  declare readonly nlink: number;
  declare readonly size: number;
  /** A device node's number, as st_rdev encodes it (devNumbers() splits it). */
  declare readonly rdev: number;
  /** Exact, for comparing inodes: an inode number may not fit a double (overlayfs's xino). */
  declare readonly dev: bigint;
  declare readonly ino: bigint;
  /** A regular file's stamp (stampOf); empty for anything else. */
  declare readonly stamp: string;

  constructor(st: fs.BigIntStats) {
    this.mode = Number(st.mode);
    this.uid = Number(st.uid);
    this.gid = Number(st.gid);
    this.nlink = Number(st.nlink);
    this.size = Number(st.size);
    this.rdev = Number(st.rdev);
    this.dev = st.dev;
    this.ino = st.ino;
    this.stamp = (this.mode & S_IFMT) === S_IFREG ? stampOf(st) : '';
  }

  isFile(): boolean { return (this.mode & S_IFMT) === S_IFREG; }
  isDirectory(): boolean { return (this.mode & S_IFMT) === S_IFDIR; }
  isSymbolicLink(): boolean { return (this.mode & S_IFMT) === S_IFLNK; }
  isCharacterDevice(): boolean { return (this.mode & S_IFMT) === S_IFCHR; }
  isBlockDevice(): boolean { return (this.mode & S_IFMT) === S_IFBLK; }
  isFIFO(): boolean { return (this.mode & S_IFMT) === S_IFIFO; }
  isSocket(): boolean { return (this.mode & S_IFMT) === S_IFSOCK; }
}

/** lstat that never follows the last component; undefined when nothing is there. */
export function lstatOf(p: fs.PathLike): Stat | undefined {
  const st = fs.lstatSync(p, { bigint: true, throwIfNoEntry: false });
  return st && new Stat(st);
}

/** fstat of an open descriptor, kept small. */
export function fstatOf(fd: number): Stat {
  return new Stat(fs.fstatSync(fd, { bigint: true }));
}

/** st_rdev split as glibc's major() and minor() do (exact for any number Linux makes). */
export function devNumbers(rdev: number): { major: number; minor: number } {
  // Bit operators work on 32 bits: the high word is taken apart by division.
  const hi = Math.floor(rdev / 2 ** 32), lo = rdev >>> 0;
  return {
    major: ((lo >>> 8) & 0xfff) + (hi >>> 12) * 2 ** 12,
    minor: (lo & 0xff) + ((lo >>> 12) & 0xfff00) + (hi & 0xfff) * 2 ** 20,
  };
}
