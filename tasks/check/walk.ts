// The full walk of ROOT: lstat only, never following a symlink, never leaving ROOT's
// filesystem (st_dev) nor entering a mount point beneath it (a /proc or a bind mount of
// the same filesystem), with a bound on how many paths and how deep. Each directory is
// opened with O_NOFOLLOW|O_DIRECTORY through its parent's descriptor and must be the inode
// lstat saw, so a directory swapped for a link mid-walk is not listed. Regular files are
// peeked at for the ELF magic through a verified descriptor, and those with an exec bit
// for a `#!` line too (the same one read, of at most what the kernel reads); nothing else
// is opened. A name that is not UTF-8 is read as bytes and carried escaped (byte-names.ts):
// dropped, it would hide whatever was planted under it.

import { SHEBANG_BYTES, envProgram, parseShebang } from '../elf/shebang.js';
import fs from 'node:fs';
import { mountsBeneath } from '../rootfs.js';
import { hasExecBits } from './paths.js';
import { openVerified, procPath, readHead, type RootReader } from './reader.js';
import type { Node } from './types.js';
import { lstatOf, type Stat } from '../stat.js';
import { readNames } from '../byte-names.js';

const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY } = fs.constants;
export const WALK_LIMITS = { maxEntries: 500_000, maxDepth: 128 };

export interface Walk {
  nodes: Node[];
  /** The walk stopped early (too many paths): absence-based checks (hard links) are unreliable. */
  truncated: boolean;
  /** Paths not descended into or not judged: mount points, other filesystems. */
  skipped: string[];
  notes: string[];
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
export function walkRoot(reader: RootReader, opts: { maxEntries?: number } = {}): Walk {
  const maxEntries = opts.maxEntries ?? WALK_LIMITS.maxEntries;
  const rootDev = reader.rootStat.dev;
  const mounts = new Set(mountsBeneath(reader.root));
  const w: Walk = { nodes: [{ path: '/', st: reader.rootStat }], truncated: false, skipped: [], notes: [] };

  const visit = (dirPath: string, fd: number, depth: number): void => {
    let names: string[];
    try {
      names = readNames(procPath(fd, '')).sort();
    } catch (err) {
      w.notes.push(`could not list ${dirPath} (${(err as NodeJS.ErrnoException).code}); what lies beneath it was not checked`);
      return;
    }
    for (const name of names) {
      if (w.truncated) return;
      if (w.nodes.length >= maxEntries) {
        w.truncated = true;
        w.notes.push(`stopped after ${maxEntries} paths: the rest of ROOT was not checked, and hard links were not judged`);
        return;
      }
      const p = dirPath === '/' ? `/${name}` : `${dirPath}/${name}`;
      const host = procPath(fd, name);
      let st: Stat | undefined;
      try { st = lstatOf(host); } catch { st = undefined; }
      if (!st) continue; // gone since readdir
      if (st.dev !== rootDev || mounts.has(p)) {
        w.skipped.push(p);
        continue;
      }
      if (st.isSymbolicLink()) {
        let link: string | undefined;
        try { link = fs.readlinkSync(host); } catch { link = undefined; }
        w.nodes.push(link === undefined ? { path: p, st } : { path: p, st, link });
        continue;
      }
      if (st.isFile()) {
        let elf = false;
        let interpreter: string | undefined;
        let env: string | undefined;
        const exec = hasExecBits(st);
        if (st.size >= 52 || (exec && st.size >= 3)) {
          const ffd = openVerified(host, st);
          if (ffd !== undefined) {
            try {
              const head = readHead(ffd, exec ? SHEBANG_BYTES : 4);
              elf = st.size >= 52 && head.subarray(0, 4).equals(ELF_MAGIC);
              const line = exec && !elf ? parseShebang(head) : undefined;
              interpreter = line?.interpreter;
              env = line && envProgram(line);
            } catch { elf = false; } finally { fs.closeSync(ffd); }
          }
        }
        w.nodes.push(interpreter ? { path: p, st, elf, interpreter, ...(env !== undefined ? { env } : {}) } : { path: p, st, elf });
        continue;
      }
      w.nodes.push({ path: p, st });
      if (!st.isDirectory()) continue;
      if (depth >= WALK_LIMITS.maxDepth) {
        w.notes.push(`${p} is nested more than ${WALK_LIMITS.maxDepth} directories deep; what lies beneath it was not checked`);
        continue;
      }
      let dfd: number;
      try { dfd = fs.openSync(host, O_RDONLY | O_DIRECTORY | O_NOFOLLOW); } catch { continue; }
      try {
        const now = fs.fstatSync(dfd, { bigint: true });
        if (now.dev !== st.dev || now.ino !== st.ino) {
          w.notes.push(`${p} changed while it was being checked; what lies beneath it was not checked`);
          continue;
        }
        visit(p, dfd, depth + 1);
      } finally {
        fs.closeSync(dfd);
      }
    }
  };
  visit('/', reader.rootFd, 0);
  if (w.skipped.length) {
    w.notes.push(`not checked (mount points or other filesystems inside ROOT): ${w.skipped.slice(0, 10).join(', ')}${w.skipped.length > 10 ? `, and ${w.skipped.length - 10} more` : ''}`);
  }
  return w;
}
