// What a jail pack holds, and the checks every pack passes before any of it is used:
// a pack is untrusted input (it may come from another machine, or from an attacker).

import path from 'node:path';
import { jailError, type JailError } from '../result.js';

export const PACK_FORMAT = 'jail-pack/1';
export const INDEX_NAME = 'jail-pack.json';
export const FILES_PREFIX = 'files/';

export interface PackEntry {
  path: string;
  kind: 'dir' | 'symlink' | 'device' | 'file';
  mode: number;
  uid: number;
  gid: number;
  /** symlink */
  target?: string;
  /** device */
  type?: 'c' | 'b';
  major?: number;
  minor?: number;
  /** file */
  size?: number;
  sha256?: string;
  /** file: another name of an earlier file entry (a hard link); it has no bytes of its own. */
  linkTo?: string;
  /** Beneath a data() directory: the service's own files, restored only where missing. */
  data?: boolean;
}

export interface PackIndex {
  format: typeof PACK_FORMAT;
  created: string;
  /** The ROOT it was packed from, and the make variables of that build (those given to pack, the rest as make recorded them). */
  root: string;
  vars: Record<string, string>;
  /** The jailfile's text, for the record. */
  jailfile?: string;
  entries: PackEntry[];
}

/** Device numbers a pack may carry: the pseudo-devices a service may need, nothing that reaches the host. */
export const ALLOWED_DEVICES = new Set(['c:1:3', 'c:1:5', 'c:1:7', 'c:1:8', 'c:1:9', 'c:5:0', 'c:5:1', 'c:5:2']);

export const LIMITS = {
  entries: 1_000_000,
  depth: 64,
  pathLength: 4096,
  indexBytes: 256 * 1024 * 1024,
  totalBytes: 64 * 1024 ** 3,
  /** Uncompressed bytes per compressed byte before a gzip pack is called a bomb. */
  ratio: 200,
};

/** The archive member that holds a file's bytes. */
export const memberName = (jailPath: string): string => FILES_PREFIX + jailPath.slice(1);

/** One thing wrong with a pack's entries: the entry (or `(index)`) and why, as a clause. */
export interface PackProblem { entry: string; why: string }

const refusal = (p: PackProblem): JailError =>
  jailError('bad-pack', `The pack is refused: entry ${JSON.stringify(p.entry)} ${p.why}. Nothing was changed; use a pack made by \`jail pack\` from a jail you trust.`, { path: p.entry });

/** Every check on the index alone; returns the problems found (none means usable). */
export function validateIndex(idx: unknown): { index?: PackIndex; errors: JailError[] } {
  const i = idx as Partial<PackIndex> | null;
  if (!i || typeof i !== 'object' || i.format !== PACK_FORMAT || !Array.isArray(i.entries)) {
    return { errors: [jailError('bad-pack', `The pack is refused: its ${INDEX_NAME} is not a ${PACK_FORMAT} index. Nothing was changed.`)] };
  }
  const problems = entryProblems(i.entries as PackEntry[]);
  return problems.length ? { errors: problems.map(refusal) } : { index: i as PackIndex, errors: [] };
}

/**
 * What rebuild refuses in a pack's entries, at most one problem per entry. `jail pack`
 * applies the same checks to what it is about to write, so it never writes a pack its
 * own rebuild refuses.
 */
export function entryProblems(entries: readonly PackEntry[]): PackProblem[] {
  const errors: PackProblem[] = [];
  const bad = (entry: string, why: string): PackProblem => ({ entry, why });
  if (entries.length > LIMITS.entries) return [bad('(index)', `lists ${entries.length} entries, more than ${LIMITS.entries}`)];
  const seen = new Map<string, PackEntry>();
  for (const e of entries) {
    const p = typeof e?.path === 'string' ? e.path : JSON.stringify(e?.path);
    if (typeof e?.path !== 'string' || !e.path.startsWith('/') || e.path.includes('\0') || e.path === '/') { errors.push(bad(p, 'is not an absolute jail path')); continue; }
    if (path.posix.normalize(e.path) !== e.path || e.path.endsWith('/') || e.path.split('/').some((c) => c === '..' || c === '.')) { errors.push(bad(p, "has '.', '..' or a doubled slash in it")); continue; }
    if (e.path.length > LIMITS.pathLength || e.path.split('/').length - 1 > LIMITS.depth) { errors.push(bad(p, `is nested deeper than ${LIMITS.depth} levels or longer than ${LIMITS.pathLength} characters`)); continue; }
    if (seen.has(e.path)) { errors.push(bad(p, 'appears twice')); continue; }
    if (!['dir', 'symlink', 'device', 'file'].includes(e.kind)) { errors.push(bad(p, `has an unknown kind ${JSON.stringify(e.kind)}`)); continue; }
    if (!Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o7777 || !Number.isInteger(e.uid) || e.uid < 0 || !Number.isInteger(e.gid) || e.gid < 0) { errors.push(bad(p, 'has a bad mode or owner')); continue; }
    if (e.kind === 'file' && (e.mode & 0o6000)) { errors.push(bad(p, `is setuid or setgid (mode ${e.mode.toString(8)}); a pack never brings privileged programs`)); continue; }
    if (e.kind === 'device' && !ALLOWED_DEVICES.has(`${e.type}:${e.major}:${e.minor}`)) {
      errors.push(bad(p, `is a device ${e.type} ${e.major}:${e.minor}, outside the allowed set (null, zero, full, random, urandom, tty, console, ptmx)`)); continue;
    }
    if (e.kind === 'symlink' && (typeof e.target !== 'string' || e.target === '' || e.target.includes('\0'))) { errors.push(bad(p, 'is a symlink without a target')); continue; }
    if (e.kind === 'file' && e.linkTo !== undefined) {
      if (typeof e.linkTo !== 'string') { errors.push(bad(p, 'has a bad hard-link name')); continue; }
    } else if (e.kind === 'file' && (!Number.isInteger(e.size) || e.size! < 0 || typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256))) { errors.push(bad(p, 'is a file without a size and sha256')); continue; }
    seen.set(e.path, e);
  }
  // A hard link names a file of the pack that carries bytes (not another link, not itself).
  for (const e of seen.values()) {
    if (e.linkTo === undefined) continue;
    const first = seen.get(e.linkTo);
    if (!first || first.kind !== 'file' || first.linkTo !== undefined || first === e) errors.push(bad(e.path, `is a hard link to ${JSON.stringify(e.linkTo)}, which is not a file of the pack`));
  }
  // A link followed by something beneath it would write through the link.
  for (const e of seen.values()) {
    for (let q = path.posix.dirname(e.path); q !== '/'; q = path.posix.dirname(q)) {
      const parent = seen.get(q);
      if (parent && parent.kind !== 'dir') { errors.push(bad(e.path, `lies beneath ${q}, which the pack makes a ${parent.kind}`)); break; }
    }
  }
  return errors;
}
