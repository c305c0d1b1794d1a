// ELF parsing: real files, hand-crafted big-endian and 32-bit images, and damaged files,
// which must give error values (never exceptions, never reads outside the file).

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { craftElf, gcc, hasGcc } from '../fixtures/elf/build.js';
import { ELF_LIMITS, readElf } from '../tasks/elf/index.js';
import { HEAD_BYTES } from '../tasks/elf/file-reader.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jail-elf-file-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const write = (name: string, data: Buffer | string): string => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, data);
  return p;
};

describe('readElf on real files', () => {
  it('reads /bin/sh: a dynamic x86-64 program with an interpreter and libc', () => {
    const r = readElf('/bin/sh');
    expect(r.ok).toBe(true);
    if (!r.ok || !r.value) throw new Error('expected ELF');
    expect(r.value.class).toBe(64);
    expect(r.value.endian).toBe('le');
    expect(r.value.machine).toBe(62);
    expect(['exec', 'dyn']).toContain(r.value.type);
    expect(r.value.interpreter).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(r.value.needed).toContain('libc.so.6');
    expect(r.value.defects).toEqual([]);
  });

  it('reads libc: SONAME, and a library has no interpreter', () => {
    const r = readElf('/lib/x86_64-linux-gnu/libc.so.6');
    if (!r.ok || !r.value) throw new Error('expected ELF');
    expect(r.value.soname).toBe('libc.so.6');
    expect(r.value.type).toBe('dyn');
    expect(r.value.needed).toContain('ld-linux-x86-64.so.2');
    expect(r.value.abiTagOs).toBe(0);
  });

  it('returns null for files that are not ELF at all', () => {
    expect(readElf(write('script.sh', '#!/bin/sh\necho hi\n'))).toEqual({ ok: true, value: null });
    expect(readElf(write('empty', ''))).toEqual({ ok: true, value: null });
    expect(readElf(write('short', 'EL'))).toEqual({ ok: true, value: null });
  });

  it('refuses directories and device files without opening them for reading', () => {
    const d = readElf(tmp);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.error.code).toBe('elf-not-regular');
    const n = readElf('/dev/null');
    expect(n.ok).toBe(false);
    const missing = readElf(path.join(tmp, 'nope'));
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.error.code).toBe('elf-unreadable');
  });

  it('does not block on a FIFO', () => {
    const fifo = path.join(tmp, 'fifo');
    try {
      execFileSync('mkfifo', [fifo]);
    } catch {
      return;
    }
    const r = readElf(fifo);
    expect(r.ok).toBe(false);
  });
});

describe('hand-crafted images', () => {
  it('parses a big-endian ELF32 with interpreter, NEEDED, SONAME, RPATH and RUNPATH', () => {
    const img = craftElf({
      cls: 32, endian: 'be', machine: 20 /* EM_PPC */, interp: '/lib/ld.so.1',
      needed: ['libfoo.so.1', 'libbar.so.2'], soname: 'libbe.so.1', rpath: '/opt/a::/opt/b', runpath: '$ORIGIN/../lib',
      flags1: 0x800,
    });
    const r = readElf(write('be32.so', img));
    if (!r.ok || !r.value) throw new Error(JSON.stringify(r));
    expect(r.value).toMatchObject({
      class: 32, endian: 'be', machine: 20, type: 'dyn', interpreter: '/lib/ld.so.1',
      needed: ['libfoo.so.1', 'libbar.so.2'], soname: 'libbe.so.1',
      rpath: ['/opt/a', '', '/opt/b'], runpath: ['$ORIGIN/../lib'], flags1: 0x800, defects: [],
    });
  });

  it('parses big-endian ELF64 and little-endian ELF32 alike', () => {
    for (const [cls, endian] of [[64, 'be'], [32, 'le'], [64, 'le']] as const) {
      const r = readElf(write(`x-${cls}-${endian}`, craftElf({ cls, endian, machine: 62, needed: ['liba.so'], soname: 'libx.so' })));
      if (!r.ok || !r.value) throw new Error(JSON.stringify(r));
      expect(r.value.class).toBe(cls);
      expect(r.value.endian).toBe(endian);
      expect(r.value.needed).toEqual(['liba.so']);
    }
  });

  it('distinguishes an absent RPATH from an empty one', () => {
    const none = readElf(write('norpath', craftElf({ cls: 64, endian: 'le', machine: 62 })));
    const empty = readElf(write('emptyrunpath', craftElf({ cls: 64, endian: 'le', machine: 62, runpath: '' })));
    if (!none.ok || !none.value || !empty.ok || !empty.value) throw new Error('parse');
    expect(none.value.runpath).toEqual([]);
    expect(empty.value.runpath).toEqual(['']);
  });

  it('caps thousands of NEEDED entries with a warning', () => {
    const needed = Array.from({ length: 5000 }, (_, i) => `libn${i}.so`);
    const r = readElf(write('many.so', craftElf({ cls: 64, endian: 'le', machine: 62, needed })));
    if (!r.ok || !r.value) throw new Error('parse');
    expect(r.value.needed.length).toBe(ELF_LIMITS.maxNeeded);
    expect(r.value.warnings.join()).toMatch(/5000 DT_NEEDED/);
  });

  it('records header defects the loader treats as fatal', () => {
    const img = craftElf({ cls: 64, endian: 'le', machine: 62, osabi: 9 /* FreeBSD */ });
    const r = readElf(write('fbsd.so', img));
    if (!r.ok || !r.value) throw new Error('parse');
    expect(r.value.defects.join()).toMatch(/OS ABI/);
    const rel = readElf(write('rel.o', craftElf({ cls: 64, endian: 'le', machine: 62, type: 1 })));
    if (!rel.ok || !rel.value) throw new Error('parse');
    expect(rel.value.type).toBe('rel');
    expect(rel.value.defects.join()).toMatch(/ET_DYN/);
  });
});

describe('damaged files give error values, never exceptions', () => {
  it('every truncation of a real library is null, an error, or a consistent parse', () => {
    const src = fs.readFileSync('/lib/x86_64-linux-gnu/libz.so.1');
    const cuts = new Set<number>([0, 1, 3, 4, 5, 15, 16, 17, 51, 52, 63, 64, 65, 100, 200, 500, 1000, 4096, 8192, 20000, src.length - 1]);
    for (let i = 0; i < 40; i++) cuts.add(Math.floor((src.length * i) / 40));
    for (const n of cuts) {
      const p = write('trunc.so', src.subarray(0, n));
      const r = readElf(p);
      if (n < 4) expect(r).toEqual({ ok: true, value: null });
      else if (n < 64) expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code).toBe('elf-corrupt');
        expect(r.error.message).toContain(p);
      }
    }
  });

  it('survives random byte damage in headers, program headers and the dynamic section', () => {
    const src = fs.readFileSync('/bin/true');
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const p = path.join(tmp, 'fuzz');
    let errors = 0;
    for (let i = 0; i < 400; i++) {
      const b = Buffer.from(src);
      const flips = 1 + rnd(8);
      for (let k = 0; k < flips; k++) {
        // Mostly the first 4 KiB, where the headers and dynamic pointers live.
        const at = rnd(10) < 8 ? rnd(Math.min(4096, b.length)) : rnd(b.length);
        b[at] = rnd(256);
      }
      fs.writeFileSync(p, b);
      const r = readElf(p);
      if (!r.ok) errors++;
    }
    expect(errors).toBeGreaterThan(0);
  });

  it('rejects pointers out of the file: program headers, strings, PT_INTERP', () => {
    const img = craftElf({ cls: 64, endian: 'le', machine: 62, interp: '/lib64/ld.so', needed: ['liba.so'] });
    const badPhoff = Buffer.from(img);
    badPhoff.writeBigUInt64LE(0xffffffffn, 32);
    const r1 = readElf(write('badphoff', badPhoff));
    expect(r1.ok).toBe(false);

    const huge = Buffer.from(img);
    huge.writeBigUInt64LE(0xffffffffffffff00n, 32);
    expect(readElf(write('hugephoff', huge)).ok).toBe(false);

    // DT_NEEDED string offset beyond DT_STRSZ.
    const dynOff = img.length - 4 * 16;
    const badStr = Buffer.from(img);
    badStr.writeBigUInt64LE(0x7fffffn, dynOff + 8);
    const r3 = readElf(write('badstr', badStr));
    expect(r3.ok).toBe(false);
    if (!r3.ok) expect(r3.error.message).toMatch(/DT_NEEDED/);

    // An unterminated interpreter string.
    const noNul = Buffer.from(img);
    const at = noNul.indexOf('/lib64/ld.so\0', 0, 'latin1');
    noNul[at + '/lib64/ld.so'.length] = 0x41;
    expect(readElf(write('nonul', noNul)).ok).toBe(false);
  });
});

// The reader takes the first HEAD_BYTES of a file in one read and reads anything beyond
// separately: files whose string table or dynamic section lie past that window must read
// the same as small ones.
describe.skipIf(!hasGcc())('structures beyond the first read', () => {
  /** Section [offset, offset + size) as readelf reports it. */
  const section = (file: string, name: string): { off: number; size: number } => {
    const line = execFileSync('readelf', ['-SW', file], { encoding: 'utf8' })
      .split('\n').find((l) => l.includes(` ${name} `));
    if (!line) throw new Error(`no ${name} in ${file}`);
    const f = line.replace(/^.*\]\s*/, '').trim().split(/\s+/);
    return { off: parseInt(f[3] as string, 16), size: parseInt(f[4] as string, 16) };
  };

  it('takes every string from a string table larger than the window, and finds an unwind import at its end', () => {
    // Thousands of long exported names make .dynstr bigger than the window; the
    // pthread_exit import is named last, so it sits near the table's end.
    const names = Array.from({ length: 3000 }, (_, i) => `jail_fixture_exported_function_with_a_long_name_${i}`);
    const src = path.join(tmp, 'bigstr.c');
    fs.writeFileSync(src, names.map((n) => `int ${n}(void) { return ${names.indexOf(n)}; }\n`).join('') +
      '#include <pthread.h>\nvoid jail_fixture_leave(void) { pthread_exit(0); }\n');
    const out = path.join(tmp, 'libbigstr.so.1');
    gcc(['-shared', '-fPIC', '-o', out, src, '-Wl,-soname,libbigstr.so.1', '-Wl,--enable-new-dtags', '-Wl,-rpath,/opt/big/lib:$ORIGIN', '-lpthread']);
    expect(section(out, '.dynstr').size).toBeGreaterThan(HEAD_BYTES);
    const r = readElf(out);
    if (!r.ok || !r.value) throw new Error(JSON.stringify(r));
    expect(r.value.soname).toBe('libbigstr.so.1');
    expect(r.value.needed).toContain('libc.so.6');
    expect(r.value.runpath).toEqual(['/opt/big/lib', '$ORIGIN']);
    expect(r.value.dlopens).toEqual(['libgcc_s.so.1']);
  });

  it('reads a dynamic section that lies past the window', () => {
    // 256 KiB of read-only data pushes the writable segment, and .dynamic with it, far out.
    const src = path.join(tmp, 'bigdata.c');
    fs.writeFileSync(src, 'const char jail_fixture_blob[256 * 1024] = { 1 };\nint jail_fixture_symbol(void) { return jail_fixture_blob[7]; }\n');
    const out = path.join(tmp, 'libbigdata.so.2');
    gcc(['-shared', '-fPIC', '-o', out, src, '-Wl,--no-as-needed', '-Wl,-soname,libbigdata.so.2', '-Wl,--disable-new-dtags', '-Wl,-rpath,/opt/data']);
    expect(section(out, '.dynamic').off).toBeGreaterThan(HEAD_BYTES);
    const r = readElf(out);
    if (!r.ok || !r.value) throw new Error(JSON.stringify(r));
    expect(r.value).toMatchObject({ soname: 'libbigdata.so.2', rpath: ['/opt/data'], runpath: [], dlopens: [], dynamic: true });
    expect(r.value.needed).toContain('libc.so.6');

    // Truncated inside the dynamic section: an error value, not a short buffer.
    const dyn = section(out, '.dynamic');
    const cut = write('libbigdata-cut.so', fs.readFileSync(out).subarray(0, dyn.off + 8));
    const c = readElf(cut);
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.error.code).toBe('elf-corrupt');
  });
});
