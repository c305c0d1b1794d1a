// Only fds 0-2 reach a jail. A descriptor the caller left open (a directory of the host,
// a socket, a file) is a way out of a chroot — fchdir() to it, openat() beneath it — so
// before anything is started, this process closes every descriptor above 2 it inherited.
// Node's own descriptors (its event loop, its pipes) are all close-on-exec and are kept;
// an inherited one is recognised by lacking O_CLOEXEC in /proc/self/fdinfo.

import fs from 'node:fs';

const O_CLOEXEC = 0o2000000;

export function closeInheritedFds(): number[] {
  const closed: number[] = [];
  let names: string[];
  try {
    names = fs.readdirSync('/proc/self/fd');
  } catch {
    return closed;
  }
  for (const n of names) {
    const fd = Number(n);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    let flags: number;
    try {
      const m = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (!m) continue;
      flags = parseInt(m[1]!, 8);
    } catch {
      continue; // the descriptor readdir itself used, gone already
    }
    if (flags & O_CLOEXEC) continue;
    try {
      fs.closeSync(fd);
      closed.push(fd);
    } catch { /* already closed */ }
  }
  return closed;
}
