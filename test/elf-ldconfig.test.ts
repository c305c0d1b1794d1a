// ld.so.cache parsing (checked against `ldconfig -p` on the host cache, plus hand-built
// caches in the old, combined and big-endian layouts) and ld.so.conf reading with includes.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheKeyOf, formatLdCache, libcmp, lookupLdCache, lookupLdCacheEntry, openLdCache, parseLdCache, readLdConf, RootPaths } from '../tasks/elf/index.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jail-elf-ldconfig-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface E { key: string; value: string; flags: number; hwcap?: bigint }

/** Build a cache image the way ldconfig lays it out. */
function buildCache(entries: E[], o: { old?: boolean; be?: boolean } = {}): Buffer {
  const le = !o.be;
  const strParts: Buffer[] = [];
  let strLen = 0;
  const strOffsets: [number, number][] = [];
  const newHeaderAt = o.old ? (16 + entries.length * 12 + 7) & ~7 : 0;
  const newStrBase = 48 + entries.length * 24;
  for (const e of entries) {
    const k = strLen;
    strParts.push(Buffer.from(e.key + '\0', 'latin1'));
    strLen += e.key.length + 1;
    const v = strLen;
    strParts.push(Buffer.from(e.value + '\0', 'latin1'));
    strLen += e.value.length + 1;
    strOffsets.push([k, v]);
  }
  const strings = Buffer.concat(strParts);
  const total = newHeaderAt + newStrBase + strings.length;
  const b = Buffer.alloc(total);
  const w32 = (off: number, v: number) => (le ? b.writeUInt32LE(v >>> 0, off) : b.writeUInt32BE(v >>> 0, off));
  if (o.old) {
    b.write('ld.so-1.7.0', 0, 'latin1');
    w32(12, entries.length);
    // Old-format string offsets are relative to the end of the old table.
    const oldStrBase = 16 + entries.length * 12;
    entries.forEach((e, i) => {
      const [k, v] = strOffsets[i] as [number, number];
      w32(16 + i * 12, e.flags);
      w32(20 + i * 12, newHeaderAt - oldStrBase + newStrBase + k);
      w32(24 + i * 12, newHeaderAt - oldStrBase + newStrBase + v);
    });
  }
  const h = newHeaderAt;
  b.write('glibc-ld.so.cache1.1', h, 'latin1');
  w32(h + 20, entries.length);
  w32(h + 24, strings.length);
  b[h + 28] = le ? 2 : 3;
  entries.forEach((e, i) => {
    const [k, v] = strOffsets[i] as [number, number];
    const o2 = h + 48 + i * 24;
    w32(o2, e.flags);
    w32(o2 + 4, newStrBase + k);
    w32(o2 + 8, newStrBase + v);
    const hw = e.hwcap ?? 0n;
    if (le) b.writeBigUInt64LE(hw, o2 + 16);
    else b.writeBigUInt64BE(hw, o2 + 16);
  });
  strings.copy(b, h + newStrBase);
  return b;
}

const X8664 = (f: number) => f === 0x303;

describe('ld.so.cache', () => {
  it('reads the host cache exactly as ldconfig -p lists it', () => {
    if (!fs.existsSync('/etc/ld.so.cache')) return;
    const r = parseLdCache(fs.readFileSync('/etc/ld.so.cache'));
    if (!r.ok) throw new Error(r.error.message);
    const listed = execFileSync('ldconfig', ['-p'], { encoding: 'utf8', env: { PATH: '/usr/sbin:/sbin:/usr/bin:/bin', LC_ALL: 'C' } })
      .split('\n').map((l) => l.match(/^\s+(\S+) \(([^)]*)\) => (\S+)$/)).filter((m): m is RegExpMatchArray => m !== null);
    expect(r.value.entries.length).toBe(listed.length);
    r.value.entries.forEach((e, i) => {
      const m = listed[i] as RegExpMatchArray;
      expect([e.key, e.value]).toEqual([m[1], m[3]]);
      if ((m[2] as string).includes('x86-64')) expect(e.flags).toBe(0x303);
    });
    // Every generic x86-64 entry is what a lookup of its key returns first.
    expect(lookupLdCache(r.value, 'libc.so.6', X8664, 0x303)).toBe('/lib/x86_64-linux-gnu/libc.so.6');
  });

  it('writes a cache that ldconfig lists in its own order and that reads back the same', () => {
    if (!fs.existsSync('/etc/ld.so.cache')) return;
    const host = parseLdCache(fs.readFileSync('/etc/ld.so.cache'));
    if (!host.ok) throw new Error(host.error.message);
    const generic = host.value.entries.filter((e) => e.hwcap === 0n);
    // Shuffled, so only formatLdCache's sort can put them back in ldconfig's order.
    const shuffled = [...generic].sort((a, b) => (a.value < b.value ? -1 : 1)).reverse();
    const file = path.join(tmp, 'written.cache');
    fs.writeFileSync(file, formatLdCache(shuffled.map(({ key, value, flags }) => ({ key, value, flags }))));
    const env = { PATH: '/usr/sbin:/sbin:/usr/bin:/bin', LC_ALL: 'C' };
    const lines = (args: string[]) => execFileSync('ldconfig', ['-p', ...args], { encoding: 'utf8', env }).split('\n').filter((l) => l.startsWith('\t') && !/hwcap/.test(l));
    expect(lines(['-C', file])).toEqual(lines([]));
    const back = parseLdCache(fs.readFileSync(file));
    if (!back.ok) throw new Error(back.error.message);
    for (const e of generic) expect(lookupLdCache(back.value, e.key, X8664, 0x303)).toBe(lookupLdCache(host.value, e.key, X8664, 0x303));
    expect(libcmp('libfoo.so.10', 'libfoo.so.9')).toBeGreaterThan(0);
    expect(libcmp('libfoo.so.1', 'libfoo.so.01')).toBe(0);
    expect(libcmp('liba.so', 'liba.so.1')).toBeLessThan(0);
  });

  it('skips hwcaps and wrong-ABI entries and prefers the exact default id', () => {
    const entries: E[] = [
      { key: 'libm.so.6', value: '/usr/lib/glibc-hwcaps/x86-64-v3/libm.so.6', flags: 0x303, hwcap: (1n << 62n) | 1n },
      { key: 'libm.so.6', value: '/usr/lib/x86_64/libm.so.6', flags: 0x303, hwcap: 1n << 63n },
      { key: 'libm.so.6', value: '/usr/lib32/libm.so.6', flags: 0x003 },
      { key: 'libm.so.6', value: '/usr/lib/libm.so.6', flags: 0x303 },
      { key: 'libm.so.6', value: '/usr/lib/later/libm.so.6', flags: 0x303 },
    ];
    const c = parseLdCache(buildCache(entries));
    if (!c.ok) throw new Error(c.error.message);
    expect(lookupLdCache(c.value, 'libm.so.6', X8664, 0x303)).toBe('/usr/lib/libm.so.6');
    // i386 rules accept plain libc6 entries.
    expect(lookupLdCache(c.value, 'libm.so.6', (f) => f === 1 || f === 3, 3)).toBe('/usr/lib32/libm.so.6');
    expect(lookupLdCache(c.value, 'libnothere.so', X8664, 0x303)).toBeUndefined();
  });

  it('compares digit runs numerically like _dl_cache_libcmp', () => {
    expect(cacheKeyOf('libz.so.01')).toBe(cacheKeyOf('libz.so.1'));
    expect(cacheKeyOf('libz.so.10')).not.toBe(cacheKeyOf('libz.so.1'));
    const c = parseLdCache(buildCache([{ key: 'libz.so.1', value: '/lib/libz.so.1', flags: 0x303 }]));
    if (!c.ok) throw new Error('parse');
    expect(lookupLdCache(c.value, 'libz.so.01', X8664, 0x303)).toBe('/lib/libz.so.1');
  });

  it('reads the new format embedded after the old table, and big-endian caches', () => {
    const entries: E[] = [{ key: 'liba.so.1', value: '/lib/liba.so.1', flags: 0x303 }, { key: 'libb.so.2', value: '/lib/libb.so.2', flags: 0x303 }];
    for (const o of [{ old: true }, { be: true }, { old: true, be: true }]) {
      const c = parseLdCache(buildCache(entries, o));
      if (!c.ok) throw new Error(`${JSON.stringify(o)}: ${c.error.message}`);
      expect(c.value.format).toBe('new');
      expect(lookupLdCache(c.value, 'libb.so.2', X8664, 0x303)).toBe('/lib/libb.so.2');
    }
  });

  it('reads an old-format-only cache', () => {
    const full = buildCache([{ key: 'libold.so.1', value: '/lib/libold.so.1', flags: 1 }], { old: true });
    // Drop the embedded new header: keep the old table and point its strings at a fresh table.
    const oldOnly = Buffer.alloc(16 + 12 + 64);
    full.copy(oldOnly, 0, 0, 28);
    oldOnly.writeUInt32LE(0, 20);
    oldOnly.writeUInt32LE(12, 24);
    oldOnly.write('libold.so.1\0/lib/libold.so.1\0', 28, 'latin1');
    const c = parseLdCache(oldOnly);
    if (!c.ok) throw new Error(c.error.message);
    expect(c.value.format).toBe('old');
    expect(lookupLdCache(c.value, 'libold.so.1', (f) => f === 1 || f === 3, 3)).toBe('/lib/libold.so.1');
  });

  it('rejects garbage and truncated caches with an error value', () => {
    for (const b of [Buffer.from('hello'), Buffer.alloc(0), buildCache([{ key: 'a', value: '/a', flags: 0x303 }]).subarray(0, 60)]) {
      const r = parseLdCache(b);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('ld-cache-corrupt');
    }
  });
});

describe('ld.so.conf', () => {
  it('follows include globs relative to the including file, beneath the root', () => {
    const root = path.join(tmp, 'confroot');
    const mk = (p: string) => fs.mkdirSync(path.join(root, p), { recursive: true });
    const put = (p: string, s: string) => {
      mk(path.dirname(p));
      fs.writeFileSync(path.join(root, p), s);
    };
    for (const d of ['opt/a', 'opt/b', 'opt/c', 'opt/d', 'opt/real', 'usr/local/lib']) mk(d);
    fs.symlinkSync('/opt/real', path.join(root, 'opt/alias'));
    put('etc/ld.so.conf', [
      '# comment',
      'include ld.so.conf.d/*.conf   /etc/extra/one.conf',
      '/usr/local/lib   # trailing comment',
      '/opt/missing',
      'hwcap 1 nosegneg',
    ].join('\n'));
    put('etc/ld.so.conf.d/10-b.conf', '/opt/b/\n');
    put('etc/ld.so.conf.d/05-a.conf', '  /opt/a=libc6\n');
    put('etc/ld.so.conf.d/.hidden.conf', '/opt/d\n');
    put('etc/ld.so.conf.d/notes.txt', '/opt/d\n');
    put('etc/ld.so.conf.d/20-loop.conf', 'include /etc/ld.so.conf.d/20-loop.conf\n/opt/real\n/opt/alias\n');
    put('etc/extra/one.conf', '/opt/c\n/opt/a\n');
    const conf = readLdConf(new RootPaths(root));
    expect(conf.dirs).toEqual(['/opt/a', '/opt/b', '/opt/real', '/opt/c', '/usr/local/lib']);
    expect(conf.files[0]).toBe('/etc/ld.so.conf');
    expect(conf.files).toContain('/etc/extra/one.conf');
    expect(conf.warnings.join()).toMatch(/nesting/);
  });

  it('reads the host configuration', () => {
    const conf = readLdConf(new RootPaths('/'));
    if (fs.existsSync('/etc/ld.so.conf.d/x86_64-linux-gnu.conf')) expect(conf.dirs).toContain('/lib/x86_64-linux-gnu');
  });
});

describe('ld.so.cache searched in place', () => {
  const I386 = (f: number) => f === 1 || f === 3;
  /** Names worth asking for besides the keys: other spellings of digit runs, prefixes, strangers. */
  const variants = (key: string) => [key, key.replace(/\.(\d+)/g, '.0$1'), key + '.1', key.replace(/\d+$/, '99'), key.slice(0, -1), key.toUpperCase()];
  const sameAnswers = (buf: Buffer, names: string[]) => {
    const whole = parseLdCache(buf);
    const index = openLdCache(buf);
    if (!whole.ok || !index.ok) throw new Error('cache should read');
    for (const name of names) {
      for (const [flagsOk, id] of [[X8664, 0x303], [I386, 3]] as const) {
        expect(index.value.lookup(name, flagsOk, id), name).toEqual(lookupLdCacheEntry(whole.value, name, flagsOk, id));
      }
    }
    return index.value;
  };

  it('answers every name of the host cache as the whole parse does, searching in place', () => {
    if (!fs.existsSync('/etc/ld.so.cache')) return;
    const buf = fs.readFileSync('/etc/ld.so.cache');
    const whole = parseLdCache(buf);
    if (!whole.ok) throw new Error(whole.error.message);
    const names = [...new Set(whole.value.entries.flatMap((e) => variants(e.key)))];
    expect(names.length).toBeGreaterThan(whole.value.entries.length);
    const index = sameAnswers(buf, [...names, '', 'a', '~', 'libc.so.6\0', 'libc.so.\u0136']);
    expect(index.inPlace).toBe(true);
    expect(index.lookup('libc.so.6', X8664, 0x303)?.value).toBe(lookupLdCache(whole.value, 'libc.so.6', X8664, 0x303));
  });

  it('answers as the whole parse does for caches written for a jail, in both byte orders', () => {
    const records = [
      ...['libfoo.so.9', 'libfoo.so.10', 'libfoo.so.1', 'libfoo.so', 'libfoo9.so', 'libfoo10.so', 'liba.so', 'liba.so.1', 'libZ.so.3', 'lib\xe9.so.2']
        .map((key, i) => ({ key, value: `/opt/x${i}/${key}`, flags: 0x303 })),
      { key: 'libm.so.6', value: '/usr/lib32/libm.so.6', flags: 0x003 },
      { key: 'libm.so.6', value: '/usr/lib/libm.so.6', flags: 0x303 },
      { key: 'libm.so.6', value: '/usr/libx32/libm.so.6', flags: 0x803 },
    ];
    for (const endian of ['le', 'be'] as const) {
      const buf = formatLdCache(records, endian);
      const index = sameAnswers(buf, records.flatMap((r) => variants(r.key)));
      expect(index.inPlace).toBe(true);
      expect(index.lookup('libfoo.so.010', X8664, 0x303)?.value).toBe('/opt/x1/libfoo.so.10');
      expect(index.lookup('libm.so.6', I386, 3)?.value).toBe('/usr/lib32/libm.so.6');
    }
  });

  it('parses an out-of-order cache whole, and skips entries whose value is bad', () => {
    const entries: E[] = [
      { key: 'liba.so.1', value: '/lib/liba.so.1', flags: 0x303 },
      { key: 'libc.so.1', value: '/lib/libc.so.1', flags: 0x303 },
      { key: 'libb.so.1', value: '/lib/libb.so.1', flags: 0x303 },
    ];
    const unsorted = sameAnswers(buildCache(entries), entries.flatMap((e) => variants(e.key)));
    expect(unsorted.inPlace).toBe(false);
    expect(unsorted.lookup('libb.so.1', X8664, 0x303)?.value).toBe('/lib/libb.so.1');

    const sortedEntries: E[] = [
      { key: 'libb.so.1', value: '/lib/first/libb.so.1', flags: 0x303 },
      { key: 'libb.so.1', value: '/lib/second/libb.so.1', flags: 0x303 },
      { key: 'liba.so.1', value: '/lib/liba.so.1', flags: 0x303 },
    ];
    const buf = buildCache(sortedEntries);
    // Point the first entry's value past the end of the file: only that entry is passed over.
    buf.writeUInt32LE(buf.length + 10, 48 + 8);
    const index = sameAnswers(buf, sortedEntries.flatMap((e) => variants(e.key)));
    expect(index.inPlace).toBe(true);
    expect(index.lookup('libb.so.1', X8664, 0x303)?.value).toBe('/lib/second/libb.so.1');

    // A bad key makes the whole cache unusable, as for the whole parse.
    buf.writeUInt32LE(buf.length + 10, 48 + 24 + 4);
    const bad = openLdCache(buf);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.code).toBe('ld-cache-corrupt');
  });

  it('searches old-format and combined caches in place', () => {
    const entries: E[] = [{ key: 'libb.so.2', value: '/lib/libb.so.2', flags: 0x303 }, { key: 'liba.so.1', value: '/lib/liba.so.1', flags: 0x303 }];
    for (const o of [{ old: true }, { be: true }, { old: true, be: true }]) {
      const index = sameAnswers(buildCache(entries, o), entries.flatMap((e) => variants(e.key)));
      expect(index.inPlace).toBe(true);
      expect(index.lookup('libb.so.2', X8664, 0x303)?.value).toBe('/lib/libb.so.2');
    }
  });
});
