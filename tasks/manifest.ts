// What the last build put in ROOT, kept outside ROOT (the jail is not trusted) in the
// install directory beside the jailfile: one JSON file per ROOT, read in one go and
// replaced atomically, and a small mark beside it while a build is writing. Also the lock
// that keeps two builds of one ROOT apart.

import { acquire } from './pid-lock.js';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { TargetKind } from './targets.js';
import { realHostPath } from './host-inputs.js';
import { jailError, type JailError } from './result.js';

/** One built path: its declaration as it was built, and the stamp of what was written. */
export interface Rec {
  k: TargetKind;
  m: number;
  u: number;
  g: number;
  /** file: the host source, and its stamp when it was copied. */
  src?: string;
  ss?: string;
  /** text: sha256 of the content. */
  h?: string;
  /** symlink: the link's content. */
  t?: string;
  /** device: `c:1:3`. */
  d?: string;
  /** file, text: the output's stamp right after it was written. */
  o?: string;
  /** file: another name of the file at this path (a hard link). */
  l?: string;
}

/** What no clean jail path holds: an empty name, a '.' or '..' name, a NUL. */
const NOT_CLEAN = /\/\/|\/\.\.?(?:\/|$)|\0/;

/**
 * Whether a record's path is a clean jail path beneath '/'. An older build could record
 * one that is not (the empty path of `dir('//')`), and acting on it would write ROOT
 * itself, or beyond it: plan() forgets such a record and check passes over it. Tested
 * there, on records no longer declared, and not here on load: a no-op build reads every
 * record and declares them all.
 */
export function isRecordPath(p: string): boolean {
  return p.charCodeAt(0) === 0x2f && p.charCodeAt(p.length - 1) !== 0x2f && !NOT_CLEAN.test(p);
}

export interface Manifest {
  version: 1;
  root: string;
  /**
   * False when the last build did not finish: it failed (as recorded), or it was killed
   * while writing (its building mark is still there). The next build sweeps temporary files.
   */
  complete: boolean;
  /**
   * The make variables (ROOT and FROM aside) of the last full build: check, pack, boot,
   * run and trace evaluate the jailfile with them unless told otherwise. Absent in records
   * older than this field, and when there were none.
   */
  vars?: Record<string, string>;
  records: Record<string, Rec>;
}

export const STATE_DIR = '.jail';

export function stateDir(installDir: string): string {
  return path.join(installDir, STATE_DIR);
}

/** `var-virtual-apache-1a2b3c4d`: readable, and unique per ROOT. */
export function rootKey(root: string): string {
  const slug = root.replace(/^\/+/, '').replace(/[^A-Za-z0-9._-]+/g, '-').slice(-60) || 'root';
  return `${slug}-${createHash('sha256').update(root).digest('hex').slice(0, 8)}`;
}

/**
 * What identifies a jail on this host, whatever spelling of ROOT named it: the key of its
 * real path. The host-wide build lock, /run/jail's records and locks, and the cgroups and
 * network namespace of a booted jail are all named by it. ROOT need not exist (stop after
 * `rm -rf ROOT`): what exists of its path is resolved.
 */
export function jailKey(root: string): string {
  return rootKey(realRoot(root));
}

export function manifestPath(installDir: string, root: string): string {
  return path.join(stateDir(installDir), `${rootKey(root)}.json`);
}

export function emptyManifest(root: string): Manifest {
  return { version: 1, root, complete: true, records: {} };
}

/** The mark a build leaves beside the record of its ROOT while it writes (see markBuilding). */
export function buildingMarkPath(file: string): string {
  return `${file.replace(/\.json$/, '')}.building`;
}

/**
 * Says, before a build writes into ROOT, that it has started: a build killed before it
 * saves its record leaves the mark, and the next one sweeps ROOT for temporary files. A
 * small file of its own, because rewriting the whole record (megabytes for a large jail)
 * just to say so cost a build with one change more than the change itself.
 */
export function markBuilding(file: string): JailError | undefined {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(buildingMarkPath(file), `${process.pid}\n`);
  } catch (err) {
    fs.rmSync(buildingMarkPath(file), { force: true });
    return stateWriteError(buildingMarkPath(file), err, 'Nothing was touched.');
  }
  return undefined;
}

/** What to do when the kernel refuses a write in the state directory, by errno. */
const STATE_HINTS: Record<string, string> = {
  ENOSPC: 'its filesystem is full: free some space (df, and df -i for inodes)',
  EDQUOT: 'a disk quota is used up: free some space or raise the quota',
  EROFS: 'its filesystem is mounted read-only: remount it read-write, or build from a jailfile in a writable directory',
  EACCES: 'check its permissions and attributes (lsattr -d)',
  EPERM: 'check its permissions and attributes (lsattr -d)',
};

/**
 * A write to the state directory (.jail beside the jailfile) the kernel refused, for
 * people: which file, why, and what to do. Anything else is a bug, and thrown on.
 */
export function stateWriteError(file: string, err: unknown, after: string): JailError {
  const code = (err as NodeJS.ErrnoException).code;
  if (!code || !/^E[A-Z0-9]+$/.test(code)) throw err;
  const hint = STATE_HINTS[code] ?? 'check it and its filesystem';
  return jailError('state-unwritable', `Cannot write ${file} in ${path.dirname(file)}, the state directory where jail keeps the record of what it built in ROOT (${code}): ${hint}, then run make again. ${after}`, { path: file });
}

/**
 * found: a record of this ROOT, or the mark of a build of it, exists. lost: why the record
 * cannot say what jail built (missing, damaged, another ROOT's): make warns when ROOT holds
 * files, as what is no longer declared cannot be removed then.
 */
export function loadManifest(file: string, root: string): { manifest: Manifest; found: boolean; error?: JailError; lost?: string } {
  const interrupted = fs.existsSync(buildingMarkPath(file));
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { manifest: { ...emptyManifest(root), complete: !interrupted }, found: interrupted, lost: interrupted ? undefined : 'is missing' };
    const fix = code === 'EISDIR' ? 'It is a directory: remove it' : 'Fix its permissions, or delete it';
    return { manifest: emptyManifest(root), found: true, error: jailError('manifest-unreadable', `Cannot read the build record ${file} (${code}). ${fix} to start over (the next make then checks every file in ROOT).`, { path: file }) };
  }
  try {
    const m = JSON.parse(text) as Manifest;
    if (m.version !== 1 || typeof m.records !== 'object' || m.records === null) throw new Error('unknown format');
    // Variables that are not all strings were not written by make: none recorded, as in an older record.
    const vars = isVars(m.vars) ? m.vars : undefined;
    // Another ROOT's record (copied over this one): its paths say nothing of this jail.
    if (m.root !== root) return { manifest: { ...emptyManifest(root), complete: !interrupted }, found: true, lost: `is the record of another ROOT (${String(m.root)})` };
    return { manifest: { ...m, root, complete: m.complete && !interrupted, vars }, found: true };
  } catch {
    // A damaged record costs a full comparison, not correctness: every path is then re-checked against ROOT.
    return { manifest: { ...emptyManifest(root), complete: !interrupted }, found: true, lost: 'is damaged (not a build record jail can read)' };
  }
}

function isVars(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** The variables a build records: those given, less ROOT (the record's key) and FROM (a pack, not the jailfile's). */
export function varsToRecord(vars: Record<string, string>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let any = false;
  for (const [k, v] of Object.entries(vars)) if (k !== 'ROOT' && k !== 'FROM') { out[k] = v; any = true; }
  return any ? out : undefined;
}

export function sameVars(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ka = Object.keys(a ?? {}), kb = Object.keys(b ?? {});
  return ka.length === kb.length && ka.every((k) => b![k] === a![k]);
}

/**
 * Written to a temporary name and renamed, so a crash leaves the old record or the new
 * one; then the building mark goes, the record saying for itself whether the build finished.
 */
export function saveManifest(file: string, m: Manifest): JailError | undefined {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify(m));
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    // The building mark stays: the next build knows this one's files for jail's by their bytes.
    return stateWriteError(file, err, 'ROOT was written but the record of it was not saved: the next make finds what this one wrote and records it.');
  }
  fs.rmSync(buildingMarkPath(file), { force: true });
  return undefined;
}

export interface Lock { release(): void }


/**
 * Where builds of any install directory meet: a lock per ROOT, whichever jailfile builds
 * it. Under /run (cleared at boot, as the locks' owners are; only root may write there),
 * one directory per user, made 0700 and refused if someone else made it. Not /run/lock:
 * it is world-writable, so any local user could make the directory first after a reboot
 * and stop every build until an administrator removed it.
 */
export function hostLockDir(): string | undefined {
  const uid = process.getuid?.() ?? 0;
  if (!fs.statSync('/run', { throwIfNoEntry: false })?.isDirectory()) return undefined;
  return path.join('/run', uid === 0 ? 'jail-build' : `jail-build-${uid}`);
}

/** ROOT with every symlink among its parents resolved, as far as it exists: the same jail, however it is named. */
export const realRoot = (root: string): string => realHostPath(root);

/** The host-wide lock file of ROOT, its directory made safe; undefined where there is none to share. */
function hostLockFile(root: string): string | JailError | undefined {
  const dir = hostLockDir();
  if (!dir) return undefined;
  const real = realRoot(root);
  // Never inside ROOT: whatever is there may have been planted.
  if (dir === real || dir.startsWith(real + '/')) return undefined;
  try { fs.mkdirSync(dir, { mode: 0o700 }); } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') return code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? undefined : jailError('locked', `Cannot make the lock directory ${dir} (${code}).`, { path: dir });
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== (process.getuid?.() ?? 0) || (st.mode & 0o022) !== 0) {
    return jailError('locked', `The lock directory ${dir}, where builds of one ROOT from different jailfile directories wait for each other, is not a directory that only you can write (someone else made it?). Remove it, then run make again.`, { path: dir });
  }
  return path.join(dir, `${jailKey(real)}.lock`);
}

/**
 * One build per ROOT at a time: the install directory's lock (one record per ROOT), then
 * the host-wide one (builds of one ROOT from different jailfile directories), always in
 * that order. A second build waits for the first (saying so once), and takes over a lock
 * whose owner has died.
 */
export async function acquireLock(installDir: string, root: string, opts: { waitMs: number; onWait: (pid: number) => void }): Promise<Lock | JailError> {
  const deadline = Date.now() + opts.waitMs;
  let told = false;
  const onWait = (pid: number) => { if (!told) opts.onWait(pid); told = true; };
  const file = path.join(stateDir(installDir), `${rootKey(root)}.lock`);
  let own: Lock | JailError;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    own = await lockFile(file, root, deadline, onWait);
  } catch (err) {
    return stateWriteError(file, err, 'Nothing was touched.');
  }
  if ('code' in own) return own;
  const hostFile = hostLockFile(root);
  if (hostFile === undefined) return own;
  const host = typeof hostFile === 'string' ? await lockFile(hostFile, root, deadline, onWait) : hostFile;
  if ('code' in host) { own.release(); return host; }
  return { release: () => { host.release(); own.release(); } };
}

async function lockFile(file: string, root: string, deadline: number, onWait: (pid: number) => void): Promise<Lock | JailError> {
  const got = await acquire(file, deadline, onWait);
  if (got.held) return { release: got.release };
  return jailError('locked', `Another jail build (pid ${got.pid}) is working on ${root}; it holds ${file}. Wait for it to finish, or stop it, then run make again.`, { path: root });
}
