// The one executor of a plan. It walks the actions in the plan's order (removals deepest
// first, directories parents first, then files, links and devices in parallel) and hands
// each to an Applier: the real one writes into ROOT through rootfs.ts, the recording one
// (-n) writes nothing, so a dry run cannot disagree with a real run about what happens.
// What the real one made comes back as its stat, so the checks after a build need not
// look at the new jail again.

import fs from 'node:fs';
import { RootFs, RootFsError, type Pruned } from './rootfs.js';
import { sourceId } from './rootfs-copy.js';
import type { Action, Plan } from './plan.js';
import { recordOf } from './plan.js';
import type { Rec } from './manifest.js';
import { parentOf, stampSize, type Target } from './targets.js';
import type { Stat } from './stat.js';
import { jailError, unreachable, type JailError } from './result.js';

/** What a made path now is (lstat); undefined when the applier wrote nothing (-n). */
type Made = Stat | undefined;

export interface Applier {
  /**
   * Removes `path` if it is still `seen` (what the plan judged jail's): 'kept' for a
   * directory holding files jail did not create, `left` for what is not jail's now.
   */
  prune(path: string, seen?: Stat): Pruned;
  ensureDir(t: Target): Made;
  copyFile(t: Target & { kind: 'file' }): Promise<Made>;
  /** Makes `t.path` another name of the file at `t.linkTo`. */
  hardlink(t: Target & { kind: 'file' }): Made;
  writeText(t: Target & { kind: 'text' }): Made;
  symlink(t: Target & { kind: 'symlink' }): Made;
  mknod(t: Target & { kind: 'device' }): Promise<Made>;
  /** What is at a jail path now, looked up without following links (undefined for -n). */
  stat(path: string): Made;
  sweep(dir: string): void;
  close(): void;
}

/**
 * The applier that writes ROOT; `copyThreads` small-file copies run beside the main thread.
 * `staged`: where the bytes of a source that is no host file (a pack's member) are read from.
 */
export function rootApplier(root: string, copyThreads = 0, staged?: ReadonlyMap<string, string>): Applier {
  const fs = RootFs.open(root, copyThreads);
  return {
    prune: (p, seen) => fs.prune(p, seen),
    ensureDir: (t) => fs.ensureDir(t.path, t.mode, t.uid, t.gid),
    copyFile: (t) => fs.copyFile(t.path, staged?.get(t.source) ?? t.source, t.mode, t.uid, t.gid, stampSize(t.sourceStamp), sourceId(t.sourceStamp)),
    hardlink: (t) => fs.hardlink(t.path, t.linkTo!),
    writeText: (t) => fs.writeText(t.path, t.content, t.mode, t.uid, t.gid),
    symlink: (t) => fs.symlink(t.path, t.target, t.uid, t.gid),
    mknod: (t) => fs.mknod(t.path, t.type, t.major, t.minor, t.mode, t.uid, t.gid),
    stat: (p) => fs.stat(p),
    sweep: (d) => { fs.sweepTemp(d); },
    close: () => fs.close(),
  };
}

/** -n: every action succeeds and nothing is touched. */
export function recordingApplier(): Applier & { readonly ops: string[] } {
  const ops: string[] = [];
  return {
    ops,
    prune: (p) => { ops.push(`prune ${p}`); return 'removed'; },
    ensureDir: (t) => { ops.push(`dir ${t.path}`); return undefined; },
    copyFile: async (t) => { ops.push(`copy ${t.path}`); return undefined; },
    hardlink: (t) => { ops.push(`link ${t.path}`); return undefined; },
    writeText: (t) => { ops.push(`text ${t.path}`); return undefined; },
    symlink: (t) => { ops.push(`symlink ${t.path}`); return undefined; },
    mknod: async (t) => { ops.push(`mknod ${t.path}`); return undefined; },
    stat: () => undefined,
    sweep: (d) => { ops.push(`sweep ${d}`); },
    close: () => {},
  };
}

export interface ApplyOptions {
  jobs: number;
  /** ROOT as the host names it, for errors (the jail's paths are shown beneath it). */
  root: string;
  keepGoing: boolean;
  /** Called once per action as it finishes (error set when it failed). */
  onAction?: (a: Action, error?: JailError) => void;
}

export interface ApplyResult {
  /** Records of targets written, to store in the manifest. */
  readonly written: Map<string, Rec>;
  /** What each target written now is in ROOT (lstat; empty for -n). */
  readonly made: Map<string, Stat>;
  /** Paths pruned (their records go). */
  readonly removed: string[];
  /** Directories that were to be pruned but were kept: they hold files jail did not create. */
  readonly kept: string[];
  /** Paths that were to be pruned where something jail did not make stood by then, with why: left alone, as plan.left. */
  readonly left: { path: string; why: string }[];
  /** New output stamps of files this build's links and unlinks touched (Plan.restamp), for their records. */
  readonly restamped: Map<string, string>;
  /** Directories that failed (-k), with how many targets beneath them were skipped for it. */
  readonly skipped: { path: string; count: number }[];
  readonly errors: JailError[];
}

/** What to do about a write the kernel refused, by errno. */
const ERRNO_HINTS: Record<string, string> = {
  EPERM: 'check its attributes (lsattr -d), permissions and mount options',
  EACCES: 'check its attributes (lsattr -d), permissions and mount options',
  ENOSPC: 'its filesystem is full: free some space (df)',
  EDQUOT: 'a disk quota is used up: free some space or raise the quota',
  EROFS: 'its filesystem is mounted read-only: remount it read-write',
  EMFILE: 'too many files are open: raise the limit (ulimit -n) or give a lower -j',
  ENFILE: 'too many files are open on the host: give a lower -j',
};

/**
 * A failed write in words for people: the jail path, the entry, what the kernel said and
 * where, and what to do. Node's own message names the file by the descriptor path the
 * write went through (/proc/self/fd/N/.jail-tmp.*), which means nothing to anyone.
 */
function asError(a: Action, err: unknown, root: string): JailError {
  const where = a.target ? ` (${a.target.label} at ${a.target.at})` : '';
  if (err instanceof RootFsError) {
    // The source's fault, not ROOT's: said with the entry that names it.
    if (err.error.code !== 'source-changed') return err.error;
    return jailError('source-changed', `Could not ${a.op} ${a.path}${where}: ${err.error.message}`, { path: a.path, entry: a.target?.at });
  }
  const e = err as NodeJS.ErrnoException;
  const msg = String(e.message ?? e);
  let what: string;
  if (e.code && /^E[A-Z0-9]+$/.test(e.code)) {
    // `EPERM: operation not permitted, open '...'`: the words between the code and the call, then the call.
    const [, said = 'failed', call = e.syscall] = new RegExp(`^${e.code}: ([^,]+)(?:, (\\w+))?`).exec(msg) ?? [];
    const at = (p: string) => (p === '/' ? root : root + p);
    // The path that refused: a directory kept in place is owned and moded through its own
    // descriptor; a file is made beside its name and renamed over it, which the old file
    // (immutable, append-only) may refuse as well as its directory; the rest is made in the directory.
    const where = a.op === 'remove' ? `removing ${at(a.path)}`
      : a.target?.kind === 'dir' && (call === 'fchown' || call === 'fchmod') ? `setting the owner and mode of ${at(a.path)}`
        : call === 'rename' ? `replacing ${at(a.path)} (the file or its directory ${at(parentOf(a.path))} refused)`
          : `writing in ${at(parentOf(a.path))}`;
    const hint = e.code === 'ENOSPC' && noFreeInodes(root) ? 'its filesystem has no free inodes left, though it may have space: remove some files, or give it more inodes (df -i)' : ERRNO_HINTS[e.code] ?? 'check it and its filesystem';
    what = `${said} (${e.code}) ${where}; ${call === 'rename' ? hint.replace('its attributes', 'the attributes of both') : hint}, then run make again.`;
  } else {
    what = msg.replace(/'?\/proc\/self\/fd\/\d+(?:\/[^\s',]*)?'?/g, a.path);
  }
  return jailError('write-failed', `Could not ${a.op} ${a.path}${where}: ${what}`, { path: a.path, entry: a.target?.at });
}

/** ENOSPC also means no inode is left: df then shows space free, so the hint must say which. */
function noFreeInodes(root: string): boolean {
  try { const st = fs.statfsSync(root); return st.files > 0 && st.ffree === 0; } catch { return false; }
}

async function make(applier: Applier, t: Target): Promise<Made> {
  switch (t.kind) {
    case 'dir': return applier.ensureDir(t);
    case 'symlink': return applier.symlink(t);
    case 'device': return applier.mknod(t);
    case 'text': return applier.writeText(t);
    case 'file': return t.linkTo ? applier.hardlink(t) : applier.copyFile(t);
    default: return unreachable(t);
  }
}

export async function apply(plan: Plan, applier: Applier, opts: ApplyOptions): Promise<ApplyResult> {
  const written = new Map<string, Rec>();
  const made = new Map<string, Stat>();
  const build = async (t: Target): Promise<void> => {
    const st = await make(applier, t);
    // A written file's record holds its stamp; -n records nothing that is kept.
    const stamped = (t.kind === 'file' && !t.linkTo) || t.kind === 'text';
    written.set(t.path, recordOf(t, stamped ? (st ? st.stamp : 'dry-run') : undefined));
    if (st) made.set(t.path, st);
  };
  const removed: string[] = [];
  const kept: string[] = [];
  const left: { path: string; why: string }[] = [];
  const errors: JailError[] = [];
  let stopped = false;
  // Without -k the build stops at the first error; writes already under way then (a copy
  // thread's batch, say) that fail too are counted under it, not told one by one: one
  // cause (a full or read-only filesystem) would otherwise give a paragraph per write.
  let after = 0, afterOther = 0, firstWhy: string | undefined;
  const failed = (a: Action, err: unknown) => {
    const e = asError(a, err, opts.root);
    const why = `${e.code} ${(err as NodeJS.ErrnoException).code ?? ''}`;
    if (stopped) {
      if (why === firstWhy) after++;
      else afterOther++;
      return;
    }
    errors.push(e);
    firstWhy ??= why;
    opts.onAction?.(a, e);
    if (!opts.keepGoing) stopped = true;
  };

  // As make skips what depends on a failed target: what lies beneath a directory that
  // could not be made or updated is not tried (-k), one count for it instead of an error each.
  const failedDirs = new Map<string, number>();
  const beneathFailed = (p: string): boolean => {
    if (!failedDirs.size) return false;
    for (let q = parentOf(p); q !== '/'; q = parentOf(q)) {
      const n = failedDirs.get(q);
      if (n !== undefined) { failedDirs.set(q, n + 1); return true; }
    }
    return false;
  };

  for (const d of plan.sweep) applier.sweep(d);

  const leaves: Action[] = [];
  for (const a of plan.actions) {
    if (stopped) break;
    if (a.op === 'remove') {
      try {
        const done = applier.prune(a.path, a.seen);
        if (done === 'removed') { removed.push(a.path); opts.onAction?.(a); }
        else if (done === 'kept') kept.push(a.path);
        else left.push({ path: a.path, why: done.left });
      } catch (err) { failed(a, err); }
    } else if (a.target?.kind === 'dir') {
      if (beneathFailed(a.path)) continue;
      try { await build(a.target); opts.onAction?.(a); } catch (err) { failed(a, err); failedDirs.set(a.path, 0); }
    } else {
      leaves.push(a);
    }
  }

  // Leaves live in directories that now exist; they are independent of each other, except
  // hard links, which are made once every file they name is in place.
  const isLink = (a: Action) => a.target?.kind === 'file' && a.target.linkTo !== undefined;
  for (const batch of [leaves.filter((a) => !isLink(a)), leaves.filter(isLink)]) {
    let next = 0;
    const worker = async () => {
      while (!stopped && next < batch.length) {
        const a = batch[next++]!;
        if (beneathFailed(a.path)) continue;
        try { await build(a.target!); opts.onAction?.(a); } catch (err) { failed(a, err); }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, batch.length)) }, worker));
  }

  // Only a file known right is restamped: written by this build, or found fresh by the plan.
  const restamped = new Map<string, string>();
  for (const p of plan.restamp) {
    if (!written.has(p) && !plan.observed.has(p)) continue;
    const st = applier.stat(p);
    if (!st?.isFile()) continue;
    restamped.set(p, st.stamp);
    made.set(p, st);
  }
  // One line after the first error's paragraph, which was shown as it happened.
  if (after + afterOther) {
    const more = [after ? `${after} more write${after === 1 ? '' : 's'} failed the same way` : '', afterOther ? `${afterOther} more failed otherwise (-k shows each)` : ''];
    errors.push(jailError(errors[0]!.code, `${more.filter(Boolean).join('; ')}.`));
  }
  const skipped = [...failedDirs].flatMap(([path, count]) => (count ? [{ path, count }] : []));
  return { written, made, removed, kept, left, restamped, skipped, errors };
}
