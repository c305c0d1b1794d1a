// What `jail check` reports: findings, each a kind, a jail path, what is wrong and what to
// do about it; notes for what the check itself could not look at.

import type { Stat } from '../stat.js';

export const FINDING_KINDS = [
  'missing-library',
  'missing-interpreter',
  'setuid',
  'world-writable',
  'device',
  'hardlink',
  'drift',
  'escape-symlink',
  'accounts',
  'bad-name',
] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

export interface Finding {
  readonly kind: FindingKind;
  /** The jail path (as seen inside the jail): `/usr/bin/ping`. */
  readonly path: string;
  /** One line: what is wrong and why it matters. */
  readonly message: string;
  /** One line: what to do about it. */
  readonly fix: string;
}

export interface CheckOptions {
  /**
   * Only the cheap checks, on the declared targets (setuid, world-writable, device,
   * escape-symlink, accounts): no walk of ROOT, no ELF resolution, no drift. What
   * `jail make` runs after every build.
   */
  cheap?: boolean;
  /** Stop walking after this many paths (default 500000); a note says so. */
  maxEntries?: number;
  /** Read file capabilities with the host's getcap (default true); skipped with a note when it is absent. */
  capabilities?: boolean;
  /**
   * Cheap checks only: what a build just saw or made of its targets in ROOT (lstat), so
   * the checks after a make cost no second look at the jail. Paths missing from it are
   * looked at again.
   */
  observed?: ReadonlyMap<string, Stat>;
}

export interface CheckResult {
  /** What is wrong, sorted by path; findings accepted by allow() entries are left out. */
  readonly findings: Finding[];
  /** Findings that allow() entries accepted. */
  readonly allowed: Finding[];
  /** What the check skipped or could not do (mount points, a truncated walk, no getcap...). */
  readonly notes: string[];
}

/** One path in ROOT as the check saw it (lstat, never following a link). */
export interface Node {
  readonly path: string;
  readonly st: Stat;
  /** A symlink's content. */
  readonly link?: string;
  /** (cheap) A symlink the build just found holding its declared target: the author's own. */
  readonly declared?: boolean;
  /** A regular file that starts with the ELF magic (full check only). */
  readonly elf?: boolean;
  /** (full check only) An executable file's `#!` interpreter, an absolute path. */
  readonly interpreter?: string;
  /** (full check only) With `#!/usr/bin/env NAME`: NAME, which env looks for in PATH (or an absolute path). */
  readonly env?: string;
}
