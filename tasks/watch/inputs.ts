// What watch mode watches: every input of the jail graph, reduced to directories to hand
// to chokidar and a predicate that says, for any path chokidar meets, whether it matters.
//
// Inputs come in three shapes (InputSpec): exact paths (the jailfile and its modules,
// every host file a file target copies, the symlinks of elf() closures, dpkg's records),
// trees (a copy() of a directory: anything beneath counts) and globs (copy() and elf()
// patterns: the base directory is watched, the pattern decides). Paths are made
// canonical (the real path of their directory, plus their own name, so a final symlink
// stays itself) because chokidar, told not to follow symlinks, reports real paths only.
//
// Directories are watched, never single files: a file replaced by rename (editors,
// dpkg's `x.dpkg-new` -> `x`) loses a single-file watch, a watched directory does not.
// The watched roots are the parents of the inputs (the nearest that exists, so a source
// that does not exist yet is seen when it appears), reduced to the fewest that cover the
// rest; the predicate keeps chokidar from descending anywhere else or watching any
// other file, which is what keeps /usr/lib/x86_64-linux-gnu from costing thousands of
// inotify watches.

import fs from 'node:fs';
import path from 'node:path';
import type { Analysis } from '../make.js';
import { RootPaths } from '../elf/index.js';
import { coarseGlob, expandGlob, isDynamicPattern, type CoarseGlob, type GlobFlavour } from './glob.js';

/** The inputs as the jailfile names them (before canonical paths): what a build depended on. */
export interface InputSpec {
  exact: string[];
  trees: string[];
  globs: { pattern: string; flavour: GlobFlavour }[];
}

/** How much an event's path matters: `maybe` is a path in a glob's base that the glob may match (globby decides later). */
export type Relevance = 'yes' | 'maybe' | 'no';

const LD_INPUTS = ['/etc/ld.so.cache', '/etc/ld.so.conf'];
const DPKG = '/var/lib/dpkg';
const normal = (p: string): string => (p.length > 1 ? path.posix.normalize(p).replace(/\/+$/, '') : p);

/** The inputs of an analysed jailfile. Reads the host a little (symlink chains of elf() programs). */
export function specOf(a: Analysis): InputSpec {
  const exact = new Set<string>([a.file, ...a.modules]);
  const trees = new Set<string>();
  const globs = new Map<string, GlobFlavour>();
  let loader = false;
  const host = new RootPaths('/');
  for (const e of a.entries) {
    switch (e.kind) {
      case 'copy':
        if (isDynamicPattern(e.source)) globs.set(e.source, 'copy');
        else {
          const src = normal(e.source);
          trees.add(src);
          if (e.follow) {
            // The build copies what the link leads to: watch that too (and each link on the way).
            const chain = host.trace(src);
            if (chain.real) { trees.add(chain.real); for (const l of chain.links) exact.add(l.path); }
          }
        }
        break;
      case 'elf':
        loader = true;
        for (const p of e.patterns) {
          if (isDynamicPattern(p)) { globs.set(p, 'elf'); continue; }
          exact.add(normal(p));
          const chain = host.trace(p);
          if (chain.real) { exact.add(chain.real); for (const l of chain.links) exact.add(l.path); }
        }
        break;
      case 'package':
        loader = true;
        exact.add(`${DPKG}/status`);
        for (const n of e.names) {
          const bare = n.split(':')[0]!;
          exact.add(`${DPKG}/info/${bare}.list`);
          globs.set(`${DPKG}/info/${bare}:*.list`, 'copy');
        }
        break;
      default:
        break;
    }
  }
  if (loader) { for (const p of LD_INPUTS) exact.add(p); trees.add('/etc/ld.so.conf.d'); }
  for (const t of a.targets) {
    if (t.kind === 'file') exact.add(t.source);
    // Closures are placed with the host's symlink chains (libz.so.1 -> libz.so.1.2.13):
    // an upgrade that moves the link is an input change. A closure's jail path is its host path.
    else if ((t.kind === 'symlink' || (t.kind === 'dir' && !t.implicit)) && (t.label.startsWith('elf(') || t.label.startsWith('debianPackage('))) exact.add(t.path);
  }
  return { exact: [...exact], trees: [...trees], globs: [...globs].map(([pattern, flavour]) => ({ pattern, flavour })) };
}

/** Everything in either spec: while a jailfile is broken, keep watching what the last good one needed. */
export function mergeSpecs(a: InputSpec, b: InputSpec): InputSpec {
  const globs = new Map<string, GlobFlavour>();
  for (const g of [...a.globs, ...b.globs]) globs.set(g.pattern, g.flavour);
  return {
    exact: [...new Set([...a.exact, ...b.exact])],
    trees: [...new Set([...a.trees, ...b.trees])],
    globs: [...globs].map(([pattern, flavour]) => ({ pattern, flavour })),
  };
}

interface GlobWatch {
  readonly pattern: string;
  readonly flavour: GlobFlavour;
  /** The static base as written, and its canonical form (what events name). */
  readonly base: string;
  readonly realBase: string;
  readonly coarse: CoarseGlob;
  /** What the glob matched when the inputs were taken, as written. */
  readonly matches: Set<string>;
}

/** Canonical paths, memoised per directory: realpath of the directory part, the name kept. */
class Canon {
  readonly #dirs = new Map<string, string>();

  /** `p` with its directory resolved through symlinks; missing parts are kept as written. */
  of(p: string): string {
    if (p === '/') return '/';
    const dir = path.posix.dirname(p);
    return path.posix.join(this.dir(dir), path.posix.basename(p));
  }

  dir(d: string): string {
    const have = this.#dirs.get(d);
    if (have !== undefined) return have;
    let out: string;
    try {
      out = fs.realpathSync(d);
    } catch {
      out = d === '/' ? '/' : path.posix.join(this.dir(path.posix.dirname(d)), path.posix.basename(d));
    }
    this.#dirs.set(d, out);
    return out;
  }
}

/** The nearest directory at or above `d` that exists (what chokidar can watch now). */
function existingDir(d: string): string {
  for (let p = d; ; p = path.posix.dirname(p)) {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory() || p === '/') return p;
  }
}

function* upFrom(p: string): Generator<string> {
  for (let q = p; ; q = path.posix.dirname(q)) {
    yield q;
    if (q === '/') return;
  }
}

const isUnder = (p: string, dir: string): boolean => p === dir || p.startsWith(dir === '/' ? '/' : dir + '/');

/** The compiled inputs: roots to watch, and the predicate over paths. */
export class WatchInputs {
  readonly exact = new Set<string>();
  readonly trees = new Set<string>();
  readonly ancestors = new Set<string>();
  readonly globs: GlobWatch[] = [];
  readonly roots: string[];
  /** Changes when the watcher must be made anew (new roots, a root replaced, other inputs). */
  readonly signature: string;

  constructor(readonly spec: InputSpec, private readonly excluded: readonly string[]) {
    const canon = new Canon();
    const wanted: string[] = [];
    for (const t of spec.trees) {
      const c = canon.of(t);
      if (this.#excluded(c)) continue;
      this.trees.add(c);
      wanted.push(path.posix.dirname(c));
    }
    for (const g of spec.globs) {
      const coarse = coarseGlob(g.pattern);
      const realBase = canon.dir(coarse.base);
      if (this.#excluded(realBase)) continue;
      this.globs.push({ pattern: g.pattern, flavour: g.flavour, base: coarse.base, realBase, coarse, matches: new Set(expandGlob(g.pattern, g.flavour)) });
      wanted.push(realBase === '/' ? '/' : path.posix.dirname(realBase));
    }
    for (const e of spec.exact) {
      const c = canon.of(e);
      if (this.#excluded(c) || this.#inTree(c) || this.#globCovers(c)) continue;
      this.exact.add(c);
      wanted.push(path.posix.dirname(c));
    }
    for (const p of [...this.exact, ...this.trees, ...this.globs.map((g) => g.realBase)]) {
      for (const q of upFrom(path.posix.dirname(p))) this.ancestors.add(q);
    }
    const roots = [...new Set(wanted.map(existingDir))].sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
    this.roots = [];
    for (const r of roots) if (!this.roots.some((k) => isUnder(r, k))) this.roots.push(r);
    const ino = (p: string) => { const st = fs.statSync(p, { bigint: true, throwIfNoEntry: false }); return st ? `${st.dev}:${st.ino}` : '-'; };
    this.signature = JSON.stringify([
      this.roots.map((r) => `${r}@${ino(r)}`), [...this.exact].sort(), [...this.trees].sort(), this.globs.map((g) => g.pattern).sort(),
    ]);
  }

  #excluded(p: string): boolean {
    return this.excluded.some((x) => isUnder(p, x));
  }

  #inTree(p: string): boolean {
    for (const q of upFrom(p)) if (this.trees.has(q)) return true;
    return false;
  }

  #globCovers(p: string): boolean {
    return this.globs.some((g) => p !== g.realBase && isUnder(p, g.realBase) && g.coarse.test(this.#rel(g, p)) !== 'none');
  }

  #rel(g: GlobWatch, p: string): string[] {
    return p.slice(g.realBase === '/' ? 1 : g.realBase.length + 1).split('/');
  }

  /**
   * How much a change at `p` (canonical, as chokidar reports it) matters. `attrib` is a
   * directory's mode or owner: that of an ancestor or a glob's base is copied nowhere.
   */
  classify(p: string, attrib = false): Relevance {
    if (this.#excluded(p)) return 'no';
    if (this.exact.has(p) || (!attrib && this.ancestors.has(p)) || this.#inTree(p)) return 'yes';
    let maybe = false;
    for (const g of this.globs) {
      if (p === g.realBase) { if (attrib) continue; return 'yes'; }
      if (isUnder(p, g.realBase) && g.coarse.test(this.#rel(g, p)) !== 'none') maybe = true;
    }
    return maybe ? 'maybe' : 'no';
  }

  /** chokidar's `ignored`: skip what cannot matter, and what is not a file, directory or symlink (sockets, FIFOs, devices). */
  ignored(p: string, stats?: fs.Stats): boolean {
    if (stats && !stats.isFile() && !stats.isDirectory() && !stats.isSymbolicLink()) return true;
    return this.classify(p) === 'no';
  }

  /**
   * Of paths classified `maybe`, does any matter? Asks globby, with the build's options,
   * what each glob matches now, and compares with what it matched before: a path that
   * matches now or matched then (or lies beneath such a match) is a change of the jail.
   */
  confirm(paths: Iterable<string>): string | undefined {
    const byGlob = new Map<GlobWatch, string[]>();
    for (const p of paths) {
      for (const g of this.globs) {
        if (isUnder(p, g.realBase) && p !== g.realBase) {
          const list = byGlob.get(g) ?? [];
          list.push(p);
          byGlob.set(g, list);
        }
      }
    }
    for (const [g, list] of byGlob) {
      const now = new Set(expandGlob(g.pattern, g.flavour));
      for (const p of list) {
        const asWritten = g.base + p.slice(g.realBase.length);
        for (const q of upFrom(asWritten)) {
          if (g.matches.has(q) || now.has(q)) return p;
          if (q === g.base || q === '/') break;
        }
      }
    }
    return undefined;
  }

  /** Numbers for the "watching ..." line. */
  get size(): number {
    return this.exact.size + this.trees.size + this.globs.length;
  }
}

/**
 * `--guard`: what in ROOT is the tool's. The parent of ROOT is watched (chokidar stops
 * reporting when a watched root is deleted and made again), and beneath ROOT only the
 * declared targets and the directories that lead to them; files a service made are not
 * ours to repair, and dev/ and proc/ (device nodes, a mounted procfs) are never walked.
 */
export class GuardInputs {
  readonly paths = new Set<string>();
  readonly parent: string;

  constructor(readonly root: string, targets: readonly { path: string }[]) {
    this.parent = path.posix.dirname(root);
    for (const t of targets) for (const q of upFrom(t.path)) { if (q === '/') break; this.paths.add(q); }
  }

  /** `attrib`: a directory's mode or owner changed; ROOT's own are not the jailfile's to set. */
  classify(p: string, attrib = false): Relevance {
    if (p === this.root) return attrib ? 'no' : 'yes';
    if (!p.startsWith(this.root + '/')) return 'no';
    const jp = p.slice(this.root.length);
    if (isUnder(jp, '/dev') || isUnder(jp, '/proc')) return 'no';
    return this.paths.has(jp) ? 'yes' : 'no';
  }

  ignored(p: string, stats?: fs.Stats): boolean {
    if (p === this.parent) return false;
    if (stats && !stats.isFile() && !stats.isDirectory() && !stats.isSymbolicLink()) return true;
    return this.classify(p) === 'no';
  }
}
