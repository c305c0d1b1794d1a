// A validated pack as targets: the same plan and executor as a jailfile build. An install
// layer's files are staged where it is kept, and are the sources; a `FROM=` pack's are
// named by their member and known by their sha256 (a hash stamp, see targets.ts), and
// copied out of the pack only when a build writes them (stagePack), so `rebuild FROM=`
// needs no host file, and -n, -q and check need no copy at all.

import fs from 'node:fs';
import { withParents } from '../expand.js';
import { printable } from '../printable.js';
import type { JailError } from '../result.js';
import { hashStamp, stampOf, type Target } from '../targets.js';
import { memberName, type PackEntry, type PackIndex } from './format.js';

/** `staged`: an install layer's files (jail path -> staged file); without it, the members of the pack `file`. */
export function packTargets(pack: { index: PackIndex; staged?: ReadonlyMap<string, string> }, file: string, errors: JailError[]): Target[] {
  const at = file;
  const targets: Target[] = [];
  const names = new Map<string, number>();
  for (const e of pack.index.entries) if (e.linkTo) names.set(e.linkTo, (names.get(e.linkTo) ?? 1) + 1);
  const leaders = new Map(pack.index.entries.map((e) => [e.path, e]));
  const source = (first: PackEntry) => {
    if (pack.staged) {
      const staged = pack.staged.get(first.path)!;
      return { source: staged, sourceStamp: stampOf(fs.lstatSync(staged, { bigint: true })) };
    }
    // Shown in reasons ("source is now ..."), so the member and the pack, not a staging path.
    return { source: `${printable(memberName(first.path))} in ${printable(file)}`, sourceStamp: hashStamp(first.sha256!, first.size!) };
  };
  for (const e of pack.index.entries) {
    const base = { path: e.path, mode: e.mode, uid: e.uid, gid: e.gid, at, label: `pack entry ${printable(e.path)}`, ...(e.data ? { data: true } : {}) };
    switch (e.kind) {
      case 'dir': targets.push({ ...base, kind: 'dir' }); break;
      case 'symlink': targets.push({ ...base, kind: 'symlink', mode: 0o777, target: e.target! }); break;
      case 'device': targets.push({ ...base, kind: 'device', type: e.type!, major: e.major!, minor: e.minor!, dangerous: false }); break;
      case 'file': {
        // A hard link is another name of its first file: that file's bytes and attributes.
        const first = e.linkTo ? leaders.get(e.linkTo)! : e;
        const nlink = names.get(first.path) ?? 1;
        targets.push({
          ...base, mode: first.mode, uid: first.uid, gid: first.gid, kind: 'file', ...source(first),
          ...(e.linkTo ? { linkTo: e.linkTo } : {}), ...(nlink > 1 ? { nlink } : {}),
        });
        break;
      }
    }
  }
  return withParents(targets, errors);
}
