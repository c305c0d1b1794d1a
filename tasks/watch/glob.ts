// Globs for the watcher. chokidar 4+ has no globs, so watch mode watches a glob's static
// base directory and decides about each path in two steps:
//
// 1. `coarse`: a small matcher written here, used while chokidar walks the base, so that
//    only paths that could match are watched at all (watching every file of
//    /usr/lib/x86_64-linux-gnu for `libnss_*.so.2` would spend thousands of inotify
//    watches). It is deliberately wider than globby: whatever it does not understand
//    (extglobs, brace ranges, POSIX classes, braces spanning a `/`) it lets through.
// 2. `expandGlob`: the final word, given by re-running globby with the very options the
//    build used (tasks/expand.ts, tasks/expand-elf.ts), so watch and build cannot disagree
//    about what a glob matches (wireit #550 is what happens when they do).

import { globbySync, isDynamicPattern } from 'globby';
import { COPY_GLOB, ELF_GLOB, globBase, globParts, splitAtSlashes } from '../glob.js';

export type GlobFlavour = 'copy' | 'elf';

/** What the build would match now. */
export function expandGlob(pattern: string, flavour: GlobFlavour): string[] {
  try {
    return globbySync(pattern, flavour === 'copy' ? COPY_GLOB : ELF_GLOB);
  } catch {
    return [];
  }
}

export { isDynamicPattern };

export { globBase };

/**
 * How a path relative to the base relates to the pattern: `full` it matches; `beneath` it
 * lies inside something that matches (a matched directory is copied as a tree); `partial`
 * it is a directory on the way to possible matches; `none` it can be ignored.
 */
export type Coarse = 'full' | 'beneath' | 'partial' | 'none';

const GLOBSTAR = Symbol('**');
type Seg = RegExp | typeof GLOBSTAR | 'any';

export interface CoarseGlob {
  readonly base: string;
  test(rel: readonly string[]): Coarse;
}

/** Compiles the part of `pattern` after its base into a per-segment matcher (wider than globby, never narrower). */
export function coarseGlob(pattern: string): CoarseGlob {
  const { base, rest } = globParts(pattern);
  const parts = splitSegments(rest);
  if (parts === null) return { base, test: () => 'full' };
  const segs: Seg[] = parts.map((p) => (p === '**' ? GLOBSTAR : segmentRegex(p) ?? 'any'));
  return { base, test: (rel) => walk(segs, 0, rel, 0) };
}

const RANK: Record<Coarse, number> = { none: 0, partial: 1, beneath: 2, full: 3 };
const best = (a: Coarse, b: Coarse): Coarse => (RANK[a] >= RANK[b] ? a : b);

function walk(segs: readonly Seg[], si: number, rel: readonly string[], ri: number): Coarse {
  if (ri === rel.length) {
    for (let k = si; k < segs.length; k++) if (segs[k] !== GLOBSTAR) return 'partial';
    return 'full';
  }
  if (si === segs.length) return 'beneath';
  const s = segs[si]!;
  if (s === GLOBSTAR) return best(walk(segs, si + 1, rel, ri), walk(segs, si, rel, ri + 1));
  if (s !== 'any' && !s.test(rel[ri]!)) return 'none';
  return walk(segs, si + 1, rel, ri + 1);
}

/** The segments of a pattern below its base; null when a group spans a `/` (then anything beneath the base may match). */
function splitSegments(rest: string): string[] | null {
  const parts = splitAtSlashes(rest);
  return parts.some((p) => p.includes('/')) ? null : parts.filter((p) => p !== '');
}

const SPECIAL = /[.*+?^${}()|[\]\\/]/g;

/** One path segment as a RegExp, or null for "could match anything" (syntax not handled here). */
export function segmentRegex(seg: string): RegExp | null {
  const src = segmentSource(seg);
  return src === null ? null : new RegExp(`^${src}$`);
}

function segmentSource(seg: string): string | null {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    const next = seg[i + 1];
    if (c === '\\') {
      if (next === undefined) return null;
      re += next.replace(SPECIAL, '\\$&');
      i++;
    } else if ((c === '*' || c === '?' || c === '+' || c === '@' || c === '!') && next === '(') {
      return null; // extglob
    } else if (c === '(' || c === ')' || c === '|') {
      return null;
    } else if (c === '*') {
      while (seg[i + 1] === '*') i++;
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = classEnd(seg, i);
      if (end < 0) { re += '\\['; continue; }
      let body = seg.slice(i + 1, end);
      if (body.includes('[:')) return null; // POSIX classes
      let neg = '';
      if (body.startsWith('!') || body.startsWith('^')) { neg = '^'; body = body.slice(1); }
      re += `[${neg}${classBody(body)}]`;
      i = end;
    } else if (c === '{') {
      const end = braceEnd(seg, i);
      if (end < 0) { re += '\\{'; continue; }
      const alts = splitTop(seg.slice(i + 1, end), ',');
      if (alts.length < 2) return null; // a range {1..9} or a literal {x}: let it through
      const parts: string[] = [];
      for (const a of alts) {
        const s = segmentSource(a);
        if (s === null) return null;
        parts.push(s);
      }
      re += `(?:${parts.join('|')})`;
      i = end;
    } else {
      re += c.replace(SPECIAL, '\\$&');
    }
  }
  return re;
}

function classEnd(s: string, open: number): number {
  let i = open + 1;
  if (s[i] === '!' || s[i] === '^') i++;
  if (s[i] === ']') i++;
  for (; i < s.length; i++) {
    if (s[i] === '\\') { i++; continue; }
    if (s[i] === ']') return i;
  }
  return -1;
}

/** A bracket expression's body for a JS character class: glob escapes become literal characters. */
function classBody(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    let c = body[i]!;
    if (c === '\\' && i + 1 < body.length) c = body[++i]!;
    out += c === '\\' || c === ']' || c === '[' || c === '^' ? `\\${c}` : c;
  }
  return out;
}

function braceEnd(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '\\') { i++; continue; }
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function splitTop(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') { cur += c + (s[i + 1] ?? ''); i++; continue; }
    if (c === '{' || c === '[') depth++;
    else if ((c === '}' || c === ']') && depth > 0) depth--;
    if (c === sep && depth === 0) { out.push(cur); cur = ''; continue; }
    cur += c;
  }
  out.push(cur);
  return out;
}
