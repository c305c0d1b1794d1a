// What every rule of the check reads: the nodes seen in ROOT, what the jailfile declares,
// what the last build recorded, the jail's accounts, and where findings go.

import type { Rec } from '../manifest.js';
import type { Stat } from '../stat.js';
import type { Target } from '../targets.js';
import type { RootReader } from './reader.js';
import type { Finding, FindingKind, Node } from './types.js';

export interface JailAccount {
  name: string; passwd: string; uid: number; gid: number; home: string; shell: string; line: number;
  /** The uid field as written, when it is not plain digits (`+0`, ` 0`). */
  uidText?: string;
}
/** A uid or gid field that is not plain digits, or too large: what the libc reads of it (undefined: it skips the line). */
export interface OddId { file: '/etc/passwd' | '/etc/group'; name: string; line: number; field: 'uid' | 'gid'; text: string; id: number | undefined }

export interface Context {
  readonly root: string;
  readonly reader: RootReader;
  /** The full walk's nodes, or (cheap) the declared targets' nodes. */
  readonly nodes: Node[];
  /** lstat of a jail path: the node's stat when it is one, else looked up through the reader. */
  lstat(p: string): Stat | undefined;
  /** A symlink's content: the node's when it is one, else read through the reader. */
  readlink(p: string): string | undefined;
  readonly cheap: boolean;
  readonly declared: Map<string, Target>;
  /** The jailfile's data() directories: what lies beneath them is the service's to write. */
  readonly dataDirs: readonly string[];
  /** The last build's record (empty when there is none). */
  readonly records: Record<string, Rec>;
  /** The jail's etc/passwd, read as data. */
  readonly accounts: JailAccount[];
  /** The jail's etc/group: gid -> name. */
  readonly groups: Map<number, string>;
  /** The jail's etc/group: gid -> the members its line lists. */
  readonly members: Map<number, string[]>;
  /** uid and gid fields of etc/passwd and etc/group that are not plain digits. */
  readonly oddIds: OddId[];
  add(kind: FindingKind, path: string, message: string, fix: string): void;
  note(message: string): void;
}

export function collector(): { findings: Finding[]; add: Context['add'] } {
  const findings: Finding[] = [];
  const seen = new Set<string>();
  return {
    findings,
    add(kind, path, message, fix) {
      const key = `${kind}\0${path}\0${message}`;
      if (seen.has(key)) return;
      seen.add(key);
      findings.push({ kind, path, message, fix });
    },
  };
}

/** Non-root users of the jail, by uid: the service accounts whose writes the check looks for. */
export function serviceUsers(ctx: Context): Map<number, string> {
  const out = new Map<number, string>();
  for (const a of ctx.accounts) if (a.uid !== 0 && !out.has(a.uid)) out.set(a.uid, a.name);
  return out;
}
