// Which jail paths matter (programs, libraries, etc), and where a symlink leads when a
// host tool follows it.

import path from 'node:path';
import type { RootReader } from './reader.js';
import type { Stat } from '../stat.js';
import { within } from '../host-inputs.js';

/** bin, sbin, lib*, usr/bin, usr/sbin, usr/lib*, usr/local/{bin,sbin,lib*} and what lies beneath them. */
const PROGRAM_OR_LIBRARY_DIR = /^\/(usr\/(local\/)?)?(s?bin|lib[^/]*)(\/|$)/;

export const inProgramOrLibraryDir = (p: string): boolean => PROGRAM_OR_LIBRARY_DIR.test(p);
export const isEtc = (p: string): boolean => p === '/etc' || p.startsWith('/etc/');
export const hasExecBits = (st: Stat): boolean => (st.mode & 0o111) !== 0;
/** At or beneath one of the service's data() directories: its own files, not jail's. */
export const inDataDir = (p: string, dataDirs: readonly string[]): boolean => dataDirs.some((d) => within(p, d));

const MAX_HOPS = 40;

export type HostResolution =
  /** Stays in ROOT (or stops at something missing or a loop: a host tool gets an error). */
  | { kind: 'inside' }
  /** Climbs above ROOT with `..`: a host tool reaches `host`. */
  | { kind: 'climbs'; host: string }
  /** Meets an absolute link on the way (judged on its own). */
  | { kind: 'absolute'; via: string; target: string };

/**
 * Where a relative link target leads when the host (not the chroot) resolves it: the
 * link's directory, then each component, following the links met on the way as the
 * kernel would outside the jail, where `..` at ROOT goes on up into the host. `reader`
 * is a RootReader, or the check's context, which answers from the stats in hand.
 */
export function resolveFromHost(reader: Pick<RootReader, 'root' | 'lstat' | 'readlink'>, linkDir: string, target: string): HostResolution {
  // Most links name a sibling (libz.so.1 -> libz.so.1.2.13): one lookup, and unless the
  // sibling is a link itself there is nothing to climb. Without splitting and joining.
  if (!target.includes('/') && target !== '..' && target !== '.' && target !== '') {
    const st = reader.lstat(`${linkDir === '/' ? '' : linkDir}/${target}`);
    if (!st || !st.isSymbolicLink()) return { kind: 'inside' };
  }
  const cur = linkDir.split('/').filter((c) => c !== '');
  const todo = target.split('/').filter((c) => c !== '' && c !== '.').reverse();
  let hops = 0;
  while (todo.length > 0) {
    const c = todo.pop() as string;
    if (c === '..') {
      if (cur.length === 0) {
        const rest = todo.reverse().join('/');
        return { kind: 'climbs', host: path.posix.resolve(reader.root, '..', rest) };
      }
      cur.pop();
      continue;
    }
    const p = '/' + [...cur, c].join('/');
    const st = reader.lstat(p);
    if (!st) return { kind: 'inside' };
    if (st.isSymbolicLink()) {
      if (++hops > MAX_HOPS) return { kind: 'inside' };
      const t = reader.readlink(p);
      if (t === undefined) return { kind: 'inside' };
      if (t.startsWith('/')) {
        if (t === reader.root || t.startsWith(reader.root + '/')) {
          cur.length = 0;
          const inRoot = t.slice(reader.root.length).split('/').filter((x) => x !== '' && x !== '.');
          for (let i = inRoot.length - 1; i >= 0; i--) todo.push(inRoot[i] as string);
          continue;
        }
        return { kind: 'absolute', via: p, target: t };
      }
      const parts = t.split('/').filter((x) => x !== '' && x !== '.');
      for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i] as string);
      continue;
    }
    if (todo.length > 0 && !st.isDirectory()) return { kind: 'inside' };
    cur.push(c);
  }
  return { kind: 'inside' };
}

/** Does a relative target climb above ROOT just as written (`../../../etc`)? */
export function climbsLexically(linkDir: string, target: string): boolean {
  // Only a `..` component climbs; most links (libz.so.1 -> libz.so.1.2.13) have none.
  if (!target.includes('..')) return false;
  const joined = path.posix.normalize(`.${linkDir === '/' ? '' : linkDir}/${target}`);
  return joined === '..' || joined.startsWith('../');
}
