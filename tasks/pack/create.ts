// `jail pack`: the built jail as one self-contained archive. Every declared path (files
// read back from ROOT, verified as they are read to be what the last build wrote), the
// contents of data() directories, devices, modes and owners in an index, and the make
// variables. Device nodes and owners live in the index, not as tar entries: node-tar
// restores neither.

import fs from 'node:fs';
import { createHash } from 'node:crypto';
import type { Analysis } from '../make.js';
import type { Manifest } from '../manifest.js';
import { plan } from '../plan.js';
import { jailError, type JailError } from '../result.js';
import { baseName, parentOf, type Target } from '../targets.js';
import { INDEX_NAME, PACK_FORMAT, memberName, type PackEntry, type PackIndex } from './format.js';
import { TarWriter } from './tar-write.js';
import type { PackOutput } from './output.js';
import { RootReader, openVerified, procPath } from '../check/reader.js';
import { fstatOf } from '../stat.js';
import { printable, varWords } from '../printable.js';

function entryOf(t: Target): PackEntry {
  const base = { path: t.path, mode: t.mode, uid: t.uid, gid: t.gid };
  switch (t.kind) {
    case 'dir': return { ...base, kind: 'dir' };
    case 'symlink': return { ...base, kind: 'symlink', target: t.target };
    case 'device': return { ...base, kind: 'device', type: t.type, major: t.major, minor: t.minor };
    case 'file': return t.linkTo ? { ...base, kind: 'file', linkTo: t.linkTo } : { ...base, kind: 'file' };
    case 'text': return { ...base, kind: 'file' };
  }
}

/**
 * The files a service keeps beneath a data() directory, walked without following links or
 * leaving the filesystem. Each directory is listed through its descriptor: a directory
 * swapped for a link to the host while the pack is made is not followed.
 */
function walkData(reader: RootReader, dir: string, out: PackEntry[], warnings: string[]): void {
  const top = reader.lstat(dir);
  if (!top?.isDirectory()) return;
  const firstName = new Map<string, string>();
  const walk = (p: string) => {
    const fd = reader.dirFd(p);
    if (fd === undefined) { warnings.push(`pack: ${printable(p)} changed while it was being packed (it is no longer a directory); not packed`); return; }
    let names: string[];
    try { names = fs.readdirSync(procPath(fd, '.')).sort(); } catch { warnings.push(`pack: ${printable(p)} could not be listed; not packed`); return; }
    for (const name of names) {
      const q = `${p}/${name}`;
      const st = reader.lstat(q);
      if (!st) continue; // gone since the listing
      const base = { path: q, mode: st.mode & 0o7777 & ~0o6000, uid: st.uid, gid: st.gid, data: true };
      if (st.dev !== top.dev) { warnings.push(`pack: ${printable(q)} is on another filesystem; not packed`); continue; }
      if (st.isDirectory()) { out.push({ ...base, kind: 'dir' }); walk(q); }
      else if (st.isSymbolicLink()) {
        const target = reader.readlink(q);
        if (target !== undefined) out.push({ ...base, kind: 'symlink', target });
      } else if (st.isFile()) {
        // Names of one inode stay one file: the first carries the bytes, the others link to it.
        const first = st.nlink > 1 ? firstName.get(`${st.dev}:${st.ino}`) : undefined;
        if (first) out.push({ ...base, kind: 'file', linkTo: first });
        else { out.push({ ...base, kind: 'file' }); if (st.nlink > 1) firstName.set(`${st.dev}:${st.ino}`, q); }
      }
      else warnings.push(`pack: ${printable(q)} is a device, FIFO or socket; not packed`);
    }
  };
  walk(dir);
}

type Carried = 'carried' | 'removed' | 'replaced' | 'changed';

/**
 * Streams a regular file of ROOT into the archive, a chunk at a time, and gives its entry
 * its size and sha256. `expected`: a declared file's stamp as the up-to-date check found it
 * (the build record's, or bytes checked against the declaration): the file read must bear
 * it before and after, or what the jail put there meanwhile would be packed as declared.
 */
async function carry(reader: RootReader, w: TarWriter, e: PackEntry, expected: string | undefined, warnings: string[]): Promise<Carried> {
  const dir = reader.dirFd(parentOf(e.path));
  const st = dir === undefined ? undefined : reader.lstat(e.path);
  if (!st) return 'removed';
  const fd = openVerified(procPath(dir!, baseName(e.path)), st);
  if (fd === undefined) return st.isFile() ? 'changed' : 'replaced';
  try {
    const at = fstatOf(fd);
    if (expected !== undefined && at.stamp !== expected) return 'changed';
    const hash = createHash('sha256');
    let pos = 0;
    let short = false;
    await w.stream(memberName(e.path), at.size, (chunk) => {
      let n = 0;
      while (n < chunk.length) {
        const k = fs.readSync(fd, chunk, n, chunk.length - n, pos + n);
        if (k <= 0) break;
        n += k;
      }
      // The header promised at.size bytes: a file cut short meanwhile is carried padded.
      if (n < chunk.length) { chunk.fill(0, n); short = true; }
      pos += chunk.length;
      hash.update(chunk);
    });
    if (expected !== undefined && fstatOf(fd).stamp !== expected) return 'changed';
    if (short) warnings.push(`pack: ${printable(e.path)} shrank while it was being packed; its copy is padded with zeros to the size it had`);
    e.size = at.size;
    e.sha256 = hash.digest('hex');
    return 'carried';
  } finally {
    fs.closeSync(fd);
  }
}

export interface PackResult {
  errors: JailError[];
  warnings: string[];
  /** Service data that went while the pack was made, left out. */
  notes: string[];
  entries: number;
}

export async function createPack(a: Analysis, manifest: Manifest, vars: Record<string, string>, out: PackOutput, format: { gzip: boolean }): Promise<PackResult> {
  const warnings: string[] = [];
  const notes: string[] = [];
  const failed = (...errors: JailError[]): PackResult => ({ warnings, notes, entries: 0, errors });
  const p = plan(a.root, a.targets, manifest);
  if (p.actions.length) {
    return failed(jailError('not-up-to-date', `The jail at ${a.root} is not what the jailfile declares (${p.actions.length} change${p.actions.length > 1 ? 's' : ''} pending, e.g. ${printable(p.actions[0]!.path)}: ${p.actions[0]!.reasons[0]}). Run \`jail make ${varWords(a.vars, a.root)}\` first, then pack.`, { path: a.root }));
  }
  const opened = RootReader.open(a.root);
  if (!(opened instanceof RootReader)) {
    return failed(jailError('bad-root', `ROOT ${a.root} cannot be opened as a directory (${opened.code}); name the jail's real directory.`, { path: a.root }));
  }
  const reader = opened;
  const again = `Run \`jail make ${varWords(a.vars, a.root)}\`, then pack again.`;
  let w: TarWriter | undefined;
  // Ctrl-C or a kill leaves no half-written pack behind: the temporary file goes, then the signal takes its course.
  const onSignal = (sig: NodeJS.Signals) => {
    out.discard();
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    process.kill(process.pid, sig);
  };
  try {
    const listed = a.targets.map(entryOf);
    for (const e of a.entries) if (e.kind === 'data') walkData(reader, e.path, listed, warnings);
    const fd = out.create();
    if (typeof fd !== 'number') return failed(fd);
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    // Compressed by the pack's name (format), not the temporary file's (which ends in .tmp).
    w = new TarWriter(fd, format);
    const entries: PackEntry[] = [];
    /** Service files gone by the time they were read, and the name that carries the bytes of each now. */
    const gone = new Set<string>();
    const moved = new Map<string, string>();
    for (const e of listed) {
      if (e.kind === 'file' && e.linkTo !== undefined && gone.has(e.linkTo)) {
        const now = moved.get(e.linkTo);
        if (now !== undefined) e.linkTo = now;
        else { moved.set(e.linkTo, e.path); delete e.linkTo; }
      }
      if (e.kind === 'file' && e.linkTo === undefined) {
        // A declared file the check did not see cannot bear its stamp: '' matches none.
        const expected = e.data ? undefined : p.observed.get(e.path)?.stamp ?? '';
        const r = await carry(reader, w, e, expected, warnings);
        if (r !== 'carried' && !e.data) {
          await w.abort();
          out.discard();
          return failed(jailError('changed-while-packed', `${printable(e.path)} in ROOT changed while it was being packed (it is no longer the file the last build wrote; something in the jail may have replaced it). Nothing was written. ${again}`, { path: e.path }));
        }
        if (r !== 'carried') {
          // The next name of its inode, if any, carries the bytes instead.
          for (const [leader, now] of moved) if (now === e.path) moved.delete(leader);
          gone.add(e.path);
          notes.push(`${printable(e.path)} ${r === 'removed' ? 'was removed' : r === 'replaced' ? 'stopped being a regular file' : 'was replaced'} while the jail was packed; not packed`);
          continue;
        }
      }
      entries.push(e);
    }
    let jailfile: string | undefined;
    try { jailfile = fs.readFileSync(a.file, 'utf8'); } catch { /* a pack rebuilt from a pack has none */ }
    const index: PackIndex = { format: PACK_FORMAT, created: new Date().toISOString(), root: a.root, vars, jailfile, entries };
    await w.file(INDEX_NAME, Buffer.from(JSON.stringify(index)));
    await w.close();
    out.commit();
    return { errors: [], warnings, notes, entries: entries.length };
  } catch (err) {
    // The stream creates its file asynchronously: wait for it to settle before removing the name.
    await w?.abort();
    out.discard();
    return failed(jailError('pack-failed', `Could not write the pack ${out.file}: ${(err as Error).message}. ${again}`, { path: out.file }));
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    reader.close();
  }
}
