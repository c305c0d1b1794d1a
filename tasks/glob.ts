// Globs in jailfiles, with globby's semantics. globby (and fast-glob under it) costs
// ~200 ms to load, which a no-op build of a jailfile without globs must not pay: paths
// with no glob character are static without asking, and globby is loaded once, ahead of
// the synchronous expansion, only when some entry may be a pattern.

type Globby = typeof import('globby');
let globby: Globby | undefined;

/** Characters without which fast-glob never treats a pattern as dynamic. */
const MAYBE_GLOB = /[*?[\]{}()!+@]/;

export const mayBeGlob = (p: string): boolean => MAYBE_GLOB.test(p);

/** Loads globby if any of these paths may be a pattern. */
export async function prepareGlobs(paths: Iterable<string>): Promise<void> {
  if (globby) return;
  for (const p of paths) if (mayBeGlob(p)) { globby = await import('globby'); return; }
}

export function isGlob(p: string): boolean {
  if (!mayBeGlob(p)) return false;
  if (!globby) throw new Error(`bug: glob ${p} met before prepareGlobs()`);
  return globby.isDynamicPattern(p);
}

export function globSync(pattern: string, opts: import('globby').Options): string[] {
  if (!globby) throw new Error(`bug: glob ${pattern} met before prepareGlobs()`);
  return globby.globbySync(pattern, opts);
}
