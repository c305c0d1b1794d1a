// A lock file holding its owner's pid, for one build per ROOT and one boot at a time.
// Node has no flock(), so the file is the lock, and two things make it safe:
// - it appears with its pid already in it (written to a private name, then link(2)ed to
//   the lock's name, which fails if the lock exists): nobody ever reads an empty lock and
//   takes its owner for dead;
// - a dead owner's lock is set aside by rename(2) before it is judged, and given back if
//   it turns out to be a live owner's (one that took the lock between the look and the
//   rename): unlinking by name after a look removed a rival's fresh lock.

import fs from 'node:fs';
import path from 'node:path';

let made = 0;

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

/** Releases the lock if this process holds it. */
export function unlock(file: string): void {
  try { if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.unlinkSync(file); } catch { /* already gone */ }
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
  let held: string;
  try { held = fs.readFileSync(file, 'utf8'); } catch { return undefined; }
  const pid = Number(held);
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) return pid;
  const aside = `${file}.${process.pid}.${++made}.stale`;
  try { fs.renameSync(file, aside); } catch { return undefined; } // released or set aside by another
  try {
    const now = Number(fs.readFileSync(aside, 'utf8'));
    if (Number.isInteger(now) && now > 0 && now !== process.pid && alive(now)) {
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
 * `deadline` (ms since the epoch): `held`, or the owner that still held it then. The lock's
 * directory is made (0700) if missing: a previous owner's release may have removed it.
 */
export async function acquire(file: string, deadline: number, onWait: (pid: number) => void = () => {}): Promise<{ held: true } | { held: false; pid: number }> {
  for (;;) {
    let taken: boolean;
    try {
      taken = tryLock(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      continue;
    }
    if (taken) return { held: true };
    const pid = liveHolder(file);
    if (pid === undefined) continue;
    if (Date.now() > deadline) return { held: false, pid };
    onWait(pid);
    await new Promise((r) => setTimeout(r, 50));
  }
}
