// The host paths a jailfile reads (copy() sources, elf() programs, install() inputs, a
// FROM= pack), checked against ROOT by real path before any is read. A jail built inside
// its own source copies itself into itself on every run; a source inside the jail reads
// back whatever was planted there (a symlink to a host secret, followed as a "source").

import fs from 'node:fs';
import path from 'node:path';
import { globBase, isGlob } from './glob.js';
import type { Entry } from './entries.js';
import { jailError, type JailError } from './result.js';

/** Is `p` the directory `dir` or beneath it? */
export const within = (p: string, dir: string): boolean => p === dir || p.startsWith(dir === '/' ? '/' : dir + '/');

/**
 * A host path with every symlink resolved, as far as it exists; with `followLast` false a
 * symlink at the end is not followed (copy() without follow copies the link itself).
 */
export function realHostPath(p: string, followLast = true): string {
  const parent = path.dirname(p);
  if (!followLast && parent !== p) return path.join(realHostPath(parent), path.basename(p));
  try { return fs.realpathSync.native(p); } catch {
    return parent === p ? p : path.join(realHostPath(parent), path.basename(p));
  }
}

/**
 * How a host path `real` (resolved) stands to ROOT's real path, in words for a message, or
 * undefined when neither holds the other.
 */
export function againstRoot(real: string, root: string): string | undefined {
  if (real === root) return 'is ROOT itself';
  if (within(real, root)) return 'lies inside ROOT';
  if (within(root, real)) return 'holds ROOT';
  return undefined;
}

const WHY = 'a build would read back what it wrote into the jail (copying the jail into itself on every run), and anything planted there, a symlink to a host file included, would be taken as the host\'s';

/** One error per entry whose host input lies inside ROOT or holds it; `root` is ROOT's real path. */
export function hostInputErrors(entries: readonly Entry[], root: string, shownRoot: string): JailError[] {
  const errors: JailError[] = [];
  const test = (e: Entry, what: string, p: string, followLast: boolean): boolean => {
    const at = isGlob(p) ? globBase(p) : p;
    const real = realHostPath(path.posix.normalize(at), followLast);
    const how = againstRoot(real, root);
    if (how === undefined) return false;
    errors.push(jailError('source-in-root',
      `${e.at}: ${e.label}: ${what} ${p}${real === at ? '' : ` (${real})`} ${how} (ROOT=${shownRoot}): ${WHY}. ` +
      'Choose a ROOT outside every source the jailfile reads, or move the source out of the jail. Nothing was touched.',
      { path: p, entry: e.at }));
    return true;
  };
  for (const e of entries) {
    if (e.kind === 'copy') test(e, 'the source', e.source, e.follow);
    else if (e.kind === 'elf') e.patterns.some((p) => test(e, 'the program', p, true));
    else if (e.kind === 'install') e.inputs.some((p) => test(e, 'the input', p, false));
  }
  return errors;
}

/** The same, for a host file read outside any entry (a FROM= pack, a jailfile module); `what` names it. */
export function hostFileError(what: string, file: string, root: string, shownRoot: string): JailError | undefined {
  const real = realHostPath(file);
  const how = againstRoot(real, root);
  if (how === undefined) return undefined;
  return jailError('source-in-root',
    `${what} ${file}${real === file ? '' : ` (${real})`} ${how} (ROOT=${shownRoot}): anything in the jail may have been planted by what runs there, so jail reads nothing from it. Move it out of the jail. Nothing was touched.`,
    { path: file });
}
