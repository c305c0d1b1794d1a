// Reads /etc/ld.so.conf the way ldconfig's parse_conf does (comments, `include` globs
// relative to the including file, `dir=libc6` suffixes, ignored `hwcap` lines), all beneath
// a root, so the resolver can stand in for a cache that ldconfig has not written yet.

import type { RootPaths } from './root-path.js';

export interface LdConf {
  /** Library directories in ldconfig's order, duplicates (same directory) dropped. */
  dirs: string[];
  /** Configuration files that were read. */
  files: string[];
  warnings: string[];
}

const MAX_DEPTH = 16;
const MAX_FILES = 1000;

export function readLdConf(fsr: RootPaths, confPath = '/etc/ld.so.conf'): LdConf {
  const out: LdConf = { dirs: [], files: [], warnings: [] };
  const seenDirs = new Set<string>();
  const parse = (file: string, depth: number) => {
    if (depth > MAX_DEPTH) {
      out.warnings.push(`${file}: include nesting deeper than ${MAX_DEPTH}; ignored (an include loop?)`);
      return;
    }
    if (out.files.length >= MAX_FILES) {
      out.warnings.push(`more than ${MAX_FILES} ld.so.conf files; the rest were ignored`);
      return;
    }
    const text = fsr.readText(file);
    if (text === undefined) return;
    out.files.push(file);
    for (const raw of text.split('\n')) {
      const line = (raw.split('#')[0] ?? '').replace(/^\s+/, '');
      if (line === '') continue;
      if (/^include[ \t]/.test(line)) {
        for (const pat of line.slice(8).split(/[ \t]/)) {
          if (pat === '') continue;
          const abs = pat.startsWith('/') ? pat : dirnameOf(file) + '/' + pat;
          for (const f of globInRoot(fsr, abs)) parse(f, depth + 1);
        }
        continue;
      }
      if (/^hwcap[ \t]/i.test(line)) continue;
      let dir = line;
      const eq = dir.indexOf('=');
      if (eq >= 0) dir = dir.slice(0, eq);
      dir = dir.replace(/\s+$/, '').replace(/\/+$/, '');
      if (dir === '') continue;
      // ldconfig -r chroots and chdirs to '/', so a relative entry is relative to the root.
      const look = fsr.lookup(dir.startsWith('/') ? dir : '/' + dir);
      if (look.kind !== 'found' || !look.st.isDirectory()) continue;
      const id = `${look.st.dev}:${look.st.ino}`;
      if (seenDirs.has(id)) continue;
      seenDirs.add(id);
      out.dirs.push(dir);
    }
  };
  parse(confPath, 0);
  return out;
}

function dirnameOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '' : p.slice(0, i);
}

const META = /[*?[]/;

/** Translate one glob component (*, ?, [...]) into a RegExp; a leading '.' must be literal. */
export function globComponentRegExp(pat: string): RegExp {
  let re = '';
  for (let i = 0; i < pat.length; i++) {
    const c = pat[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = pat.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = pat.slice(i + 1, close);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = close;
    } else if (c === '\\' && i + 1 < pat.length) {
      re += (pat[++i] as string).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp('^' + re + '$');
}

/** glob(3) over a root: sorted matches (C collation), hidden names only when the pattern says '.'. */
export function globInRoot(fsr: RootPaths, pattern: string): string[] {
  const parts = pattern.split('/').filter((p) => p !== '');
  let cands = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const base of cands) {
      if (!META.test(part)) {
        next.push(base + '/' + part);
        continue;
      }
      const re = globComponentRegExp(part);
      const names = fsr.readdir(base === '' ? '/' : base)
        .filter((n) => (!n.startsWith('.') || part.startsWith('.')) && re.test(n))
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const n of names) next.push(base + '/' + n);
    }
    cands = next;
    if (cands.length > MAX_FILES) cands = cands.slice(0, MAX_FILES);
  }
  return cands.filter((c) => fsr.lookup(c).kind === 'found');
}
