// Parses /etc/ld.so.cache as glibc's dl-cache.c does (the "glibc-ld.so.cache1.1" format,
// alone or embedded after the old "ld.so-1.7.0" table) and looks names up with the same
// entry-selection rules, except that glibc-hwcaps entries, and legacy hwcap entries other
// than those every CPU of the machine takes (tls/, x86_64/), are never chosen: a jail gets
// the library the loader takes whatever the build host's CPU supports.

import { fail, jailError, ok, type Result } from '../result.js';
import { utf8Text } from './file-reader.js';

export interface LdCacheEntry {
  key: string;
  value: string;
  flags: number;
  /** 0n for generic entries; bit 62 marks a glibc-hwcaps entry, other bits legacy hwcaps. */
  hwcap: bigint;
  /** The value's bytes are not UTF-8 (see utf8Text): no string path names the file. */
  undecodable?: true;
}

export interface LdCache {
  format: 'new' | 'old';
  entries: LdCacheEntry[];
  /** Entries in file order per libcmp-equivalence class of the key. */
  byKey: Map<string, LdCacheEntry[]>;
}

const MAGIC_OLD = 'ld.so-1.7.0';
const MAGIC_NEW = 'glibc-ld.so.cache1.1';
const OLD_HEADER = 16;
const OLD_ENTRY = 12;
const NEW_HEADER = 48;
const NEW_ENTRY = 24;
const HWCAP_EXTENSION = 1n << 62n;
/** Longest key or value accepted (a longer one is treated as corrupt). */
export const MAX_STRING = 4096;

/**
 * _dl_cache_libcmp compares digit runs numerically, so "libz.so.01" and "libz.so.1"
 * are the same key. Normalising digit runs gives a Map key with the same equality.
 */
export function cacheKeyOf(name: string): string {
  // Most names have no digit run with a leading zero, and are their own key.
  if (!LEADING_ZERO.test(name)) return name;
  return name.replace(/[0-9]+/g, (d) => d.replace(/^0+(?=[0-9])/, ''));
}

/** A digit run that starts with 0 and goes on: the only thing cacheKeyOf changes. */
const LEADING_ZERO = /(?:^|[^0-9])0[0-9]/;

function cstr(buf: Buffer, off: number): Buffer | undefined {
  if (off < 0 || off >= buf.length) return undefined;
  const end = buf.indexOf(0, off);
  if (end < 0 || end - off > MAX_STRING) return undefined;
  return buf.subarray(off, end);
}

/** An entry with its strings as text: UTF-8, as ldconfig wrote the file names it found. */
export function cacheEntry(key: Buffer, value: Buffer, flags: number, hwcap: bigint): LdCacheEntry {
  const v = utf8Text(value);
  const e: LdCacheEntry = { key: key.toString('utf8'), value: v ?? value.toString('utf8'), flags, hwcap };
  if (v === undefined) e.undecodable = true;
  return e;
}

export function corrupt(path: string, why: string): Result<never> {
  return fail(jailError('ld-cache-corrupt',
    `${path} is not a usable ld.so.cache (${why}). The loader ignores such a cache and searches only the default directories; ` +
    'regenerate the host\'s with ldconfig; `jail make` rewrites a jail\'s that it wrote.', { path }));
}

/**
 * Where the entries of a cache lie: the part of the header both a whole parse and a
 * binary search need. Strings are at offsets from `strings`, bounded by `stringsEnd`.
 */
export interface CacheTable {
  format: 'new' | 'old';
  le: boolean;
  /** Offset of the first entry, their count and size. */
  at: number;
  count: number;
  entrySize: number;
  strings: number;
  stringsEnd: number;
}

export function locateCacheTable(buf: Buffer, displayPath: string): Result<CacheTable> {
  const startsWith = (off: number, magic: string) =>
    buf.length >= off + magic.length && buf.toString('latin1', off, off + magic.length) === magic;

  let newAt = -1;
  let le = true;
  if (startsWith(0, MAGIC_NEW)) {
    newAt = 0;
  } else if (startsWith(0, MAGIC_OLD)) {
    if (buf.length <= OLD_HEADER) return corrupt(displayPath, 'truncated old-format header');
    // The old header's byte order is not recorded; the embedded new header says it.
    let nOld = buf.readUInt32LE(12);
    if (nOld * OLD_ENTRY > buf.length - OLD_HEADER) {
      nOld = buf.readUInt32BE(12);
      le = false;
    }
    if (nOld * OLD_ENTRY > buf.length - OLD_HEADER) return corrupt(displayPath, 'old-format entry count exceeds the file');
    const embedded = (OLD_HEADER + nOld * OLD_ENTRY + 7) & ~7;
    if (buf.length >= embedded + NEW_HEADER && startsWith(embedded, MAGIC_NEW)) {
      newAt = embedded;
    } else {
      const strBase = OLD_HEADER + nOld * OLD_ENTRY;
      return ok({ format: 'old', le, at: OLD_HEADER, count: nOld, entrySize: OLD_ENTRY, strings: strBase, stringsEnd: buf.length });
    }
  } else {
    return corrupt(displayPath, 'unknown magic');
  }

  if (buf.length < newAt + NEW_HEADER) return corrupt(displayPath, 'truncated header');
  const endianFlag = buf[newAt + 28]! & 3;
  if (endianFlag === 3) le = false;
  else if (endianFlag === 2) le = true;
  else if (endianFlag === 0 && newAt === 0) {
    // Unrecorded byte order (old writers): pick the reading whose count fits.
    const nLe = buf.readUInt32LE(newAt + 20);
    le = nLe * NEW_ENTRY <= buf.length - newAt - NEW_HEADER;
  } else if (endianFlag === 1) {
    return corrupt(displayPath, 'invalid byte-order flag');
  }
  const nlibs = le ? buf.readUInt32LE(newAt + 20) : buf.readUInt32BE(newAt + 20);
  if (nlibs * NEW_ENTRY > buf.length - newAt - NEW_HEADER) return corrupt(displayPath, 'entry count exceeds the file');
  return ok({ format: 'new', le, at: newAt + NEW_HEADER, count: nlibs, entrySize: NEW_ENTRY, strings: newAt, stringsEnd: buf.length });
}

export function parseLdCache(buf: Buffer, displayPath = '/etc/ld.so.cache'): Result<LdCache> {
  const located = locateCacheTable(buf, displayPath);
  if (!located.ok) return located;
  const t = located.value;
  const le = t.le;
  const strings = buf.subarray(t.strings, t.stringsEnd);
  const entries: LdCacheEntry[] = [];
  for (let i = 0; i < t.count; i++) {
    const o = t.at + i * t.entrySize;
    const flags = le ? buf.readInt32LE(o) : buf.readInt32BE(o);
    const key = cstr(strings, le ? buf.readUInt32LE(o + 4) : buf.readUInt32BE(o + 4));
    const value = cstr(strings, le ? buf.readUInt32LE(o + 8) : buf.readUInt32BE(o + 8));
    if (key === undefined) return corrupt(displayPath, `entry ${i} has a bad key offset`);
    if (value === undefined) continue; // _dl_cache_verify_ptr rejects just this entry
    const hwcap = t.format === 'old' ? 0n : le ? buf.readBigUInt64LE(o + 16) : buf.readBigUInt64BE(o + 16);
    entries.push(cacheEntry(key, value, flags, hwcap));
  }
  return ok(index(t.format, entries));
}

function index(format: 'new' | 'old', entries: LdCacheEntry[]): LdCache {
  const byKey = new Map<string, LdCacheEntry[]>();
  for (const e of entries) {
    const k = cacheKeyOf(e.key);
    const list = byKey.get(k);
    if (list) list.push(e);
    else byKey.set(k, [e]);
  }
  return { format, entries, byKey };
}

/**
 * True for entries the loader would not take on every CPU: glibc-hwcaps ones (bit 62 is
 * never among `taken`), and legacy ones with a bit outside `taken` (search_cache's
 * hwcap_exclude, with only the bits every CPU has).
 */
export function isHwcapEntry(e: LdCacheEntry, taken = 0n): boolean {
  return (e.hwcap & ~taken) !== 0n;
}

export function isGlibcHwcapsEntry(e: LdCacheEntry): boolean {
  // dl_cache_hwcap_extension: bit 62 set, ignoring the ISA-level bits and the low word.
  return ((e.hwcap >> 32n) & ~((1n << 10n) - 1n)) === HWCAP_EXTENSION >> 32n;
}

/**
 * search_cache() for one name: walk the entries with this key in file order (ldconfig puts
 * the most specific hwcap entries first), skip those the loader's flag check rejects and
 * hwcap entries with bits outside `hwcaps`; an entry with the loader's default id ends the
 * walk, otherwise the last acceptable one wins.
 */
export function lookupLdCache(cache: LdCache, name: string, flagsOk: (f: number) => boolean, defaultId: number, hwcaps = 0n): string | undefined {
  return lookupLdCacheEntry(cache, name, flagsOk, defaultId, hwcaps)?.value;
}

/** The entry search_cache() would choose, with its flags (a jail's own cache repeats them). */
export function lookupLdCacheEntry(cache: LdCache, name: string, flagsOk: (f: number) => boolean, defaultId: number, hwcaps = 0n): LdCacheEntry | undefined {
  const list = cache.byKey.get(cacheKeyOf(name));
  if (!list) return undefined;
  let best: LdCacheEntry | undefined;
  for (const e of list) {
    if (!flagsOk(e.flags)) continue;
    if (isHwcapEntry(e, hwcaps)) continue;
    best = e;
    if (e.flags === defaultId) break;
  }
  return best;
}
