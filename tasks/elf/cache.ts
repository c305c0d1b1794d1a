// Remembers parsed ELF facts per path together with the file's identity and times, so a
// rebuild that finds the same (dev, ino, size, mtime, ctime) trusts the earlier parse and
// does not open the binary again. The engine persists it as JSON next to its manifest,
// leaving out files whose times were too recent to tell a later same-tick write apart.

import * as fs from 'node:fs';
import { fail, jailError, type Result } from '../result.js';
import { readElfChecked, type ElfInfo, type FileStamp } from './elf-file.js';
import { isRacy } from '../stat.js';

interface Stamp {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

/** As persisted: the stamp as decimal strings, since JSON has no 64-bit integers. */
interface Entry {
  stamp: Stamp;
  result: Result<ElfInfo | null>;
}

/**
 * In memory: the stamp as numbers, so a lookup compares BigInts instead of formatting
 * five strings; the string form is made when the cache is saved (or kept from loading).
 */
interface Held {
  stamp?: Stamp;
  result: Result<ElfInfo | null>;
  big: FileStamp;
  /** Parsed while its times were too recent to trust (see isRacy): used by this build, never saved. */
  racy?: boolean;
}

// 3: strings decoded as UTF-8 (they were latin1), with ElfInfo.undecodable.
// 4: DT_FILTER and DT_AUXILIARY in one list with their place among DT_NEEDED (ElfInfo.filtees).
const FORMAT = 'jail-elf-facts/5';

function stampOf(st: FileStamp): Stamp {
  return {
    dev: st.dev.toString(),
    ino: st.ino.toString(),
    size: st.size.toString(),
    mtimeNs: st.mtimeNs.toString(),
    ctimeNs: st.ctimeNs.toString(),
  };
}

function bigOf(s: Stamp): FileStamp | undefined {
  try {
    return { dev: BigInt(s.dev), ino: BigInt(s.ino), size: BigInt(s.size), mtimeNs: BigInt(s.mtimeNs), ctimeNs: BigInt(s.ctimeNs) };
  } catch {
    return undefined; // not decimal: a damaged file, dropped like any malformed entry
  }
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.ino === b.ino && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.size === b.size && a.dev === b.dev;
}

export class ElfFactsCache {
  private entries = new Map<string, Held>();
  /** Parses done by this instance (lets tests and the engine see that a no-op build read nothing). */
  parses = 0;

  /** stat + cached parse of a host path (symlinks followed). */
  get(path: string): Result<ElfInfo | null> {
    let st: fs.BigIntStats | undefined;
    try {
      st = fs.statSync(path, { bigint: true, throwIfNoEntry: false });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      return fail(jailError('elf-unreadable', `${path} could not be examined (${code}).`, { path }));
    }
    if (!st) return fail(jailError('elf-unreadable', `${path} does not exist.`, { path }));
    return this.getWithStat(path, st);
  }

  /**
   * Same as get() when the caller already holds the stat; `noFollow` refuses a final
   * symlink at open time (the path was resolved beneath a root and must stay there).
   */
  getWithStat(path: string, st: fs.BigIntStats, opts: { noFollow?: boolean; displayPath?: string } = {}): Result<ElfInfo | null> {
    const hit = this.entries.get(path);
    if (hit && sameStamp(hit.big, st)) return hit.result;
    if (!st.isFile()) {
      const display = opts.displayPath ?? path;
      return fail(jailError('elf-not-regular', `${display} is not a regular file, so it cannot be a program or library.`, { path: display }));
    }
    this.parses++;
    const big: FileStamp = { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
    const read = readElfChecked(path, { noFollow: opts.noFollow, displayPath: opts.displayPath, expect: big });
    // Keep the entry only if the file opened is the one stamped (see readElfChecked).
    let unchanged = read.unchanged;
    if (unchanged === undefined) {
      // Nothing was opened (say EACCES): only the path's stat can tell.
      try {
        const after = (opts.noFollow ? fs.lstatSync : fs.statSync)(path, { bigint: true, throwIfNoEntry: false });
        unchanged = after !== undefined && sameStamp(after, big);
      } catch {
        unchanged = false;
      }
    }
    if (unchanged) this.entries.set(path, { result: read.result, big, racy: isRacy(big) });
    return read.result;
  }

  get size(): number {
    return this.entries.size;
  }

  toJSON(): unknown {
    const entries: [string, Entry][] = [];
    for (const [k, v] of this.entries) if (!v.racy) entries.push([k, { stamp: v.stamp ?? stampOf(v.big), result: v.result }]);
    return { format: FORMAT, entries };
  }

  /** Rebuild from toJSON() output; anything malformed is dropped (the cache is only an optimisation). */
  static fromJSON(data: unknown): ElfFactsCache {
    const c = new ElfFactsCache();
    if (!data || typeof data !== 'object') return c;
    const d = data as { format?: unknown; entries?: unknown };
    if (d.format !== FORMAT || !Array.isArray(d.entries)) return c;
    for (const item of d.entries) {
      if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== 'string') continue;
      const e = item[1] as Partial<Entry> | null;
      if (!e || typeof e !== 'object' || !isStamp(e.stamp) || !isResult(e.result)) continue;
      const big = bigOf(e.stamp);
      if (big) c.entries.set(item[0], { stamp: e.stamp, result: e.result, big });
    }
    return c;
  }
}

function isStamp(s: unknown): s is Stamp {
  if (!s || typeof s !== 'object') return false;
  const o = s as Record<string, unknown>;
  return ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs'].every((k) => typeof o[k] === 'string');
}

function isResult(r: unknown): r is Result<ElfInfo | null> {
  if (!r || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  if (o.ok === true) {
    const v = o.value;
    if (v === null) return true;
    if (!v || typeof v !== 'object') return false;
    const i = v as Record<string, unknown>;
    return (i.class === 32 || i.class === 64) && (i.endian === 'le' || i.endian === 'be') &&
      typeof i.machine === 'number' && Array.isArray(i.needed) && Array.isArray(i.rpath) &&
      Array.isArray(i.runpath) && Array.isArray(i.filtees) && Array.isArray(i.dlopens) && Array.isArray(i.defects) && Array.isArray(i.warnings) &&
      Array.isArray(i.undecodable) &&
      typeof i.flags1 === 'number' && typeof i.dynamic === 'boolean';
  }
  if (o.ok === false) {
    const e = o.error as Record<string, unknown> | undefined;
    return !!e && typeof e.code === 'string' && typeof e.message === 'string';
  }
  return false;
}
