// How many files a build writes at once when -j is not given: chosen by the filesystem
// ROOT lies on. On a memory filesystem (tmpfs, ramfs) a copy is CPU work in the kernel
// with no lock worth contending for, so the build keeps libuv's thread pool (four
// threads unless UV_THREADPOOL_SIZE says otherwise) busy; on a disk filesystem it writes
// one file at a time, as make does, because parallel creation in one directory contends
// for its lock (ext4) and a spinning disk seeks between the files.

import fs from 'node:fs';
import path from 'node:path';

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

