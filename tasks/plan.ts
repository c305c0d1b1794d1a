// Targets + the last build's record + what ROOT holds now -> the plan: a list of actions,
// each with its reasons. Writes nothing: -n, -q, --explain, --json and check all read
// the same plan, and apply() is its only executor.
//
// Freshness is a stat, not a hash: a target is fresh when its declaration matches the
// record, its source's stamp matches the stamp recorded when it was copied, and ROOT
// still holds the inode, size and times recorded right after writing. Bytes are compared
// only when a stamp moved (a touched source, an output someone opened for writing).

import { printable } from './printable.js';
import fs from 'node:fs';
import { isRecordPath, type Manifest, type Rec } from './manifest.js';
import { comparePaths, octal, parentOf, stampHash, stampSize, type Target, type TargetKind } from './targets.js';
import { sameBytes, sameBytesAs, sameHash } from './compare.js';
import { devNumbers, lstatOf, type Stat } from './stat.js';
import { tooLongInRoot } from './path-limits.js';
import { mountsBeneath, TEMP_NAME } from './rootfs.js';

export { devNumbers } from './stat.js';

export type Op = 'create' | 'update' | 'remove';

export interface Action {
  readonly op: Op;
  readonly path: string;
  readonly kind: TargetKind;
  /** Why, for people: `source changed: content`, `mode 0600 != declared 0644`, `no longer declared`. */
  readonly reasons: string[];
  readonly target?: Target;
  /** A removal's: what the plan's lstat found and judged jail's. The executor removes that inode, not whatever has its name by then. */
  readonly seen?: Stat;
}

export interface Plan {
  readonly root: string;
  /** Removals deepest first, then creations and updates parents first. */
  readonly actions: Action[];
  readonly upToDate: number;
  /** Records to store without writing into ROOT (a touched source whose bytes did not change). */
  readonly refresh: Map<string, Rec>;
  /** Records to forget without writing into ROOT (a pruned output that is already gone). */
  readonly forget: string[];
  /**
   * No-longer-declared directories left in place, deepest first: they hold what this plan
   * does not remove (a service's files), and rmdir would refuse them. A warning, not a
   * change. Their records stay: jail made them, so the first build that finds one empty
   * removes it; forgotten, they would stay in the jail for good with nothing to say so.
   */
  readonly kept: string[];
  /**
   * No-longer-declared paths where something jail did not write stands now (a service
   * replaced the file, a directory became a file): left alone with a warning, as `clean`
   * and pruning remove only what jail put there. Their records are forgotten (in `forget`).
   */
  readonly left: { path: string; why: string }[];
  /**
   * Files whose ctime this plan's own link(2) and unlink(2) move (the file a hard link
   * names): their stamps are taken again once the links are made, or the next build would
   * take the build's own work for tampering.
   */
  readonly restamp: string[];
  /** What lstat said of each target's path that was looked at and is not being changed (the cheap checks reuse it). */
  readonly observed: Map<string, Stat>;
  /**
   * A service's files of a pack (`data`) that cannot be restored without writing through
   * what the service put in their way (a directory of theirs that is a link or a file now,
   * the first name of a hard link that is no longer a file): where, why, and how many paths.
   * Never replaced, as the service's own files never are: a warning, not a change.
   */
  readonly unrestored: { path: string; why: string; count: number }[];
  /** The last build was interrupted: the directories to sweep of its temporary files. */
  readonly sweep: string[];
}

export interface PlanOptions {
  /** -B: every target is rebuilt. */
  always?: boolean;
  /** `rebuild`: trust no stamp; every file's bytes are compared (a file that survived and matches is kept). */
  verify?: boolean;
  /** Only these targets (and their parent directories); nothing is pruned. */
  only?: (t: Target) => boolean;
  /** `clean`: remove everything recorded, build nothing. */
  clean?: boolean;
  /**
   * The targets are not the whole jailfile (an entry failed to expand, and -k builds the
   * rest): nothing is pruned or forgotten. A record does not say which entry made it, so
   * what the failed entry built cannot be told from what was dropped from the jailfile;
   * both wait for a build that expands every entry.
   */
  partial?: boolean;
}

export function recordOf(t: Target, outStamp?: string): Rec {
  const r: Rec = { k: t.kind, m: t.mode, u: t.uid, g: t.gid };
  switch (t.kind) {
    case 'file':
      r.src = t.source; r.ss = t.sourceStamp;
      if (t.linkTo) r.l = t.linkTo;
      else r.o = outStamp;
      break;
    case 'text': r.h = t.contentHash; r.o = outStamp; break;
    case 'symlink': r.t = t.target; break;
    case 'device': r.d = `${t.type}:${t.major}:${t.minor}`; break;
    case 'dir': break;
  }
  return r;
}

export function typeName(st: Stat): string {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'regular file';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'special file';
}

/** `rec`: the last build's record: a mode taken from the source that moved while the output kept the one built is the source's change. */
function attrReasons(t: Target, st: Stat, out: string[], rec?: Rec): string[] {
  const mode = st.mode & 0o7777;
  if (t.kind !== 'symlink' && mode !== t.mode) {
    out.push(t.sourceMode && rec?.k === t.kind && rec.m === mode ? `source changed: mode ${octal(mode)} -> ${octal(t.mode)}` : `mode ${octal(mode)} != declared ${octal(t.mode)}`);
  }
  if (st.uid !== t.uid || st.gid !== t.gid) out.push(`owner ${st.uid}:${st.gid} != declared ${t.uid}:${t.gid}`);
  return out;
}

/** No mode or owner reasons, shared: a file's are judged apart from its bytes, without an array per file on a no-op build. */
const NO_REASONS: readonly string[] = Object.freeze([]);

/** Does the record say what recordOf(t) would, for a kind judged by stat alone? Compared without building the record. */
function recordedAs(rec: Rec, t: Target & { kind: 'dir' | 'symlink' | 'device' }): boolean {
  return rec.k === t.kind && rec.m === t.mode && rec.u === t.uid && rec.g === t.gid && rec.src === undefined && rec.ss === undefined &&
    rec.h === undefined && rec.o === undefined && rec.l === undefined &&
    rec.t === (t.kind === 'symlink' ? t.target : undefined) && rec.d === (t.kind === 'device' ? `${t.type}:${t.major}:${t.minor}` : undefined);
}

interface Judgement { readonly reasons: string[]; readonly refresh?: Rec }

/** The judgement of most paths on most builds, shared: never changed (plan() makes a new one to add a reason). */
const FRESH: Judgement = Object.freeze({ reasons: Object.freeze([]) as unknown as string[] });

function wrongType(reasons: string[], st: Stat, want: string): Judgement {
  reasons.push(`output is a ${typeName(st)}, declared ${want}`);
  return { reasons };
}

/** Why the path in ROOT is not what `t` declares; no reasons means fresh. */
function judge(root: string, t: Target, st: Stat, rec: Rec | undefined, verify = false, interrupted = false): Judgement {
  const reasons: string[] = [];
  switch (t.kind) {
    case 'dir':
      if (!st.isDirectory()) return wrongType(reasons, st, 'a directory');
      attrReasons(t, st, reasons, rec);
      return reasons.length ? { reasons } : FRESH;
    case 'symlink': {
      if (!st.isSymbolicLink()) return wrongType(reasons, st, `a symlink to ${t.target}`);
      const now = linkTarget(root + t.path);
      // Gone or swapped since the lstat (something in the jail racing the build): rewritten.
      if (now === undefined) reasons.push('output changed while it was being examined');
      else if (now !== t.target) reasons.push(`link points to ${printable(now)}, declared ${t.target}`);
      attrReasons(t, st, reasons);
      return reasons.length ? { reasons } : FRESH;
    }
    case 'device': {
      const isType = t.type === 'c' ? st.isCharacterDevice() : st.isBlockDevice();
      if (!isType) return wrongType(reasons, st, `a ${t.type === 'c' ? 'character' : 'block'} device`);
      const { major, minor } = devNumbers(st.rdev);
      if (major !== t.major || minor !== t.minor) reasons.push(`device ${major}:${minor} != declared ${t.major}:${t.minor}`);
      attrReasons(t, st, reasons);
      return { reasons };
    }
    case 'file':
    case 'text': {
      if (!st.isFile()) return wrongType(reasons, st, 'a regular file');
      const names = t.kind === 'file' ? t.nlink ?? 1 : 1;
      if (st.nlink > names) reasons.push(`output is hard-linked (${st.nlink} names share its inode${names > 1 ? `, ${names} declared` : ''})`);
      if (t.kind === 'file' && t.linkTo) {
        // A declared hard link is right when it is the same inode as the file it names.
        const other = lstatOf(root + t.linkTo);
        if (!other || other.ino !== st.ino || other.dev !== st.dev) reasons.push(`not a hard link of ${t.linkTo}`);
        return { reasons, refresh: reasons.length || rec?.l === t.linkTo ? undefined : recordOf(t) };
      }
      // Every reason is given (--explain): the bytes are judged even when the mode or owner is already wrong.
      const attrs = (st.mode & 0o7777) !== t.mode || st.uid !== t.uid || st.gid !== t.gid ? attrReasons(t, st, [], rec) : NO_REASONS;
      const outStamp = st.stamp;
      if (!rec || rec.k !== t.kind) {
        // Something is there that no build recorded (an interrupted build, a hand-made tree): keep it if it is right.
        if (!matches(root, t, st)) reasons.push('replaces a file jail did not write');
        else if (!reasons.length && !attrs.length) return { reasons, refresh: recordOf(t, outStamp) };
        reasons.push(...attrs);
        return { reasons };
      }
      // A stamp recorded as racy (tasks/stat.ts) is never taken as proof: the bytes decide.
      const declChanged = t.kind === 'text' ? rec.h !== t.contentHash : rec.src !== t.source || rec.ss !== t.sourceStamp || rec.ss.endsWith(':racy');
      const held = rec.o === outStamp;
      if (held && !declChanged && !verify) {
        if (attrs.length) reasons.push(...attrs);
        return reasons.length ? { reasons } : FRESH;
      }
      // A stamp moved: the bytes decide. The output is the old source as long as its own stamp held.
      if (!matches(root, t, st)) {
        if (!declChanged) reasons.push(held ? 'output content differs from what was built (found by verifying)' : 'output edited since the last build');
        else {
          reasons.push(t.kind === 'text' ? 'content changed' : rec.src !== t.source ? `source is now ${t.source} (was ${rec.src})` : 'source changed: content');
          if (!held && bytesMoved(rec.o, outStamp)) reasons.push('output edited since the last build');
        }
      } else if (!held && !reasons.length && !attrs.length && !(interrupted && bytesMoved(rec.o, outStamp))) {
        // After a build killed before it saved its record, a new inode with the right bytes
        // is that build's own copy (jail writes a new inode and renames it in): recorded,
        // not rewritten. An inode kept with only its ctime moved is never jail's doing.
        // The right bytes, but the inode was touched after the build wrote and stamped it:
        // its ctime moved, and nothing a build can read says why (a file capability or
        // another xattr, a mode or owner changed and put back). A fresh copy has none of it.
        reasons.push('output metadata changed since the last build (its ctime moved: a capability or other xattr, a mode or owner put back, a link)');
      }
      reasons.push(...attrs);
      if (reasons.length) return { reasons };
      // Here the output's stamp held (the declaration moved without its bytes: a touched
      // source; or `rebuild` found them right), or a killed build wrote it (its new stamp is recorded).
      return declChanged || !held ? { reasons, refresh: recordOf(t, outStamp) } : { reasons };
    }
  }
}

function linkTarget(p: string): string | undefined {
  try { return fs.readlinkSync(p); } catch { return undefined; }
}

/**
 * Why what stands at a recorded path that is no longer declared is not what jail made
 * there, or undefined when it is: the same kind, and for a file the same inode with the
 * bytes it wrote (a mode or owner changed since does not disown it).
 */
function notOurs(root: string, p: string, rec: Rec, st: Stat, interrupted: boolean): string | undefined {
  const was = (what: string) => `it is a ${typeName(st)} now, where jail made ${what}`;
  switch (rec.k) {
    case 'dir': return st.isDirectory() ? undefined : was('a directory');
    case 'symlink': {
      if (!st.isSymbolicLink()) return was('a symlink');
      const now = linkTarget(root + p);
      return now === rec.t ? undefined : `it points to ${now === undefined ? '(unreadable)' : printable(now)}, where jail made a link to ${rec.t}`;
    }
    case 'device': {
      if (!st.isCharacterDevice() && !st.isBlockDevice()) return was('a device');
      const { major, minor } = devNumbers(st.rdev);
      return rec.d === `${st.isCharacterDevice() ? 'c' : 'b'}:${major}:${minor}` ? undefined : `it is device ${major}:${minor} now, where jail made ${rec.d}`;
    }
    case 'file':
    case 'text':
      if (!st.isFile()) return was('a regular file');
      if (rec.o === undefined || !bytesMoved(rec.o, st.stamp)) return undefined;
      // A build killed before it saved its record leaves its own copies with stamps no record
      // holds: one holding what jail would write there now (the recorded source's bytes, or
      // the recorded text) is taken as jail's. Bytes are read only after such a build, and
      // only for a path whose stamp moved.
      if (interrupted && (rec.h !== undefined ? sameHash(rec.h, st.size, root + p, st) : rec.src !== undefined && stampHash(rec.ss ?? '') === undefined && sameBytes(rec.src, root + p, st))) return undefined;
      return 'it was replaced or edited since jail wrote it';
  }
}

/** Did the output's bytes (inode, size or mtime) move, not only its ctime? A stamp ends with the ctime (stampOf). */
function bytesMoved(recorded: string | undefined, now: string): boolean {
  return recorded === undefined || recorded.slice(0, recorded.lastIndexOf(':')) !== now.slice(0, now.lastIndexOf(':'));
}

/** Does the file in ROOT hold the declared bytes? */
function matches(root: string, t: Target & { kind: 'file' | 'text' }, st: Stat): boolean {
  if (t.kind === 'text') return sameBytesAs(t.content, root + t.path, st);
  // A pack's file is known by its hash: the pack is not read again to judge it.
  const sha256 = stampHash(t.sourceStamp);
  return sha256 ? sameHash(sha256, stampSize(t.sourceStamp), root + t.path, st) : sameBytes(t.source, root + t.path, st);
}

export function plan(root: string, targets: readonly Target[], manifest: Manifest, opts: PlanOptions = {}): Plan {
  const creates: Action[] = [];
  const refresh = new Map<string, Rec>();
  const observed = new Map<string, Stat>();
  let upToDate = 0;
  /** Directories that are not real directories in ROOT now, with why: what lies beneath them is built without looking. */
  const replaced = new Map<string, string>();
  /** The service's directories that are something else in ROOT now: its files beneath them are not restored. */
  const shadowed = new Map<string, string>();
  const unrestored = new Map<string, { path: string; why: string; count: number }>();
  const skip = (at: string, why: string) => {
    const u = unrestored.get(at) ?? { path: at, why, count: 0 };
    u.count++;
    unrestored.set(at, u);
  };
  /** The shadowed directory at or above `p`, if any. */
  const shadowOf = (p: string): string | undefined => {
    for (let q = p; q !== '/'; q = parentOf(q)) if (shadowed.has(q)) return q;
    return undefined;
  };

  let selected = opts.clean ? [] : targets;
  if (opts.only) {
    const want = new Set<string>();
    for (const t of targets) {
      if (!opts.only(t)) continue;
      want.add(t.path);
      for (let p = parentOf(t.path); p !== '/'; p = parentOf(p)) want.add(p);
    }
    selected = targets.filter((t) => want.has(t.path));
  }

  /** Selected targets the record knows: when that is every record, nothing is left to prune. */
  let matched = 0;
  for (const t of selected) {
    const rec = manifest.records[t.path];
    if (rec) matched++;
    if (shadowed.size && t.data) {
      const at = shadowOf(parentOf(t.path));
      if (at !== undefined) { skip(at, shadowed.get(at)!); continue; }
    }
    const parentWhy = replaced.size ? replaced.get(parentOf(t.path)) : undefined;
    if (parentWhy !== undefined) {
      if (t.kind === 'dir') replaced.set(t.path, parentWhy);
      creates.push({ op: 'create', path: t.path, kind: t.kind, reasons: [parentWhy], target: t });
      continue;
    }
    const st = lstatOf(root + t.path);
    if (!st && t.data && t.kind === 'file' && t.linkTo) {
      // Another name of a service's file that is no longer one (or lies beneath one of its directories that is not one).
      const at = shadowed.size ? shadowOf(t.linkTo) : undefined;
      const first = at === undefined ? lstatOf(root + t.linkTo) : undefined;
      if (at !== undefined) { skip(at, shadowed.get(at)!); continue; }
      if (first && !first.isFile()) { skip(t.linkTo, `a ${typeName(first)} where the pack has the file that ${printable(t.path)} is another name of`); continue; }
    }
    if (!st) {
      const why = rec ? 'output missing (deleted since the last build)' : 'output missing';
      if (t.kind === 'dir') replaced.set(t.path, why);
      creates.push({ op: 'create', path: t.path, kind: t.kind, reasons: [why], target: t });
      continue;
    }
    if (t.data) {
      // The service's file is there: it is not ours to judge. A directory of its own it made something else keeps the pack's files beneath it out.
      if (t.kind === 'dir' && !st.isDirectory()) shadowed.set(t.path, `a ${typeName(st)} where the pack has a directory`);
      upToDate++;
      observed.set(t.path, st);
      continue;
    }
    let j = judge(root, t, st, rec, opts.verify, !manifest.complete);
    if (opts.always && j.reasons.length === 0) j = { reasons: ['-B: rebuilding everything'] };
    if (j.reasons.length) {
      if (t.kind === 'dir' && !st.isDirectory()) replaced.set(t.path, `parent ${t.path} is being replaced (it was a ${typeName(st)})`);
      creates.push({ op: 'update', path: t.path, kind: t.kind, reasons: j.reasons, target: t });
      continue;
    }
    upToDate++;
    observed.set(t.path, st);
    if (j.refresh) refresh.set(t.path, j.refresh);
    else if (!rec) refresh.set(t.path, recordOf(t));
    else if ((t.kind === 'dir' || t.kind === 'symlink' || t.kind === 'device') && !recordedAs(rec, t)) {
      // Stat-judged kinds need no output stamp; record them so pruning knows they are ours.
      refresh.set(t.path, recordOf(t));
    }
  }

  // A file rewritten gets a new inode: its declared hard links must be made again after it.
  const rewritten = new Set(creates.filter((a) => a.target?.kind === 'file').map((a) => a.path));
  if (rewritten.size) for (const t of selected) {
    if (t.kind !== 'file' || !t.linkTo || !rewritten.has(t.linkTo) || rewritten.has(t.path)) continue;
    creates.push({ op: 'update', path: t.path, kind: t.kind, reasons: [`${t.linkTo} is rewritten; its hard link is made again`], target: t });
    upToDate--;
    observed.delete(t.path);
  }

  let removes: Action[] = [];
  const forget: string[] = [];
  const kept: string[] = [];
  const left: { path: string; why: string }[] = [];
  const recorded = opts.only || opts.partial ? [] : Object.keys(manifest.records);
  if (matched < recorded.length) {
    const declared = new Set(selected.map((t) => t.path));
    const dirs = new Set<string>();
    for (const p of recorded) {
      if (declared.has(p)) continue;
      const rec = manifest.records[p]!;
      // An older build's, as analyze() refuses such a target now: lstat would fail with ENAMETOOLONG.
      const long = tooLongInRoot(root, p);
      if (long !== undefined) { forget.push(p); left.push({ path: p, why: `${long}, so jail cannot look at it` }); continue; }
      const st = isRecordPath(p) ? lstatOf(root + p) : undefined;
      if (!st) { forget.push(p); continue; }
      const why = notOurs(root, p, rec, st, !manifest.complete);
      if (why !== undefined) { forget.push(p); left.push({ path: p, why }); continue; }
      if (st.isDirectory()) dirs.add(p);
      removes.push({ op: 'remove', path: p, kind: rec.k, reasons: [opts.clean ? 'clean' : 'no longer declared'], seen: st });
    }
    removes.sort((a, b) => comparePaths(b.path, a.path));
    if (dirs.size) removes = keepFilled(root, removes, dirs, kept, !manifest.complete);
  }

  const restamp = new Set<string>();
  for (const a of creates) if (a.target?.kind === 'file' && a.target.linkTo) restamp.add(a.target.linkTo);
  const unlinked = removes.filter((a) => manifest.records[a.path]!.l !== undefined);
  if (unlinked.length) {
    const removing = new Set(removes.map((a) => a.path));
    for (const a of unlinked) if (!removing.has(manifest.records[a.path]!.l!)) restamp.add(manifest.records[a.path]!.l!);
  }

  return {
    root, actions: [...removes, ...creates], upToDate, refresh, observed, unrestored: [...unrestored.values()], forget, kept, left, restamp: [...restamp],
    sweep: manifest.complete ? [] : sweepDirs(targets, manifest),
  };
}

/**
 * Where a killed build may have left temporary files: ROOT, each declared directory, and
 * each recorded one (a directory no longer declared is pruned, and its temporary files
 * would keep it).
 */
function sweepDirs(targets: readonly Target[], manifest: Manifest): string[] {
  const dirs = new Set(['/']);
  for (const t of targets) if (t.kind === 'dir') dirs.add(t.path);
  for (const [p, rec] of Object.entries(manifest.records)) if (rec.k === 'dir' && isRecordPath(p)) dirs.add(p);
  return [...dirs];
}

/**
 * `removes` (deepest first) less each directory that holds a name this plan does not
 * remove, which the executor's rmdir would keep: so -n, -q and --json say what the build
 * does. One readdir per directory to remove, and none on a build that prunes none. A
 * directory with a mount point at or beneath it stays a removal: the executor refuses it
 * and says to unmount.
 */
function keepFilled(root: string, removes: Action[], dirs: Set<string>, kept: string[], sweeping: boolean): Action[] {
  const going = new Set(removes.map((a) => a.path));
  const mounts = mountsBeneath(root);
  return removes.filter(({ path: p }) => {
    if (!dirs.has(p) || mounts.some((m) => m === p || m.startsWith(p + '/'))) return true;
    let names: string[];
    try { names = fs.readdirSync(root + p); } catch { return true; } // not a directory now: the executor judges it
    // A killed build's temporary files are swept (Plan.sweep) before anything is removed.
    if (names.every((n) => going.has(`${p}/${n}`) || (sweeping && TEMP_NAME.test(n)))) return true;
    going.delete(p); // its parent holds it now
    kept.push(p);
    return false;
  });
}
