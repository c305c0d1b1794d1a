// A lock file holding its owner's pid, for one build per ROOT and one boot at a time.
// Node has no flock(), so the file is the lock, and two things make it safe:
// - it appears with its pid already in it (written to a private name, then link(2)ed to
//   the lock's name, which fails if the lock exists): nobody ever reads an empty lock and
//   takes its owner for dead;
// - a dead owner's lock is set aside by rename(2) before it is judged, and given back if
//   it turns out to be a live owner's (one that took the lock between the look and the
//   rename): unlinking by name after a look removed a rival's fresh lock.
// A lock holding our own pid is ours only while this process holds it: two make() calls in
// one process (or watch's builds) wait for each other like two processes do, so the process
// keeps a registry of the locks it holds, and a holder is "live" when its pid is running and,
// for our own pid, when the lock is in that registry. A lock with our pid that is not in it
// was left by an earlier process that had our pid (pids are reused: after a reboot for the
// install directory's locks, which outlive it, or after the pid counter wraps for those in
// /run): that process is gone, so the lock is stale and is taken over like any dead owner's.

import fs from 'node:fs';
import path from 'node:path';

let made = 0;

// Kept on globalThis so that two copies of this module in one process (the API and the
// command line bundled apart, two installs of jail) share it: each would otherwise take
// the other's locks for stale. Maps a lock file to the token of its current holder.
const HELD = Symbol.for('jail.pid-lock.held');
const held: Map<string, object> = ((globalThis as Record<symbol, unknown>)[HELD] ??= new Map()) as Map<string, object>;

/** Does a lock file holding `pid` belong to a running holder? */
function liveOwner(file: string, pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  return pid === process.pid ? held.has(file) : alive(pid);
}

/** Takes the lock if nobody holds it: true when taken. */
function tryLock(file: string): boolean {
  const mine = `${file}.${process.pid}.${++made}.new`;
  fs.writeFileSync(mine, String(process.pid), { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(mine, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    fs.unlinkSync(mine);
  }
}

/**
 * A release for the holder that owns `token`: once only, and never another holder's lock
 * (a second call, after another make() in this process took the lock, must not remove it).
 */
function releaser(file: string, token: object): () => void {
  return () => {
    if (held.get(file) !== token) return;
    held.delete(file);
    try { if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.unlinkSync(file); } catch { /* already gone */ }
  };
}

/** Is the pid running? (EPERM: it is, as another user.) */
export function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * The holder of a lock that could not be taken: its pid when it is alive, undefined when
 * the lock is free again (released, or a dead owner's now removed): try again at once.
 */
function liveHolder(file: string): number | undefined {
  let content: string;
  try { content = fs.readFileSync(file, 'utf8'); } catch { return undefined; }
  const pid = Number(content);
  if (liveOwner(file, pid)) return pid;
  const aside = `${file}.${process.pid}.${++made}.stale`;
  try { fs.renameSync(file, aside); } catch { return undefined; } // released or set aside by another
  try {
    const now = Number(fs.readFileSync(aside, 'utf8'));
    if (liveOwner(file, now)) {
      // A live owner took it between the look and the rename: its lock goes back.
      try { fs.linkSync(aside, file); } catch { /* a third process holds the name now */ }
      return now;
    }
  } catch { /* unreadable: a dead owner's */ }
  finally {
    try { fs.unlinkSync(aside); } catch { /* gone */ }
  }
  return undefined;
}

/**
 * Takes the lock, waiting while a live owner holds it (`onWait` is told each time), until
 * `deadline` (ms since the epoch): `held` with its release, or the owner that still held it
 * then (our own pid: another holder in this process). The lock's directory is made (0700)
 * if missing: a previous owner's release may have removed it.
 */
export async function acquire(file: string, deadline: number, onWait: (pid: number) => void = () => {}): Promise<{ held: true; release: () => void } | { held: false; pid: number }> {
  for (;;) {
    let taken: boolean;
    try {
      taken = tryLock(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      continue;
    }
    if (taken) {
      // Registered before anything else runs: no other caller in this process sees the lock unregistered.
      const token = {};
      held.set(file, token);
      return { held: true, release: releaser(file, token) };
    }
    const pid = liveHolder(file);
    if (pid === undefined) continue;
    if (Date.now() > deadline) return { held: false, pid };
    onWait(pid);
    await new Promise((r) => setTimeout(r, 50));
  }
}
