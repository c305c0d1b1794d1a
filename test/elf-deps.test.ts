// `jail deps`: JSON shape for scripts, lddtree-like text for people, exit statuses, and
// speed when many paths share one resolver.

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankString, buildLib, buildProg, hasGcc } from '../fixtures/elf/build.js';
import { runDeps } from '../tasks/commands/deps.js';
import { Resolver, summarize } from '../tasks/elf/index.js';

let T: string;
beforeAll(() => {
  T = fs.mkdtempSync(path.join(os.tmpdir(), 'jail-elf-deps-'));
});
afterAll(() => {
  fs.rmSync(T, { recursive: true, force: true });
});

function run(args: string[]): { code: number; out: string[] } {
  const out: string[] = [];
  const code = runDeps(args, (l) => out.push(l));
  return { code, out };
}

describe('jail deps --json', () => {
  for (const prog of ['/bin/sh', '/usr/bin/ls']) {
    it(`prints the documented shape for ${prog}`, () => {
      const { code, out } = run(['--json', prog]);
      expect(code).toBe(0);
      expect(out.length).toBe(1);
      const doc = JSON.parse(out[0] as string) as Record<string, unknown>;
      expect(Object.keys(doc)).toEqual([prog]);
      const e = doc[prog] as Record<string, unknown>;
      expect(Object.keys(e).sort()).toEqual(['interpreter', 'libraries', 'missing', 'needed']);
      expect(e.interpreter).toBe('/lib64/ld-linux-x86-64.so.2');
      expect(e.needed).toEqual(expect.arrayContaining(['libc.so.6']));
      const libs = e.libraries as Record<string, string>;
      expect(libs['libc.so.6']).toBe('/lib/x86_64-linux-gnu/libc.so.6');
      for (const [k, v] of Object.entries(libs)) {
        expect(typeof k).toBe('string');
        expect(v.startsWith('/')).toBe(true);
      }
      expect(e.missing).toEqual([]);
    });
  }

  it('resolves inside --root and reports missing sonames with exit status 1', () => {
    if (!hasGcc()) return;
    const R = `${T}/root`;
    fs.mkdirSync(`${R}/usr/lib/x86_64-linux-gnu`, { recursive: true });
    fs.mkdirSync(`${R}/usr/lib64`, { recursive: true });
    fs.symlinkSync('usr/lib', `${R}/lib`);
    fs.symlinkSync('usr/lib64', `${R}/lib64`);
    fs.copyFileSync('/lib64/ld-linux-x86-64.so.2', `${R}/usr/lib64/ld-linux-x86-64.so.2`);
    fs.copyFileSync('/lib/x86_64-linux-gnu/libc.so.6', `${R}/usr/lib/x86_64-linux-gnu/libc.so.6`);
    const gone = buildLib(`${T}/build/libgone.so.1`, 'libgone.so.1');
    buildProg(`${R}/bin/prog`, { needs: [gone] });
    const { code, out } = run(['--root', R, '--json', '/bin/prog']);
    expect(code).toBe(1);
    const doc = JSON.parse(out.join('\n')) as Record<string, { libraries: Record<string, string>; missing: string[] }>;
    expect(doc['/bin/prog']).toEqual({
      interpreter: '/lib64/ld-linux-x86-64.so.2',
      needed: ['libgone.so.1', 'libc.so.6'],
      libraries: { 'libc.so.6': '/lib/x86_64-linux-gnu/libc.so.6', 'ld-linux-x86-64.so.2': '/lib64/ld-linux-x86-64.so.2' },
      missing: ['libgone.so.1'],
      warnings: [`/etc/ld.so.cache (in root ${R}) is missing, so the loader searches only RPATH, RUNPATH and its default directories ` +
        '(/lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib, /usr/lib), as this answer did. ' +
        'jail make gives a jail a cache only for libraries outside those directories, so most jails have none.'],
    });

    const tree = run(['--root', R, '/bin/prog']);
    expect(tree.code).toBe(1);
    expect(tree.out).toEqual(expect.arrayContaining([
      '/bin/prog (interpreter => /lib64/ld-linux-x86-64.so.2)',
      '    libgone.so.1 => not found',
      '    libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6',
      '        ld-linux-x86-64.so.2 => /lib64/ld-linux-x86-64.so.2',
    ]));
    expect(tree.out.join('\n')).toMatch(/missing: \/bin\/prog -> libgone\.so\.1/);
  });
});

describe('closure summaries shared by programs that look alike', () => {
  it('equal the summary of each program\'s own closure, for every program in /usr/bin', () => {
    const shared = new Resolver({ memoize: true });
    const own = new Resolver({});
    let compared = 0;
    for (const name of fs.readdirSync('/usr/bin').sort()) {
      const p = `/usr/bin/${name}`;
      const mine = own.closure(p);
      const s = shared.summary(p);
      expect(s.ok, p).toBe(mine.ok);
      if (!mine.ok || !s.ok) continue;
      // Same keys in the same order, same values.
      expect(JSON.stringify(s.value), p).toBe(JSON.stringify(summarize(mine.value)));
      compared++;
    }
    expect(compared).toBeGreaterThan(100);
  });

  it('are never shared by programs whose search paths use $ORIGIN', () => {
    if (!hasGcc()) return;
    const libs = ['one', 'two'].map((d) => buildLib(`${T}/origin/${d}/lib/libwhere.so.1`, 'libwhere.so.1'));
    const progs = ['one', 'two'].map((d, i) => buildProg(`${T}/origin/${d}/prog`, { needs: [libs[i] as string], runpath: '$ORIGIN/lib' }));
    const shared = new Resolver({ memoize: true });
    const [a, b] = progs.map((p) => shared.summary(p));
    if (!a?.ok || !b?.ok) throw new Error('summary');
    expect(a.value.libraries['libwhere.so.1']).toBe(libs[0]);
    expect(b.value.libraries['libwhere.so.1']).toBe(libs[1]);

    // The same two programs with an absolute RUNPATH look alike and share one answer.
    const abs = ['three', 'four'].map((d) => buildProg(`${T}/origin/${d}/prog`, { needs: [libs[0] as string], runpath: `${T}/origin/one/lib` }));
    const [c, d] = abs.map((p) => shared.summary(p));
    if (!c?.ok || !d?.ok) throw new Error('summary');
    expect(d.value).toBe(c.value);
    expect(c.value.libraries['libwhere.so.1']).toBe(libs[0]);
  });
});

describe('jail deps tree and errors', () => {
  it('prints each library\'s subtree once', () => {
    const { code, out } = run(['/usr/bin/ls']);
    expect(code).toBe(0);
    expect(out[0]).toBe('/usr/bin/ls (interpreter => /lib64/ld-linux-x86-64.so.2)');
    const libcLines = out.filter((l) => l.trim().startsWith('libc.so.6 =>'));
    expect(libcLines.length).toBeGreaterThanOrEqual(1);
    // libc's own dependency (the loader) is listed under its first appearance only.
    expect(out.filter((l) => l.trim().startsWith('ld-linux-x86-64.so.2 =>')).length).toBeLessThanOrEqual(libcLines.length + 1);
  });

  it.skipIf(!hasGcc())('labels a library loaded by dlopen, and a missing auxiliary, for what they are', () => {
    // A thread that exits makes glibc dlopen libgcc_s.so.1: the real loader says where from (test only).
    fs.writeFileSync(`${T}/thr.c`, '#include <pthread.h>\nstatic void *f(void *a) { pthread_exit(a); }\n' +
      'int main(void) { pthread_t t; pthread_create(&t, 0, f, 0); return pthread_join(t, 0); }\n');
    execFileSync('gcc', ['-pthread', '-o', `${T}/thr`, `${T}/thr.c`]);
    const trace = spawnSync(`${T}/thr`, [], { encoding: 'utf8', env: { LD_DEBUG: 'libs' } });
    expect(trace.status).toBe(0);
    const gcc = trace.stderr.match(/calling init: (\S*\/libgcc_s\.so\.1)/)?.[1];
    expect(gcc).toBeDefined();
    const thr = run([`${T}/thr`]);
    expect(thr.code).toBe(0);
    expect(thr.out).toContain(`    libgcc_s.so.1 => ${gcc} (loaded at run time by dlopen)`);
    expect(thr.out.join('\n')).not.toMatch(/the program itself/);

    // DT_AUXILIARY naming nothing: the loader goes on without it.
    const lib = buildLib(`${T}/aux/libaux.so.1`, 'libaux.so.1', { extra: ['-Wl,-f,libnone.so.1'] });
    const aux = buildProg(`${T}/aux/prog`, { needs: [lib], runpath: `${T}/aux` });
    const real = execFileSync('/lib64/ld-linux-x86-64.so.2', ['--list', aux]).toString();
    expect(real).toMatch(/libaux\.so\.1 => /);
    expect(real).not.toMatch(/libnone/);
    const a = run([aux]);
    expect(a.code).toBe(0);
    expect(a.out).toContain(`    libaux.so.1 => ${lib}`);
    expect(a.out).toContain('        libnone.so.1 => (auxiliary, not found: ignored by the loader)');
    expect(a.out.join('\n')).not.toMatch(/the program itself/);
  });

  it.skipIf(!hasGcc())('shows an empty NEEDED as the program itself, with a warning, and exits 0 as the program runs', () => {
    const ph = buildLib(`${T}/empty/build/libPLACEHOLDER.so.1`, 'libPLACEHOLDER.so.1');
    const mid = buildLib(`${T}/empty/lib/libmid.so.1`, 'libmid.so.1', { needs: [ph] });
    blankString(mid, 'libPLACEHOLDER.so.1');
    const prog = buildProg(`${T}/empty/m`, { needs: [mid], runpath: `${T}/empty/lib` });
    expect(spawnSync(prog).status).toBe(0);
    const t = run([prog]);
    expect(t.code).toBe(0);
    expect(t.out).toContain(`        "" => ${prog} (the program itself)`);
    expect(t.out.join('\n')).toMatch(/warning: .*libmid\.so\.1: a DT_NEEDED entry is the empty string, which the loader takes for the program itself/);
    const j = run(['--json', prog]);
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.out.join('\n')) as Record<string, { libraries: Record<string, string>; missing: string[] }>;
    expect(doc[prog]?.missing).toEqual([]);
    expect(doc[prog]?.libraries['libmid.so.1']).toBe(mid);
    expect(doc[prog]?.libraries['']).toBeUndefined();
  });

  it('exits 2 with a one-paragraph message for a non-ELF, a missing path, or bad options', () => {
    fs.writeFileSync(`${T}/script`, '#!/bin/sh\n');
    const a = run([`${T}/script`]);
    expect(a.code).toBe(2);
    expect(a.out).toHaveLength(1);
    expect(a.out[0]).toMatch(/not an ELF file/);
    expect(run([`${T}/nothing-here`]).code).toBe(2);
    expect(run(['--frobnicate', '/bin/sh']).code).toBe(2);
    expect(run([]).code).toBe(2);
    expect(run(['--root']).code).toBe(2);
    // make's ROOT=... is not how deps is told where to look, and nothing is resolved.
    const v = run(['ROOT=/var/virtual/apache', '/bin/sh']);
    expect(v).toEqual({ code: 2, out: [expect.stringMatching(/^jail deps: takes no VAR=value \(got ROOT=\/var\/virtual\/apache\); to resolve inside a jail, give --root DIR\./)] });
    const j = run(['--json', '/bin/sh', `${T}/script`]);
    expect(j.code).toBe(2);
    const doc = JSON.parse(j.out.join('\n')) as Record<string, { error?: { code: string } }>;
    expect(doc['/bin/sh']?.error).toBeUndefined();
    expect(doc[`${T}/script`]?.error?.code).toBe('elf-not-elf');
  });

  it('inside a jail without ld.so.cache, says what the loader does then, and never to run ldconfig in ROOT', () => {
    if (!hasGcc()) return;
    const R = `${T}/nocache`;
    fs.mkdirSync(`${R}/usr/lib/x86_64-linux-gnu`, { recursive: true });
    fs.mkdirSync(`${R}/usr/lib64`, { recursive: true });
    fs.mkdirSync(`${R}/etc`);
    fs.symlinkSync('usr/lib', `${R}/lib`);
    fs.symlinkSync('usr/lib64', `${R}/lib64`);
    fs.copyFileSync('/lib64/ld-linux-x86-64.so.2', `${R}/usr/lib64/ld-linux-x86-64.so.2`);
    fs.copyFileSync('/lib/x86_64-linux-gnu/libc.so.6', `${R}/usr/lib/x86_64-linux-gnu/libc.so.6`);
    buildProg(`${R}/bin/prog`, { needs: [] });
    const warnings = (args: string[]) => run(['--root', R, ...args]).out.filter((l) => l.startsWith('  warning: '));

    // A jail as jail make builds it when no library needs a cache: the loader's default directories hold everything.
    const plain = warnings(['/bin/prog']);
    expect(plain).toEqual([`  warning: /etc/ld.so.cache (in root ${R}) is missing, so the loader searches only RPATH, RUNPATH and its default directories ` +
      '(/lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib, /usr/lib), as this answer did. ' +
      'jail make gives a jail a cache only for libraries outside those directories, so most jails have none.']);

    // ld.so.conf names a directory: the answer finds a library there that the loader, reading no ld.so.conf, will not.
    const extra = buildLib(`${R}/opt/extra/libextra.so.1`, 'libextra.so.1');
    buildProg(`${R}/bin/prog-extra`, { needs: [extra] });
    fs.writeFileSync(`${R}/etc/ld.so.conf`, '/opt/extra\n');
    const conf = warnings(['/bin/prog-extra']);
    expect(conf).toHaveLength(1);
    expect(conf[0]).toMatch(/; it never reads ld\.so\.conf \(only ldconfig does\)\. This answer also searched \/opt\/extra, as a cache made from ld\.so\.conf would list them: a library found only there is one the loader will not find\./);
    // Scripts see the same warnings: --json carries them for each program that has any.
    const doc = JSON.parse(run(['--root', R, '--json', '/bin/prog-extra', '/bin/prog']).out[0] as string);
    expect(doc['/bin/prog-extra'].warnings).toEqual(conf.map((w) => w.slice('  warning: '.length)));
    expect(doc['/bin/prog-extra'].libraries['libextra.so.1']).toBe('/opt/extra/libextra.so.1');
    expect(doc['/bin/prog'].warnings).toEqual(warnings(['/bin/prog']).map((w) => w.slice('  warning: '.length)));
    expect(JSON.parse(run(['--json', '/bin/sh']).out[0] as string)['/bin/sh']).not.toHaveProperty('warnings');

    // A cache that is not one: the loader ignores it; still no ldconfig into ROOT.
    fs.writeFileSync(`${R}/etc/ld.so.cache`, 'not a cache at all, but long enough to have a header');
    const bad = warnings(['/bin/prog']);
    expect(bad.join('\n')).toMatch(/is not a usable ld\.so\.cache \(unknown magic\)\. The loader ignores such a cache and searches only the default directories; regenerate the host's with ldconfig; `jail make` rewrites a jail's that it wrote\./);
    for (const w of [...plain, ...conf, ...bad]) expect(w).not.toMatch(/ldconfig -r/);
  });

  it('handles hundreds of programs in one call quickly (one shared resolver)', () => {
    const progs = fs.readdirSync('/usr/bin').map((n) => `/usr/bin/${n}`)
      .filter((p) => fs.lstatSync(p).isFile()).slice(0, 300);
    const t0 = Date.now();
    const { out } = run(['--json', ...progs]);
    const ms = Date.now() - t0;
    const doc = JSON.parse(out.join('\n')) as Record<string, unknown>;
    expect(Object.keys(doc).length).toBe(progs.length);
    expect(ms).toBeLessThan(15_000);
  });
});
