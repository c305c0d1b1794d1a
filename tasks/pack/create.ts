// `jail pack`: the built jail as one self-contained archive. Every declared path (files
// read back from ROOT, verified to be what the last build wrote), the contents of data()
// directories, devices, modes and owners in an index, and the make variables. Device
// nodes and owners live in the index, not as tar entries: node-tar restores neither.

import fs from 'node:fs';
import { createHash } from 'node:crypto';
import type { Analysis } from '../make.js';
import type { Manifest } from '../manifest.js';
import { plan } from '../plan.js';
import { jailError, type JailError } from '../result.js';
import type { Target } from '../targets.js';
import { INDEX_NAME, PACK_FORMAT, memberName, type PackEntry, type PackIndex } from './format.js';
import { TarWriter } from './tar-write.js';
import type { PackOutput } from './output.js';
import { RootReader, procPath } from '../check/reader.js';
import { varWords } from '../printable.js';

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
    if (fd === undefined) { warnings.push(`pack: ${p} changed while it was being packed (it is no longer a directory); not packed`); return; }
    let names: string[];
    try { names = fs.readdirSync(procPath(fd, '.')).sort(); } catch { warnings.push(`pack: ${p} could not be listed; not packed`); return; }
    for (const name of names) {
      const q = `${p}/${name}`;
      const st = reader.lstat(q);
      if (!st) continue; // gone since the listing
      const base = { path: q, mode: st.mode & 0o7777 & ~0o6000, uid: st.uid, gid: st.gid, data: true };
      if (st.dev !== top.dev) { warnings.push(`pack: ${q} is on another filesystem; not packed`); continue; }
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
      else warnings.push(`pack: ${q} is a device, FIFO or socket; not packed`);
    }
  };
  walk(dir);
}

export async function createPack(a: Analysis, manifest: Manifest, vars: Record<string, string>, out: PackOutput, format: { gzip: boolean }): Promise<{ errors: JailError[]; warnings: string[]; entries: number }> {
  const warnings: string[] = [];
  const p = plan(a.root, a.targets, manifest);
  if (p.actions.length) {
    return { warnings, entries: 0, errors: [jailError('not-up-to-date', `The jail at ${a.root} is not what the jailfile declares (${p.actions.length} change${p.actions.length > 1 ? 's' : ''} pending, e.g. ${p.actions[0]!.path}: ${p.actions[0]!.reasons[0]}). Run \`jail make ${varWords(a.vars, a.root)}\` first, then pack.`, { path: a.root })] };
  }
  const opened = RootReader.open(a.root);
  if (!(opened instanceof RootReader)) {
    return { warnings, entries: 0, errors: [jailError('bad-root', `ROOT ${a.root} cannot be opened as a directory (${opened.code}); name the jail's real directory.`, { path: a.root })] };
  }
  const reader = opened;
  let w: TarWriter | undefined;
  // Ctrl-C or a kill leaves no half-written pack behind: the temporary file goes, then the signal takes its course.
  const onSignal = (sig: NodeJS.Signals) => {
    out.discard();
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    process.kill(process.pid, sig);
  };
  try {
    const entries = a.targets.map(entryOf);
    for (const e of a.entries) if (e.kind === 'data') walkData(reader, e.path, entries, warnings);
    const fd = out.create();
    if (typeof fd !== 'number') return { warnings, entries: 0, errors: [fd] };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    // Compressed by the pack's name (format), not the temporary file's (which ends in .tmp).
    w = new TarWriter(fd, format);
    for (const e of entries) {
      if (e.kind !== 'file' || e.linkTo) continue;
      const body = reader.readFile(e.path, Number.MAX_SAFE_INTEGER);
      if (body === undefined) throw new Error(`${e.path} in ROOT is no longer a regular file`);
      e.size = body.length;
      e.sha256 = createHash('sha256').update(body).digest('hex');
      await w.file(memberName(e.path), body);
    }
    let jailfile: string | undefined;
    try { jailfile = fs.readFileSync(a.file, 'utf8'); } catch { /* a pack rebuilt from a pack has none */ }
    const index: PackIndex = { format: PACK_FORMAT, created: new Date().toISOString(), root: a.root, vars, jailfile, entries };
    await w.file(INDEX_NAME, Buffer.from(JSON.stringify(index)));
    await w.close();
    out.commit();
    return { errors: [], warnings, entries: entries.length };
  } catch (err) {
    // The stream creates its file asynchronously: wait for it to settle before removing the name.
    await w?.abort();
    out.discard();
    return { warnings, entries: 0, errors: [jailError('pack-failed', `Could not write the pack ${out.file}: ${(err as Error).message}. Run make, then pack again.`, { path: out.file })] };
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    reader.close();
  }
}
