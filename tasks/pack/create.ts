// `jail pack`: the built jail as one self-contained archive. Every declared path (files
// read back from ROOT, verified as they are read to be what the last build wrote), the
// contents of data() directories, devices, modes and owners in an index, and the make
// variables. Device nodes and owners live in the index, not as tar entries: node-tar
// restores neither. What pack writes, `rebuild FROM=` reads: the index passes the checks
// rebuild applies (format.ts's entryProblems) before anything is written, a declared path
// they refuse is refused here, naming its entry, and service data they refuse is left out.

import fs from 'node:fs';
import { createHash } from 'node:crypto';
import type { Analysis } from '../make.js';
import type { Manifest } from '../manifest.js';
import { plan } from '../plan.js';
import { jailError, type JailError } from '../result.js';
import { baseName, parentOf, type Target } from '../targets.js';
import { INDEX_NAME, LIMITS, PACK_FORMAT, entryProblems, memberName, type PackEntry, type PackIndex } from './format.js';
import { TarWriter } from './tar-write.js';
import type { PackOutput } from './output.js';
import { RootReader, openVerified, procPath } from '../check/reader.js';
import { fstatOf } from '../stat.js';
import { printable, varWords } from '../printable.js';
import { hasRawBytes, readNames } from '../byte-names.js';
import { onFatalSignal } from '../fatal-signal.js';

function entryOf(t: Target): PackEntry {
  const base = { path: t.path, mode: t.mode, uid: t.uid, gid: t.gid, ...(t.data ? { data: true } : {}) };
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
 * swapped for a link to the host while the pack is made is not followed. A path already
 * listed (declared, or beneath another data() directory) is not listed twice; a directory
 * nested deeper than a pack carries is left out, with a warning.
 */
class DataWalk {
  readonly #listed: Set<string>;
  readonly #walked = new Set<string>();
  /** Names of one inode stay one file: the first carries the bytes, the others link to it. */
  readonly #firstName = new Map<string, string>();

  constructor(readonly reader: RootReader, readonly out: PackEntry[], readonly warnings: string[]) {
    this.#listed = new Set(out.map((e) => e.path));
  }

  walk(dir: string): void {
    const top = this.reader.lstat(dir);
    if (top?.isDirectory()) this.#walk(dir, top.dev);
  }

  #walk(p: string, dev: bigint): void {
    if (this.#walked.has(p)) return;
    this.#walked.add(p);
    const { reader, out, warnings } = this;
    const fd = reader.dirFd(p);
    if (fd === undefined) { warnings.push(`pack: ${printable(p)} changed while it was being packed (it is no longer a directory); not packed`); return; }
    let names: string[];
    try { names = readNames(procPath(fd, '.')).sort(); } catch { warnings.push(`pack: ${printable(p)} could not be listed; not packed`); return; }
    for (const name of names) {
      const q = `${p}/${name}`;
      // Read as text it would name no file and vanish from the pack in silence.
      if (hasRawBytes(name)) { warnings.push(`pack: ${printable(q)}: its name is not valid UTF-8 (shown escaped), and a pack's names are UTF-8 text; not packed (rename it in the jail, then pack again)`); continue; }
      const st = reader.lstat(q);
      if (!st) continue; // gone since the listing
      if (this.#listed.has(q)) { if (st.isDirectory()) this.#walk(q, dev); continue; }
      if (q.split('/').length - 1 > LIMITS.depth) {
        warnings.push(`pack: ${printable(q)} is nested deeper than ${LIMITS.depth} levels; it and what lies beneath it are not packed (a pack carries ${LIMITS.depth} levels)`);
        continue;
      }
      // A directory keeps its setgid bit (files made in it take its group); a file never brings setuid or setgid.
      const base = { path: q, mode: st.mode & (st.isDirectory() ? 0o7777 : 0o1777), uid: st.uid, gid: st.gid, data: true };
      if (st.dev !== dev) { warnings.push(`pack: ${printable(q)} is on another filesystem; not packed`); continue; }
      if (st.isDirectory()) { this.#add({ ...base, kind: 'dir' }); this.#walk(q, dev); }
      else if (st.isSymbolicLink()) {
        const target = reader.readlink(q);
        if (target !== undefined) this.#add({ ...base, kind: 'symlink', target });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? this.#firstName.get(key) : undefined;
        if (first) this.#add({ ...base, kind: 'file', linkTo: first });
        else { this.#add({ ...base, kind: 'file' }); if (st.nlink > 1) this.#firstName.set(key, q); }
      }
      else warnings.push(`pack: ${printable(q)} is a device, FIFO or socket; not packed`);
    }
  }

  #add(e: PackEntry): void {
    this.out.push(e);
    this.#listed.add(e.path);
  }
}

/** Is `p` beneath one of `dirs`? */
function beneath(p: string, dirs: ReadonlySet<string>): boolean {
  for (let q = parentOf(p); q !== '/'; q = parentOf(q)) if (dirs.has(q)) return true;
  return false;
}

/**
 * `entries` less `drop` and what lies beneath those; a hard link whose file was dropped
 * takes its place, the first such name carrying the bytes (and the rest linking to it).
 */
function without(entries: PackEntry[], drop: ReadonlySet<string>): PackEntry[] {
  const kept: PackEntry[] = [];
  const dropped = new Set<string>();
  const moved = new Map<string, string>();
  for (const e of entries) {
    if (drop.has(e.path) || beneath(e.path, drop)) { dropped.add(e.path); continue; }
    if (e.linkTo !== undefined && dropped.has(e.linkTo)) {
      const now = moved.get(e.linkTo);
      if (now !== undefined) e.linkTo = now;
      else { moved.set(e.linkTo, e.path); delete e.linkTo; }
    }
    kept.push(e);
  }
  return kept;
}

/**
 * What of `entries` a pack can carry, by the checks rebuild applies to a pack's entries: a
 * declared path they refuse is an error naming its jailfile entry (the jail cannot be
 * packed as it is declared); service data they refuse is left out, with a warning.
 */
function carryable(entries: PackEntry[], declared: ReadonlyMap<string, Target>, warnings: string[]): { entries: PackEntry[]; errors: JailError[] } {
  // Sizes and hashes are not known until the files are read; these stand-ins pass for them.
  const probe = (list: PackEntry[]): PackEntry[] => list.map((e) => (e.kind === 'file' && e.linkTo === undefined ? { ...e, size: 0, sha256: '0'.repeat(64) } : e));
  for (;;) {
    const problems = entryProblems(probe(entries));
    if (!problems.length) return { entries, errors: [] };
    const byPath = new Map(entries.map((e) => [e.path, e]));
    const why = new Map<string, string>();
    const refused: JailError[] = [];
    for (const { entry, why: because } of problems) {
      const t = declared.get(entry);
      if (byPath.get(entry)?.data) why.set(entry, because);
      else if (t) refused.push(jailError('not-packable', `${printable(t.path)} (${printable(t.label)} at ${t.at}) cannot be packed: \`rebuild FROM=\` refuses it (it ${printable(because)}). Build such a jail from its jailfile wherever it is needed, or change the entry to pack it. Nothing was written.`, { path: t.path, entry: t.at }));
      else refused.push(jailError('not-packable', `The jail cannot be packed: \`rebuild FROM=\` would refuse the pack (${printable(entry)} ${printable(because)}). Nothing was written.`, { path: entry }));
    }
    if (refused.length) return { entries, errors: refused };
    const drop = new Set(why.keys());
    for (const [p, because] of why) {
      if (!beneath(p, drop)) warnings.push(`pack: ${printable(p)} cannot be carried (\`rebuild FROM=\` refuses it: it ${printable(because)}); it and what lies beneath it are not packed`);
    }
    entries = without(entries, drop);
  }
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
  let offSignal = (): void => {};
  try {
    const declared = new Map(a.targets.map((t) => [t.path, t]));
    const listed = a.targets.map(entryOf);
    const walk = new DataWalk(reader, listed, warnings);
    for (const e of a.entries) if (e.kind === 'data') walk.walk(e.path);
    const checked = carryable(listed, declared, warnings);
    if (checked.errors.length) return failed(...checked.errors);

    // Before the file exists: a signal between the two would leave it.
    offSignal = onFatalSignal(() => out.discard());
    const fd = out.create();
    if (typeof fd !== 'number') return failed(fd);
    // Compressed by the pack's name (format), not the temporary file's (which ends in .tmp).
    w = new TarWriter(fd, format);
    const entries: PackEntry[] = [];
    /** Service files gone by the time they were read, and the name that carries the bytes of each now. */
    const gone = new Set<string>();
    const moved = new Map<string, string>();
    for (const e of checked.entries) {
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
    // A jail rebuilt FROM= a pack has no jailfile of its own (a.file is that pack).
    if (a.vars.FROM === undefined) try { jailfile = fs.readFileSync(a.file, 'utf8'); } catch { /* none to record */ }
    const index: PackIndex = { format: PACK_FORMAT, created: new Date().toISOString(), root: a.root, vars, jailfile, entries };
    // The checks were made before the files were read; what went meanwhile must not leave an index rebuild refuses.
    const problems = entryProblems(entries);
    if (problems.length) throw new Error(`rebuild would refuse its entry ${printable(problems[0]!.entry)}, which ${printable(problems[0]!.why)}`);
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
    offSignal();
    reader.close();
  }
}
