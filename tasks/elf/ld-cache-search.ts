// Looks names up in an ld.so.cache the way the loader does, by binary search over the
// entries (ldconfig sorts them by _dl_cache_libcmp, descending), reading only the few
// entries each search visits instead of making objects and strings for all of them. A
// cache whose entries are out of order (never written by ldconfig) is parsed whole, so the
// answers are those of parseLdCache for every file.

import { type Result, ok } from '../result.js';
import {
  cacheEntry, corrupt, isHwcapEntry, locateCacheTable, lookupLdCacheEntry, MAX_STRING, parseLdCache,
  type CacheTable, type LdCache, type LdCacheEntry,
} from './ld-cache.js';

/** A cache as the resolver holds it: searched in place, or (out of order) parsed whole. */
export interface LdCacheIndex {
  format: 'new' | 'old';
  /** True when searched in place; false for an out-of-order cache, parsed whole. */
  readonly inPlace: boolean;
  /** search_cache(): the entry chosen for name, with the rules of lookupLdCacheEntry. */
  lookup(name: string, flagsOk: (f: number) => boolean, defaultId: number, hwcaps?: bigint): LdCacheEntry | undefined;
}

/**
 * Checks what a whole parse would check (every key a string inside the table) and that the
 * keys are in ldconfig's order; only then is a binary search certain to see every entry
 * with the key asked for.
 */
export function openLdCache(buf: Buffer, displayPath = '/etc/ld.so.cache'): Result<LdCacheIndex> {
  const located = locateCacheTable(buf, displayPath);
  if (!located.ok) return located;
  const t = located.value;
  const ends = new Int32Array(t.count);
  let sorted = true;
  for (let i = 0; i < t.count; i++) {
    const k = stringAt(buf, t, u32(buf, t, t.at + i * t.entrySize + 4));
    if (k < 0) return corrupt(displayPath, `entry ${i} has a bad key offset`);
    ends[i] = k;
    if (sorted && i > 0 && compareKeys(buf, keyAt(buf, t, i - 1), ends[i - 1] as number, keyAt(buf, t, i), k) < 0) sorted = false;
  }
  if (!sorted) {
    const whole = parseLdCache(buf, displayPath);
    return whole.ok ? ok(wholeIndex(whole.value)) : whole;
  }
  return ok(new SortedCache(buf, t, ends));
}

function wholeIndex(c: LdCache): LdCacheIndex {
  return { format: c.format, inPlace: false, lookup: (name, flagsOk, defaultId, hwcaps) => lookupLdCacheEntry(c, name, flagsOk, defaultId, hwcaps) };
}

class SortedCache implements LdCacheIndex {
  readonly format: 'new' | 'old';
  readonly inPlace = true;

  /** keyEnds[i]: where entry i's key ends (its NUL), checked when the cache was opened. */
  constructor(private buf: Buffer, private t: CacheTable, private keyEnds: Int32Array) {
    this.format = t.format;
  }

  lookup(name: string, flagsOk: (f: number) => boolean, defaultId: number, hwcaps = 0n): LdCacheEntry | undefined {
    const { buf, t } = this;
    // Keys are bytes without NUL: no other name can equal one (nor be cut down to one).
    if (name.includes('\0')) return undefined;
    const want = Buffer.from(name, 'utf8');
    const cmp = (i: number) => compareKeys(buf, 0, 0, keyAt(buf, t, i), this.keyEnds[i] as number, want);
    let left = 0;
    let right = t.count - 1;
    while (left <= right) {
      let mid = (left + right) >>> 1;
      const c = cmp(mid);
      if (c !== 0) {
        // Descending order: a name that sorts below this key lies further on.
        if (c < 0) left = mid + 1;
        else right = mid - 1;
        continue;
      }
      while (mid > 0 && cmp(mid - 1) === 0) mid--;
      let best: LdCacheEntry | undefined;
      for (let i = mid; i < t.count && cmp(i) === 0; i++) {
        const o = t.at + i * t.entrySize;
        const flags = t.le ? buf.readInt32LE(o) : buf.readInt32BE(o);
        if (!flagsOk(flags)) continue;
        const hwcap = t.format === 'old' ? 0n : t.le ? buf.readBigUInt64LE(o + 16) : buf.readBigUInt64BE(o + 16);
        const valueEnd = stringAt(buf, t, u32(buf, t, o + 8));
        if (valueEnd < 0) continue; // _dl_cache_verify_ptr rejects just this entry
        const e = cacheEntry(buf.subarray(keyAt(buf, t, i), this.keyEnds[i]), buf.subarray(t.strings + u32(buf, t, o + 8), valueEnd), flags, hwcap);
        if (isHwcapEntry(e, hwcaps)) continue;
        best = e;
        if (flags === defaultId) break;
      }
      return best;
    }
    return undefined;
  }
}

function u32(buf: Buffer, t: CacheTable, o: number): number {
  return t.le ? buf.readUInt32LE(o) : buf.readUInt32BE(o);
}

function keyAt(buf: Buffer, t: CacheTable, i: number): number {
  return t.strings + u32(buf, t, t.at + i * t.entrySize + 4);
}

/** End (the NUL) of the string at table offset off, or -1 where parseLdCache's cstr gives up. */
function stringAt(buf: Buffer, t: CacheTable, off: number): number {
  const start = t.strings + off;
  if (off < 0 || start >= t.stringsEnd) return -1;
  const end = buf.indexOf(0, start);
  if (end < 0 || end >= t.stringsEnd || end - start > MAX_STRING) return -1;
  return end;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * _dl_cache_libcmp on bytes: runs of digits compare as numbers. Numbers are compared by
 * their digits without leading zeros (length, then digit by digit), so equality is exactly
 * cacheKeyOf's and no run is too long to compare. The first string is buf[a, aEnd), or
 * `other` when given; the second is buf[b, bEnd).
 */
export function compareKeys(buf: Buffer, a: number, aEnd: number, b: number, bEnd: number, other?: Buffer): number {
  const x = other ?? buf;
  let i = other ? 0 : a;
  const iEnd = other ? other.length : aEnd;
  let j = b;
  while (i < iEnd) {
    const c1 = x[i] as number;
    const c2 = j < bEnd ? (buf[j] as number) : 0;
    if (isDigit(c1)) {
      if (!isDigit(c2)) return 1;
      while (i < iEnd && x[i] === 0x30) i++;
      while (j < bEnd && buf[j] === 0x30) j++;
      let n1 = i;
      let n2 = j;
      while (n1 < iEnd && isDigit(x[n1] as number)) n1++;
      while (n2 < bEnd && isDigit(buf[n2] as number)) n2++;
      if (n1 - i !== n2 - j) return n1 - i - (n2 - j);
      for (; i < n1; i++, j++) if (x[i] !== buf[j]) return (x[i] as number) - (buf[j] as number);
    } else if (isDigit(c2)) {
      return -1;
    } else if (c1 !== c2) {
      return c1 - c2;
    } else {
      i++;
      j++;
    }
  }
  return j < bEnd ? -(buf[j] as number) : 0;
}
