// Byte comparison of a jail file with what it should hold, used only when a stamp moved.
// The jail file is opened without following a link and without blocking (a FIFO planted
// where a file should be must not hang the build), and must still be the inode lstat saw.

import fs from 'node:fs';
import { createHash } from 'node:crypto';
import type { Stat } from './stat.js';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const CHUNK = 1 << 16;

function openJailFile(p: string, st: Stat): number | undefined {
  let fd: number;
  try { fd = fs.openSync(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK); } catch { return undefined; }
  const now = fs.fstatSync(fd, { bigint: true });
  if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) { fs.closeSync(fd); return undefined; }
  return fd;
}

/** Does the jail file `out` (whose lstat is `st`) hold the same bytes as the host file `source`? */
export function sameBytes(source: string, out: string, st: Stat): boolean {
  const ofd = openJailFile(out, st);
  if (ofd === undefined) return false;
  let sfd: number | undefined;
  try {
    sfd = fs.openSync(source, O_RDONLY);
    if (fs.fstatSync(sfd).size !== st.size) return false;
    const a = Buffer.allocUnsafe(CHUNK), b = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = fs.readSync(sfd, a, 0, CHUNK, null);
      const m = fs.readSync(ofd, b, 0, CHUNK, null);
      if (n !== m) return false;
      if (n === 0) return true;
      if (a.compare(b, 0, m, 0, n) !== 0) return false;
    }
  } catch {
    return false;
  } finally {
    fs.closeSync(ofd);
    if (sfd !== undefined) fs.closeSync(sfd);
  }
}

/** Does the jail file `out` hold exactly `content`? */
export function sameBytesAs(content: Buffer, out: string, st: Stat): boolean {
  if (st.size !== content.length) return false;
  const fd = openJailFile(out, st);
  if (fd === undefined) return false;
  try {
    const b = Buffer.allocUnsafe(content.length + 1);
    let off = 0;
    for (let n; (n = fs.readSync(fd, b, off, b.length - off, null)) > 0;) off += n;
    return off === content.length && b.compare(content, 0, content.length, 0, off) === 0;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

/** Does the jail file `out` hold `size` bytes whose sha256 is `sha256` (a pack's file, with no copy of it at hand)? */
export function sameHash(sha256: string, size: number, out: string, st: Stat): boolean {
  if (st.size !== size) return false;
  const fd = openJailFile(out, st);
  if (fd === undefined) return false;
  try {
    const h = createHash('sha256');
    const b = Buffer.allocUnsafe(CHUNK);
    let total = 0;
    for (let n; (n = fs.readSync(fd, b, 0, CHUNK, null)) > 0;) { h.update(b.subarray(0, n)); total += n; }
    return total === size && h.digest('hex') === sha256;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
}
