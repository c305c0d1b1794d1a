// A target is one path in the jail with what it must be: pure data, made by expand()
// and judged by plan(). Its declaration (`decl`) is everything that, when changed,
// means the path in ROOT must be rewritten.

export type TargetKind = 'dir' | 'symlink' | 'device' | 'file' | 'text';

interface Base {
  /** Absolute jail path, normalised: `/etc/motd`. */
  readonly path: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** The jailfile entry that asked for it: `file:line` and how it reads. */
  readonly at: string;
  readonly label: string;
  /** A parent directory nobody declared: made because something beneath it was. */
  readonly implicit?: boolean;
  /** A service's own file restored from a pack: created where missing, never replaced, never recorded as the build's. */
  readonly data?: boolean;
  /**
   * What the loader needs rather than what the jailfile named: an interpreter or library of
   * an elf() closure (with its symlink chain), or the jail's generated ld.so.cache. The
   * `libs` group, for refreshing them alone after a host upgrade.
   */
  readonly library?: boolean;
  /** The mode is the host source's, as the entry declares none: when it moves, the source changed, not the jailfile. */
  readonly sourceMode?: boolean;
}

export interface DirTarget extends Base { readonly kind: 'dir' }
export interface SymlinkTarget extends Base { readonly kind: 'symlink'; readonly target: string }
export interface DeviceTarget extends Base { readonly kind: 'device'; readonly type: 'c' | 'b'; readonly major: number; readonly minor: number; readonly dangerous: boolean }
export interface FileTarget extends Base {
  readonly kind: 'file';
  /** The host file whose bytes the jail file holds. */
  readonly source: string;
  /** The source's stamp when expand() looked at it; for a pack's file, a hash stamp (hashStamp) of its bytes. */
  readonly sourceStamp: string;
  /**
   * A hard link of a pack or install layer: this path is another name of the file at
   * `linkTo` (made by link(2), after that file), not a copy of its own.
   */
  readonly linkTo?: string;
  /** How many names the file has in the jail (1 unless hard-linked). */
  readonly nlink?: number;
}
export interface TextTarget extends Base { readonly kind: 'text'; readonly content: Buffer; readonly contentHash: string }

export type Target = DirTarget | SymlinkTarget | DeviceTarget | FileTarget | TextTarget;

/** Groups a person can name on the command line: `jail make ROOT=... links`. */
export const GROUPS = ['dirs', 'links', 'devices', 'files', 'libs', 'etc'] as const;
export type GroupName = (typeof GROUPS)[number];

export function inGroup(t: Target, g: GroupName): boolean {
  switch (g) {
    case 'dirs': return t.kind === 'dir';
    case 'links': return t.kind === 'symlink';
    case 'devices': return t.kind === 'device';
    case 'files': return t.kind === 'file' || t.kind === 'text';
    case 'libs': return t.library === true;
    case 'etc': return t.path === '/etc' || t.path.startsWith('/etc/');
  }
}

export { stampOf, sourceStampOf } from './stat.js';

/**
 * The stamp of a `FROM=` pack's file: its bytes' sha256 and size, as the pack's index gives
 * them (the size where a stat stamp has it). Its bytes are judged by that hash, with no
 * copy of the pack at hand.
 */
export function hashStamp(sha256: string, size: number): string {
  return `sha256:${sha256}:${size}`;
}

/** The sha256 a hash stamp holds; undefined for a stat stamp. */
export function stampHash(stamp: string): string | undefined {
  return stamp.startsWith('sha256:') ? stamp.slice(7, 71) : undefined;
}

/** The size a stamp records (Infinity when it is not a stamp). */
export function stampSize(stamp: string): number {
  const n = Number(stamp.split(':')[2]);
  return Number.isFinite(n) ? n : Infinity;
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/**
 * Is `p` an entry of directory `dir` itself, not deeper (`dir` '' is no directory)? Asked
 * without cutting `p`'s parent out as a new string: loops over paths that come directory
 * by directory keep the last directory and ask this of each path.
 */
export function isEntryOf(p: string, dir: string): boolean {
  if (dir === '') return false;
  const n = dir === '/' ? 0 : dir.length;
  return p.length > n + 1 && p.charCodeAt(n) === 0x2f && p.indexOf('/', n + 1) === -1 && (n === 0 || p.startsWith(dir));
}

/**
 * Sort key that puts a directory right before everything beneath it: paths compared
 * component by component, which is comparing them as strings in which `/` sorts below
 * every other character. Done char by char, without splitting: a jail's targets are
 * sorted on every build, and splitting allocated two arrays per comparison.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i), y = b.charCodeAt(i);
    if (x !== y) return x === 0x2f ? -1 : y === 0x2f ? 1 : x - y;
  }
  return a.length - b.length;
}

export const octal = (m: number): string => (m & 0o7777).toString(8).padStart(4, '0');
