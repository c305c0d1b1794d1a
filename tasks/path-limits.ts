// Linux's limits on a path: PATH_MAX (4096 bytes, the NUL included) for the whole and
// NAME_MAX (255 bytes) for a name. The build reaches ROOT's files by their full path
// (ROOT plus the jail path) as well as name by name, so a jail path that takes ROOT past
// PATH_MAX would be written once and then fail every lstat of a later build. It is
// refused before anything is written; the check is a length compare for all but the
// longest paths, as it runs on every target of every build.

import { jailError, type JailError } from './result.js';
import { printable } from './printable.js';
import type { Target } from './targets.js';

export const PATH_MAX = 4096;
export const NAME_MAX = 255;

/** Why ROOT + `p` cannot be named by Linux, or undefined when it can. */
export function tooLongInRoot(root: string, p: string): string | undefined {
  // UTF-8 takes at most 3 bytes for a UTF-16 unit: most paths pass on their length alone.
  if ((root.length + p.length) * 3 < PATH_MAX && p.length * 3 <= NAME_MAX) return undefined;
  const bytes = Buffer.byteLength(root) + Buffer.byteLength(p);
  if (bytes >= PATH_MAX) return `in ROOT it is ${printable(root + p)}, ${bytes} bytes, past Linux's PATH_MAX of ${PATH_MAX} bytes (ROOT included)`;
  for (let from = 1; from < p.length;) {
    const to = p.indexOf('/', from) < 0 ? p.length : p.indexOf('/', from);
    const n = to - from > NAME_MAX / 3 ? Buffer.byteLength(p.slice(from, to)) : 0;
    if (n > NAME_MAX) return `its name ${printable(p.slice(from, to))} is ${n} bytes, past Linux's NAME_MAX of ${NAME_MAX} bytes`;
    from = to + 1;
  }
  return undefined;
}

/** One error per entry with a target Linux cannot name in ROOT: the first such target, and how many more. */
export function tooLongErrors(root: string, targets: readonly Target[]): JailError[] {
  const byEntry = new Map<string, { t: Target; why: string; more: number }>();
  for (const t of targets) {
    const why = tooLongInRoot(root, t.path);
    if (why === undefined) continue;
    const seen = byEntry.get(t.at);
    if (seen) seen.more++;
    else byEntry.set(t.at, { t, why, more: 0 });
  }
  return [...byEntry.values()].map(({ t, why, more }) => jailError('path-too-long',
    `${t.at}: ${t.label}: the jail path ${printable(t.path)} is too long: ${why}${more ? ` (and ${more} more of this entry's paths)` : ''}. ` +
    'Shorten the jail path (the entry\'s `to:`, or the tree it copies), or choose a shorter ROOT. Nothing was touched.',
    { path: t.path, entry: t.at }));
}
