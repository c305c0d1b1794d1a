// What a jail pack holds, and the checks every pack passes before any of it is used:
// a pack is untrusted input (it may come from another machine, or from an attacker).

import path from 'node:path';
import { jailError, type JailError } from '../result.js';
import { printable, printableCode } from '../printable.js';

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
  /** Bytes in a jail path or a link's target: Linux's PATH_MAX, less its NUL. */
  pathLength: 4095,
  indexBytes: 256 * 1024 * 1024,
  totalBytes: 64 * 1024 ** 3,
  /** Uncompressed bytes per compressed byte (over the whole pack, with 64 MiB of slack: see read.ts) before a compressed pack is called a bomb. */
  ratio: 200,
};

/** The archive member that holds a file's bytes. */
export const memberName = (jailPath: string): string => FILES_PREFIX + jailPath.slice(1);

/** One thing wrong with a pack: the entry (or `(archive)`, `(index)`) and why, as a clause. */
export interface PackProblem { entry: string; why: string }

/** A name from a pack, quoted for a message: control characters and bidirectional overrides escaped. */
export const quoted = (s: string): string => printableCode(JSON.stringify(s));

/**
 * A bad pack, refused in one paragraph: its first problem, and how many more there are
 * (a damaged archive has as many as it has blocks; one is enough to act on).
 */
export function packRefusal(file: string | undefined, problems: readonly PackProblem[]): JailError {
  const [first, ...more] = problems;
  const what = (p: PackProblem) => (p.entry.startsWith('(') ? `${p.entry.slice(1, -1)} ${p.why}` : `entry ${quoted(p.entry)} ${p.why}`);
  const also = more.length ? ` (and ${more.length} more problem${more.length > 1 ? 's' : ''}, the next: ${what(more[0]!)})` : '';
  return jailError('bad-pack', `The pack${file === undefined ? '' : ` ${printable(file)}`} is refused: ${what(first!)}${also}. Nothing was changed; use a pack made by \`jail pack\` from a jail you trust.`,
    { path: first!.entry.startsWith('(') ? file : first!.entry });
}

/** The highest uid or gid a file can have: 2^32-1 is chown's "leave it as it is". */
const MAX_ID = 2 ** 32 - 2;
/** Linux's NAME_MAX: bytes in one name of a path. */
const NAME_MAX = 255;

/**
 * Every check on the index alone, so that nothing is written into ROOT before every entry
 * is known good; returns the problems found (none means usable), as one paragraph that
 * names `file` when given.
 */
export function validateIndex(idx: unknown, file?: string): { index?: PackIndex; errors: JailError[] } {
  const i = idx as Partial<PackIndex> | null;
  if (!i || typeof i !== 'object' || i.format !== PACK_FORMAT || !Array.isArray(i.entries)) {
    return { errors: [packRefusal(file, [{ entry: '(index)', why: `${INDEX_NAME} is not a ${PACK_FORMAT} index` }])] };
  }
  const problems = entryProblems(i.entries as PackEntry[]);
  return problems.length ? { errors: [packRefusal(file, problems)] } : { index: i as PackIndex, errors: [] };
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
  const id = (n: unknown) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= MAX_ID;
  for (const e of entries) {
    const p = typeof e?.path === 'string' ? e.path : JSON.stringify(e?.path);
    if (typeof e?.path !== 'string' || !e.path.startsWith('/') || e.path.includes('\0') || e.path === '/') { errors.push(bad(p, 'is not an absolute jail path')); continue; }
    if (path.posix.normalize(e.path) !== e.path || e.path.endsWith('/') || e.path.split('/').some((c) => c === '..' || c === '.')) { errors.push(bad(p, "has '.', '..' or a doubled slash in it")); continue; }
    if (e.path.split('/').length - 1 > LIMITS.depth) { errors.push(bad(p, `is nested deeper than ${LIMITS.depth} levels`)); continue; }
    if (Buffer.byteLength(e.path) > LIMITS.pathLength) { errors.push(bad(p, `is longer than ${LIMITS.pathLength} bytes`)); continue; }
    if (e.path.split('/').some((c) => Buffer.byteLength(c) > NAME_MAX)) { errors.push(bad(p, `has a name longer than ${NAME_MAX} bytes`)); continue; }
    if (seen.has(e.path)) { errors.push(bad(p, 'appears twice')); continue; }
    if (!['dir', 'symlink', 'device', 'file'].includes(e.kind)) { errors.push(bad(p, `has an unknown kind ${JSON.stringify(e.kind)}`)); continue; }
    if (!Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o7777 || !id(e.uid) || !id(e.gid)) { errors.push(bad(p, `has a bad mode or owner (an owner is a number from 0 to ${MAX_ID})`)); continue; }
    if (e.kind === 'file' && (e.mode & 0o6000)) { errors.push(bad(p, `is setuid or setgid (mode ${e.mode.toString(8)}); a pack never brings privileged programs`)); continue; }
    if (e.kind === 'device' && !ALLOWED_DEVICES.has(`${e.type}:${e.major}:${e.minor}`)) {
      errors.push(bad(p, `is a device ${e.type} ${e.major}:${e.minor}, outside the allowed set (null, zero, full, random, urandom, tty, console, ptmx)`)); continue;
    }
    if (e.kind === 'symlink' && (typeof e.target !== 'string' || e.target === '' || e.target.includes('\0'))) { errors.push(bad(p, 'is a symlink without a target')); continue; }
    if (e.kind === 'symlink' && Buffer.byteLength(e.target!) > LIMITS.pathLength) { errors.push(bad(p, `is a symlink whose target is longer than ${LIMITS.pathLength} bytes`)); continue; }
    if (e.kind === 'file' && e.linkTo !== undefined) {
      if (typeof e.linkTo !== 'string') { errors.push(bad(p, 'has a bad hard-link name')); continue; }
    } else if (e.kind === 'file' && (!Number.isInteger(e.size) || e.size! < 0 || e.size! > LIMITS.totalBytes || typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256))) { errors.push(bad(p, 'is a file without a size and sha256')); continue; }
    seen.set(e.path, e);
  }
  // A hard link names a file of the pack that carries bytes (not another link, not itself).
  for (const e of seen.values()) {
    if (e.linkTo === undefined) continue;
    const first = seen.get(e.linkTo);
    if (!first || first.kind !== 'file' || first.linkTo !== undefined || first === e) errors.push(bad(e.path, `is a hard link to ${quoted(e.linkTo)}, which is not a file of the pack`));
  }
  // A link followed by something beneath it would write through the link.
  for (const e of seen.values()) {
    for (let q = path.posix.dirname(e.path); q !== '/'; q = path.posix.dirname(q)) {
      const parent = seen.get(q);
      if (parent && parent.kind !== 'dir') { errors.push(bad(e.path, `lies beneath ${printable(q)}, which the pack makes a ${parent.kind}`)); break; }
    }
  }
  return errors;
}
