// Writes an ld.so.cache in glibc's current format ("glibc-ld.so.cache1.1", no extensions)
// for a jail. The loader finds a library outside its built-in directories (/usr/local/lib,
// a directory from /etc/ld.so.conf.d) only through the cache, and a jail cannot run the
// host's ldconfig safely, so the build writes the few entries its programs need.

import { compareKeys } from './ld-cache-search.js';

export interface CacheRecord {
  /** The name the loader is asked for (a soname). */
  key: string;
  /** The path the loader opens for it, as seen inside the jail. */
  value: string;
  /** The host entry's flags (library kind and machine, e.g. 0x0303 for x86-64 libc6). */
  flags: number;
}

const MAGIC = 'glibc-ld.so.cache1.1';
const HEADER = 48;
const ENTRY = 24;
const FLAGS_LE = 2;
const FLAGS_BE = 3;

/**
 * _dl_cache_libcmp: runs of digits compare as numbers, so libfoo.so.10 sorts after
 * libfoo.so.9. The names as the cache holds them (UTF-8 bytes), compared by the same
 * function the lookup binary-searches with, so what is written is what is found.
 */
export function libcmp(a: string, b: string): number {
  const second = Buffer.from(b, 'utf8');
  return compareKeys(second, 0, 0, 0, second.length, Buffer.from(a, 'utf8'));
}

/**
 * The cache file: header, entries sorted as ldconfig sorts them (descending by libcmp,
 * which the loader's binary search relies on; higher flags first for equal keys), then
 * the NUL-terminated strings, whose offsets count from the start of the file.
 */
export function formatLdCache(records: readonly CacheRecord[], endian: 'le' | 'be' = 'le'): Buffer {
  const unique = new Map<string, CacheRecord>();
  for (const r of records) unique.set(`${r.key}\0${r.flags}`, r);
  const sorted = [...unique.values()].sort((a, b) => libcmp(b.key, a.key) || b.flags - a.flags);
  const stringsAt = HEADER + sorted.length * ENTRY;
  const strings: Buffer[] = [];
  const offsets = new Map<string, number>();
  let strLen = 0;
  const intern = (s: string): number => {
    let off = offsets.get(s);
    if (off === undefined) {
      off = stringsAt + strLen;
      offsets.set(s, off);
      const b = Buffer.from(s + '\0', 'utf8');
      strings.push(b);
      strLen += b.length;
    }
    return off;
  };
  const rows = sorted.map((r) => ({ flags: r.flags, key: intern(r.key), value: intern(r.value) }));
  const buf = Buffer.alloc(stringsAt + strLen);
  const le = endian === 'le';
  const u32 = (v: number, o: number) => (le ? buf.writeUInt32LE(v, o) : buf.writeUInt32BE(v, o));
  buf.write(MAGIC, 0, 'latin1');
  u32(sorted.length, 20);
  u32(strLen, 24);
  buf[28] = le ? FLAGS_LE : FLAGS_BE;
  rows.forEach((r, i) => {
    const o = HEADER + i * ENTRY;
    if (le) buf.writeInt32LE(r.flags, o); else buf.writeInt32BE(r.flags, o);
    u32(r.key, o + 4);
    u32(r.value, o + 8);
    // osversion (unused) and hwcap (0: a generic entry) stay zero.
  });
  Buffer.concat(strings).copy(buf, stringsAt);
  return buf;
}
