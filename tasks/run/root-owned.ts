// Why a service could not open a file, when the answer is cheap and sure: after an rc
// script fails, the absolute paths its output names are looked up in ROOT (lstat only,
// directories opened without following links: the jail's files are never trusted). A
// root-owned file the jail user cannot write, in a directory that user owns, is what a
// run as root (the article's chroot by hand) leaves behind, and make and check rightly
// see nothing wrong there: the directory's content is the service's, not jail's.

import path from 'node:path';
import { RootReader } from '../check/reader.js';
import { shellWord } from '../printable.js';
import { parentOf } from '../targets.js';

/** One line per such file named in `output`, saying what to do; empty when there is none. */
export function rootOwnedHints(root: string, user: { name: string; uid: number; gid: number }, output: string): string[] {
  if (user.uid === 0) return [];
  const named = new Set((output.match(/\/[^\s:'"`,;()]+/g) ?? []).map((p) => p.replace(/\.+$/, '')).filter((p) => p.length > 1 && !p.includes('/../')));
  if (!named.size) return [];
  const reader = RootReader.open(root);
  if (!(reader instanceof RootReader)) return [];
  try {
    const hints: string[] = [];
    for (const p of named) {
      const st = reader.lstat(p);
      const dir = reader.lstat(parentOf(p));
      if (!st?.isFile() || st.uid !== 0 || (st.mode & 0o002) !== 0 || !dir?.isDirectory() || dir.uid !== user.uid) continue;
      const host = shellWord(path.join(root, p));
      hints.push(`${host} is root's (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}) in a directory ${user.name} writes to, so the service, which runs as ${user.name}, cannot open it; ` +
        `a run as root (a chroot by hand?) left it. Give it to ${user.name} (chown ${user.uid}:${user.gid} ${host}), then boot again`);
    }
    return hints;
  } finally {
    reader.close();
  }
}
