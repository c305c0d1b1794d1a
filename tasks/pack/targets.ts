// A validated pack as targets: the same plan and executor as a jailfile build, with the
// staged files (outside ROOT) as the sources, so `rebuild FROM=` needs no host file.

import fs from 'node:fs';
import { withParents } from '../expand.js';
import type { JailError } from '../result.js';
import { stampOf, type Target } from '../targets.js';
import type { ReadPack } from './read.js';

export function packTargets(pack: ReadPack, file: string, errors: JailError[]): Target[] {
  const at = file;
  const targets: Target[] = [];
  const names = new Map<string, number>();
  for (const e of pack.index.entries) if (e.linkTo) names.set(e.linkTo, (names.get(e.linkTo) ?? 1) + 1);
  const leaders = new Map(pack.index.entries.map((e) => [e.path, e]));
  for (const e of pack.index.entries) {
    const base = { path: e.path, mode: e.mode, uid: e.uid, gid: e.gid, at, label: `pack entry ${e.path}`, ...(e.data ? { data: true } : {}) };
    switch (e.kind) {
      case 'dir': targets.push({ ...base, kind: 'dir' }); break;
      case 'symlink': targets.push({ ...base, kind: 'symlink', mode: 0o777, target: e.target! }); break;
      case 'device': targets.push({ ...base, kind: 'device', type: e.type!, major: e.major!, minor: e.minor!, dangerous: false }); break;
      case 'file': {
        // A hard link is another name of its first file: that file's bytes and attributes.
        const first = e.linkTo ? leaders.get(e.linkTo)! : e;
        const source = pack.staged.get(first.path)!;
        const nlink = names.get(first.path) ?? 1;
        targets.push({
          ...base, mode: first.mode, uid: first.uid, gid: first.gid, kind: 'file', source, sourceStamp: stampOf(fs.lstatSync(source, { bigint: true })),
          ...(e.linkTo ? { linkTo: e.linkTo } : {}), ...(nlink > 1 ? { nlink } : {}),
        });
        break;
      }
    }
  }
  return withParents(targets, errors);
}
