// Globs in jailfiles, with globby's semantics. globby (and fast-glob under it) costs
// ~200 ms to load, which a no-op build of a jailfile without globs must not pay: paths
// with no glob character are static without asking, and globby is loaded once, ahead of
// the synchronous expansion, only when some entry may be a pattern.

import fs from 'node:fs';
import { hostBadName } from './byte-names.js';

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

/**
 * The one path a pattern names when each of its glob characters is escaped (`/srv/a\[1\]/f`
 * names `/srv/a[1]/f`), else undefined: it is copied as a plain path is, to `to` itself.
 */
export function escapedPath(p: string): string | undefined {
  if (!p.includes('\\') || isGlob(p.replace(/\\./g, ''))) return undefined;
  return p.replace(/\\(.)/g, '$1');
}

export function globSync(pattern: string, opts: import('globby').Options): string[] {
  if (!globby) throw new Error(`bug: glob ${pattern} met before prepareGlobs()`);
  return globby.globbySync(pattern, opts);
}

/**
 * globSync, and the host names it cannot give as paths: names that are not UTF-8 (the glob
 * reads them as text, so a match names no file and a directory on the way cannot be
 * searched, passed over in silence). Those come back apart, escaped (hostBadName), for the
 * caller to refuse; a directory is caught as the glob fails to list it, so nothing is
 * listed twice.
 */
export function globNaming(pattern: string, opts: import('globby').Options): { matches: string[]; badNames: string[] } {
  const bad = new Set<string>();
  const readdirSync = ((dir: fs.PathLike, o?: unknown) => {
    try {
      return fs.readdirSync(dir, o as never);
    } catch (err) {
      const b = (err as NodeJS.ErrnoException).code === 'ENOENT' && typeof dir === 'string' ? hostBadName(dir) : undefined;
      if (b !== undefined) bad.add(b);
      throw err;
    }
  }) as typeof fs.readdirSync;
  const matches: string[] = [];
  for (const m of globSync(pattern, { ...opts, fs: { readdirSync } })) {
    const b = m.includes('\uFFFD') && !fs.lstatSync(m, { throwIfNoEntry: false }) ? hostBadName(m) : undefined;
    if (b === undefined) matches.push(m);
    else bad.add(b);
  }
  return { matches, badNames: [...bad].sort() };
}

/** How copy() globs match: files, directories and links, not following links. Watch mode matches with the same. */
export const COPY_GLOB = { onlyFiles: false, dot: true, followSymbolicLinks: false, absolute: true, expandDirectories: false, unique: true } as const;
/** How elf() globs match: files only. */
export const ELF_GLOB = { onlyFiles: true, dot: true, followSymbolicLinks: false, absolute: true, unique: true } as const;

/**
 * The static directory a glob starts from: `/usr/share/doc/bash/*` -> `/usr/share/doc/bash`.
 * A group that spans a `/` (`/srv/{a/b,c}/*`) counts as dynamic as a whole, so the base is
 * a directory every match lies beneath.
 */
export function globBase(pattern: string): string {
  return globParts(pattern).base;
}

/** globBase(), and the rest of the pattern after it. */
export function globParts(pattern: string): { base: string; rest: string } {
  const parts = splitAtSlashes(pattern);
  // A part whose glob characters are all escaped (`a\[1\]`) is static: the base holds it unescaped.
  const i = parts.findIndex((c) => c !== '' && (mayBeGlob(c) && (!globby || globby.isDynamicPattern(c.replace(/\\./g, '')) || c.includes('/'))));
  const n = i < 0 ? parts.length - 1 : i;
  return { base: parts.slice(0, n).join('/').replace(/\\(.)/g, '$1') || '/', rest: parts.slice(n).join('/') };
}

/** Splits at `/` outside brackets, braces and parentheses (a group keeps its slashes). */
export function splitAtSlashes(p: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\') { cur += c + (p[i + 1] ?? ''); i++; continue; }
    if (c === '{' || c === '(' || c === '[') depth++;
    else if ((c === '}' || c === ')' || c === ']') && depth > 0) depth--;
    if (c === '/' && depth === 0) { out.push(cur); cur = ''; continue; }
    cur += c;
  }
  out.push(cur);
  return out;
}
