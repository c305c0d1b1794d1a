// How many files a build writes at once when -j is not given: chosen by the filesystem
// ROOT lies on. On a memory filesystem (tmpfs, ramfs) a copy is CPU work in the kernel
// with no lock worth contending for, so the build keeps libuv's thread pool (four
// threads unless UV_THREADPOOL_SIZE says otherwise) busy; on a disk filesystem it writes
// one file at a time, as make does, because parallel creation in one directory contends
// for its lock (ext4) and a spinning disk seeks between the files.

import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

/** statfs(2) f_type of the memory filesystems. */
const MEMORY_FILESYSTEMS = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

/** The default -j on a memory filesystem: as many copies as libuv's thread pool runs at once. */
export function memoryFsJobs(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? n : 4;
}

/** The -j a build of `root` uses when none is given; 1 when the filesystem cannot be told. */
export function defaultJobs(root: string): number {
  // A first build's ROOT may not exist yet: the filesystem it will be made on is its
  // nearest existing parent's.
  let at = root;
  for (;;) {
    try { return MEMORY_FILESYSTEMS.has(Number(fs.statfsSync(at).type)) ? memoryFsJobs() : 1; } catch (err) {
      const parent = path.dirname(at);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === at) return 1;
      at = parent;
    }
  }
}

/** Below this many file copies, starting threads costs more than they save. */
const THREADED_COPIES_MIN = 500;
/** Copies asked for at once per copy thread: one message carries many. */
export const COPIES_PER_THREAD = 64;

/**
 * Copy threads for a build: with -j above 1 and many files to copy, as many as -j asks and
 * the machine has cores for; none otherwise (small builds, -j 1, disks).
 */
export function copyThreads(jobs: number, plan: { actions: readonly { target?: { kind: string } }[] }): number {
  if (jobs < 2) return 0;
  let copies = 0;
  for (const a of plan.actions) if (a.target?.kind === 'file') copies++;
  return copies < THREADED_COPIES_MIN ? 0 : Math.min(jobs, os.availableParallelism());
}
