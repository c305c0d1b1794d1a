// Library search order on gcc-built fixtures: $ORIGIN, RPATH inheritance versus RUNPATH,
// symlinked libraries, missing dependencies with their chain, wrong-class and corrupt
// candidates, $LIB/$PLATFORM, -z nodefaultlib, cycles, and resolution inside another root.

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankString, buildLib, buildProg, canBuild32, craftElf, hasGcc, LIB_C, patchedCopy, swapDynamic } from '../fixtures/elf/build.js';
import { ElfFactsCache, Resolver, RootPaths, type Closure } from '../tasks/elf/index.js';

let T: string;
const gccOk = hasGcc();

beforeAll(() => {
  T = fs.mkdtempSync(path.join(os.tmpdir(), 'jail-elf-resolve-'));
});
afterAll(() => {
  fs.rmSync(T, { recursive: true, force: true });
});

function closureOf(p: string, opts: ConstructorParameters<typeof Resolver>[0] = {}): Closure {
  const r = new Resolver(opts).closure(p);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';

describe.skipIf(!gccOk)('search order on gcc-built fixtures', () => {
  it('RUNPATH with $ORIGIN follows the program\'s real directory, and a library\'s own $ORIGIN its opened path', () => {
    const one = buildLib(`${T}/app/lib/libone.so.1`, 'libone.so.1');
    const three = buildLib(`${T}/app/lib/private/libthree.so.1`, 'libthree.so.1');
    const two = buildLib(`${T}/app/lib/libtwo.so.1`, 'libtwo.so.1', { needs: [three], runpath: '$ORIGIN/private' });
    const prog = buildProg(`${T}/app/bin/prog`, { needs: [one, two], runpath: '$ORIGIN/../lib' });
    const c = closureOf(prog);
    expect(c.needed).toEqual(['libone.so.1', 'libtwo.so.1', 'libc.so.6']);
    expect(c.libraries).toEqual({
      'libone.so.1': `${T}/app/bin/../lib/libone.so.1`,
      'libtwo.so.1': `${T}/app/bin/../lib/libtwo.so.1`,
      'libc.so.6': LIBC,
      'libthree.so.1': `${T}/app/bin/../lib/private/libthree.so.1`,
      'ld-linux-x86-64.so.2': '/lib64/ld-linux-x86-64.so.2',
    });
    expect(c.missing).toEqual([]);
    expect(c.warnings.join('\n')).toMatch(/\$ORIGIN in its RUNPATH.*\/proc/);

    // Started through a symlink elsewhere: /proc/self/exe still names the real file.
    fs.mkdirSync(`${T}/elsewhere`, { recursive: true });
    fs.symlinkSync(prog, `${T}/elsewhere/prog-link`);
    const viaLink = closureOf(`${T}/elsewhere/prog-link`);
    expect(viaLink.libraries['libone.so.1']).toBe(`${T}/app/bin/../lib/libone.so.1`);
    expect(viaLink.path).toBe(`${T}/elsewhere/prog-link`);

    // A dlopen'ed library on its own: its closure uses its own RUNPATH.
    const lib = closureOf(two);
    expect(lib.interpreter).toBeUndefined();
    expect(lib.libraries['libthree.so.1']).toBe(`${T}/app/lib/private/libthree.so.1`);
  });

  it('DT_RPATH is inherited down the loading chain; DT_RUNPATH is not', () => {
    const gc = buildLib(`${T}/rp/gc/libgc.so.1`, 'libgc.so.1');
    const a = buildLib(`${T}/rp/a/liba.so.1`, 'liba.so.1', { needs: [gc] });
    const dirs = `${T}/rp/a:${T}/rp/gc`;
    const withRpath = closureOf(buildProg(`${T}/rp/prog-rpath`, { needs: [a], rpath: dirs }));
    expect(withRpath.libraries['libgc.so.1']).toBe(`${T}/rp/gc/libgc.so.1`);
    expect(withRpath.missing).toEqual([]);

    const withRunpath = closureOf(buildProg(`${T}/rp/prog-runpath`, { needs: [a], runpath: dirs }));
    expect(withRunpath.libraries['liba.so.1']).toBe(`${T}/rp/a/liba.so.1`);
    expect(withRunpath.libraries['libgc.so.1']).toBeUndefined();
    expect(withRunpath.missing).toEqual([
      { soname: 'libgc.so.1', chain: [`${T}/rp/prog-runpath`, 'liba.so.1', 'libgc.so.1'], reason: 'not found in any searched directory' },
    ]);
    // Every place the loader looked is recorded, so a later appearance can trigger a rebuild.
    expect(withRunpath.probes).toEqual(expect.arrayContaining([
      '/lib/x86_64-linux-gnu/libgc.so.1', '/usr/lib/x86_64-linux-gnu/libgc.so.1', '/lib/libgc.so.1', '/usr/lib/libgc.so.1',
    ]));

    // A requester with its own RUNPATH turns off every RPATH, the program's included.
    const a2 = buildLib(`${T}/rp/a2/liba2.so.1`, 'liba2.so.1', { needs: [gc], runpath: `${T}/rp/nowhere` });
    const c = closureOf(buildProg(`${T}/rp/prog-rpath2`, { needs: [a2], rpath: `${T}/rp/a2:${T}/rp/gc` }));
    expect(c.missing.map((m) => m.chain)).toEqual([[`${T}/rp/prog-rpath2`, 'liba2.so.1', 'libgc.so.1']]);
    expect(c.probes).toContain(`${T}/rp/nowhere/libgc.so.1`);
  });

  it('a library reached through a symlink chain keeps the name the loader opened', () => {
    const real = buildLib(`${T}/sym/libfoo.so.1.0`, 'libfoo.so.1');
    fs.symlinkSync('libfoo.so.1.0', `${T}/sym/libfoo.so.1`);
    fs.symlinkSync('libfoo.so.1', `${T}/sym/libfoo.so`);
    fs.mkdirSync(`${T}/sym2`);
    fs.symlinkSync(`${T}/sym`, `${T}/sym2/dir`);
    const prog = buildProg(`${T}/sym/prog`, { needs: [`${T}/sym/libfoo.so`], runpath: `${T}/sym2/dir` });
    const c = closureOf(prog);
    expect(c.needed[0]).toBe('libfoo.so.1');
    expect(c.libraries['libfoo.so.1']).toBe(`${T}/sym2/dir/libfoo.so.1`);
    expect(fs.realpathSync(c.libraries['libfoo.so.1'] as string)).toBe(real);
  });

  it('skips a library of the wrong ELF class or machine earlier in the path', () => {
    const good = buildLib(`${T}/wc/d64/libw.so.1`, 'libw.so.1');
    let wrongClass: string;
    if (canBuild32(T)) wrongClass = buildLib(`${T}/wc/d32/libw.so.1`, 'libw.so.1', { m32: true });
    else wrongClass = patchedCopy(good, `${T}/wc/d32/libw.so.1`, [[4, [1]]]); // EI_CLASS = ELFCLASS32
    patchedCopy(good, `${T}/wc/arm/libw.so.1`, [[18, [183, 0]]]); // e_machine = EM_AARCH64
    const prog = buildProg(`${T}/wc/prog`, { needs: [good], runpath: `${T}/wc/d32:${T}/wc/arm:${T}/wc/d64` });
    const c = closureOf(prog);
    expect(c.libraries['libw.so.1']).toBe(`${T}/wc/d64/libw.so.1`);
    expect(c.skipped).toEqual([
      { path: wrongClass, reason: 'wrong ELF class: ELFCLASS32' },
      { path: `${T}/wc/arm/libw.so.1`, reason: 'wrong machine (e_machine 183, the program has 62)' },
    ]);

    const only32 = closureOf(buildProg(`${T}/wc/prog32only`, { needs: [good], runpath: `${T}/wc/d32` }));
    expect(only32.missing).toEqual([{ soname: 'libw.so.1', chain: [`${T}/wc/prog32only`, 'libw.so.1'], reason: 'only candidates of another ELF class or machine were found' }]);
  });

  it('a corrupt or non-ELF candidate stops the search, as it stops the loader', () => {
    const good = buildLib(`${T}/bad/good/libw.so.1`, 'libw.so.1');
    fs.mkdirSync(`${T}/bad/trunc`, { recursive: true });
    fs.writeFileSync(`${T}/bad/trunc/libw.so.1`, fs.readFileSync(good).subarray(0, 100));
    fs.mkdirSync(`${T}/bad/text`, { recursive: true });
    fs.writeFileSync(`${T}/bad/text/libw.so.1`, 'INPUT(-lw)\n');
    const t = closureOf(buildProg(`${T}/bad/prog-trunc`, { needs: [good], runpath: `${T}/bad/trunc:${T}/bad/good` }));
    expect(t.libraries['libw.so.1']).toBeUndefined();
    expect(t.missing[0]?.reason).toMatch(new RegExp(`the loader stops at ${T}/bad/trunc/libw.so.1: .*broken`));
    const x = closureOf(buildProg(`${T}/bad/prog-text`, { needs: [good], runpath: `${T}/bad/text:${T}/bad/good` }));
    expect(x.missing[0]?.reason).toMatch(/invalid ELF header/);
  });

  it('expands $LIB and $PLATFORM like Debian\'s ld.so, and leaves unknown tokens literal', () => {
    const l = buildLib(`${T}/dst/lib/x86_64-linux-gnu/libl.so.1`, 'libl.so.1');
    const p = buildLib(`${T}/dst/x86_64/p/libp.so.1`, 'libp.so.1');
    const x = buildLib(`${T}/dst/$LIBX/libx.so.1`, 'libx.so.1');
    const prog = buildProg(`${T}/dst/prog`, { needs: [l, p, x], runpath: `${T}/dst/$LIB:${T}/dst/\${PLATFORM}/p:${T}/dst/$LIBX` });
    const c = closureOf(prog);
    expect(c.libraries['libl.so.1']).toBe(`${T}/dst/lib/x86_64-linux-gnu/libl.so.1`);
    expect(c.libraries['libp.so.1']).toBe(`${T}/dst/x86_64/p/libp.so.1`);
    expect(c.libraries['libx.so.1']).toBe(`${T}/dst/$LIBX/libx.so.1`);
    const other = closureOf(prog, { dstLib: 'lib64' });
    expect(other.probes).toContain(`${T}/dst/lib64/libl.so.1`);
  });

  it('-z nodefaultlib keeps the requester away from the cache and the system directories', () => {
    const one = buildLib(`${T}/ndl/libone.so.1`, 'libone.so.1');
    const c = closureOf(buildProg(`${T}/ndl/prog`, { needs: [one], runpath: `${T}/ndl`, extra: ['-Wl,-z,nodefaultlib'] }));
    expect(c.libraries['libone.so.1']).toBe(`${T}/ndl/libone.so.1`);
    expect(c.missing.map((m) => m.soname)).toEqual(['libc.so.6']);
  });

  it('a NEEDED that failed stays not found, unless an object loaded it before', () => {
    const libm = '/lib/x86_64-linux-gnu/libm.so.6';
    // libndl needs libm.so.6, which only the default directories hold, and may not look there.
    const ndl = buildLib(`${T}/ndl2/libndl.so`, 'libndl.so', { extra: ['-Wl,-z,nodefaultlib', '-lm'] });
    const usesM = buildLib(`${T}/ndl2/libusesm.so`, 'libusesm.so', { extra: ['-lm'] });
    // libusesm, processed after libndl, would find libm there: the loader has stopped already.
    const fails = buildProg(`${T}/ndl2/fails`, { needs: [ndl, usesM], runpath: `${T}/ndl2` });
    expect(spawnSync(fails).status).toBe(127);
    const c = closureOf(fails);
    expect(c.missing.map((m) => m.chain)).toEqual([[fails, 'libndl.so', 'libm.so.6']]);
    expect(c.libraries['libm.so.6']).toBeUndefined();
    expect(c.graph[`${T}/ndl2/libusesm.so`]).toContain('libm.so.6');
    // The program loading libm.so.6 itself first: libndl's request finds it by name.
    const runs = buildProg(`${T}/ndl2/runs`, { needs: [ndl], runpath: `${T}/ndl2`, extra: ['-lm'] });
    expect(spawnSync(runs).status).toBe(0);
    const d = closureOf(runs);
    expect(d.missing).toEqual([]);
    expect(d.libraries['libm.so.6']).toBe(libm);
  });

  it('terminates on a NEEDED cycle and reports it', () => {
    const b0 = buildLib(`${T}/cyc/libb.so.1`, 'libb.so.1');
    const a = buildLib(`${T}/cyc/liba.so.1`, 'liba.so.1', { needs: [b0], runpath: `${T}/cyc` });
    buildLib(`${T}/cyc/libb.so.1`, 'libb.so.1', { needs: [a], runpath: `${T}/cyc` });
    const c = closureOf(buildProg(`${T}/cyc/prog`, { needs: [a], runpath: `${T}/cyc` }));
    expect(Object.keys(c.libraries).sort()).toEqual(['ld-linux-x86-64.so.2', 'liba.so.1', 'libb.so.1', 'libc.so.6']);
    expect(c.warnings.join('\n')).toMatch(/dependency cycle: liba\.so\.1 -> libb\.so\.1 -> liba\.so\.1/);
  });

  it('reports a library that needs itself, and no cycle for an edge back up the load order', () => {
    // Linked against a twin elsewhere (a file cannot be linked against itself); its NEEDED names its own SONAME.
    const twin = buildLib(`${T}/cyc2/twin/libself.so.1`, 'libself.so.1');
    const self = buildLib(`${T}/cyc2/libself.so.1`, 'libself.so.1', { needs: [twin], runpath: `${T}/cyc2` });
    const c = closureOf(buildProg(`${T}/cyc2/prog`, { needs: [self], runpath: `${T}/cyc2` }));
    expect(c.warnings.join('\n')).toMatch(/dependency cycle: libself\.so\.1 -> libself\.so\.1/);

    // prog needs libb then liba, and liba needs libb: libb is loaded first, so liba's edge
    // leads back up the load order without closing a cycle.
    const b = buildLib(`${T}/cyc2/libdb.so.1`, 'libdb.so.1');
    const a = buildLib(`${T}/cyc2/libda.so.1`, 'libda.so.1', { needs: [b], runpath: `${T}/cyc2` });
    const d = closureOf(buildProg(`${T}/cyc2/diamond`, { needs: [b, a], runpath: `${T}/cyc2` }));
    expect(Object.keys(d.libraries)).toContain('libda.so.1');
    expect(d.graph[`${T}/cyc2/libda.so.1`]).toContain('libdb.so.1');
    expect(d.warnings.filter((w) => w.startsWith('dependency cycle'))).toEqual([]);
  });

  it('an absolute NEEDED path is opened as is; a relative one is refused', () => {
    const nos = `${T}/abs/libnosoname.so`;
    fs.mkdirSync(path.dirname(nos), { recursive: true });
    execFileSync('gcc', ['-shared', '-fPIC', '-o', nos, LIB_C]);
    const c = closureOf(buildProg(`${T}/abs/prog`, { needs: [nos] }));
    expect(c.needed[0]).toBe(nos);
    expect(c.libraries[nos]).toBe(nos);

    const rel = `${T}/abs/rel-main`;
    fs.writeFileSync(rel, craftElf({ cls: 64, endian: 'le', machine: 62, needed: ['../x/libq.so'] }));
    const r = closureOf(rel);
    expect(r.missing[0]).toMatchObject({ soname: '../x/libq.so', reason: expect.stringMatching(/relative/) });
  });

  it('a hard link of a loaded library is opened by its own name, then reused as the same object', () => {
    const dep = buildLib(`${T}/hl/libhdep.so.1`, 'libhdep.so.1');
    execFileSync('gcc', ['-shared', '-fPIC', '-o', `${T}/hl/libh1.so`, LIB_C, '-Wl,--no-as-needed', dep, '-Wl,--enable-new-dtags', `-Wl,-rpath,${T}/hl`]);
    fs.linkSync(`${T}/hl/libh1.so`, `${T}/hl/libh2.so`);
    const prog = buildProg(`${T}/hl/prog`, { runpath: `${T}/hl`, extra: [`-L${T}/hl`, '-l:libh1.so', '-l:libh2.so'] });
    expect(spawnSync(prog).status).toBe(0);
    const c = closureOf(prog);
    // The loader opens libh2.so by its name before its same-file check: that path must exist.
    expect(c.libraries['libh1.so']).toBe(`${T}/hl/libh1.so`);
    expect(c.libraries['libh2.so']).toBe(`${T}/hl/libh2.so`);
    // One object: its NEEDED are walked once, and still found.
    expect(c.libraries['libhdep.so.1']).toBe(dep);
    expect(Object.keys(c.graph)).not.toContain(`${T}/hl/libh2.so`);
    expect(c.missing).toEqual([]);
  });

  it('bounds absurd NEEDED counts', () => {
    const many = `${T}/many-needed`;
    fs.writeFileSync(many, craftElf({ cls: 64, endian: 'le', machine: 62, needed: Array.from({ length: 3000 }, (_, i) => `libm${i}.so`) }));
    const t0 = Date.now();
    const c = closureOf(many, { systemDirs: ['/nonexistent'] });
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(c.missing.length).toBe(3000);
    expect(c.warnings.join('\n')).toMatch(/3000 DT_NEEDED entries, an absurd number/);
  });

  it('reports non-ELF and missing programs as error values', () => {
    fs.writeFileSync(`${T}/script`, '#!/bin/sh\n');
    const r = new Resolver();
    const s = r.closure(`${T}/script`);
    expect(s.ok).toBe(false);
    if (!s.ok) expect(s.error.code).toBe('elf-not-elf');
    const m = r.closure(`${T}/does-not-exist`);
    if (!m.ok) expect(m.error.code).toBe('elf-missing');
    else throw new Error('expected an error');
    // A static program has no closure and no interpreter.
    const st = r.closure('/sbin/ldconfig');
    if (!st.ok) throw new Error(st.error.message);
    expect(st.value.libraries).toEqual({});
  });
});

describe.skipIf(!gccOk)('resolution inside another root', () => {
  let R: string;
  beforeAll(() => {
    R = `${T}/root`;
    const mk = (p: string) => fs.mkdirSync(path.join(R, p), { recursive: true });
    mk('usr/lib/x86_64-linux-gnu');
    mk('usr/lib64');
    mk('bin');
    mk('etc');
    fs.copyFileSync(LIBC, `${R}/usr/lib/x86_64-linux-gnu/libc.so.6`);
    fs.copyFileSync('/lib64/ld-linux-x86-64.so.2', `${R}/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2`);
    fs.symlinkSync('usr/lib', `${R}/lib`);
    // Absolute links: they must be followed inside the root, never on the host.
    fs.symlinkSync('/usr/lib64', `${R}/lib64`);
    fs.symlinkSync('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', `${R}/usr/lib64/ld-linux-x86-64.so.2`);
    // A library that exists on the host only, linked to from inside the root.
    buildLib(`${T}/hostonly/libhost.so.1`, 'libhost.so.1');
    fs.symlinkSync(`${T}/hostonly/libhost.so.1`, `${R}/usr/lib/x86_64-linux-gnu/libhost.so.1`);
    buildLib(`${R}/opt/app/lib/libone.so.1`, 'libone.so.1');
    buildProg(`${R}/bin/prog`, {
      needs: [`${R}/opt/app/lib/libone.so.1`, `${T}/hostonly/libhost.so.1`],
      runpath: `/opt/app/lib:/../../../..${T}/hostonly`,
    });
  });

  it('follows symlinks inside the root and never escapes it', () => {
    const c = closureOf('/bin/prog', { root: R });
    expect(c.interpreter).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(c.libraries).toEqual({
      'libone.so.1': '/opt/app/lib/libone.so.1',
      'libc.so.6': '/lib/x86_64-linux-gnu/libc.so.6',
      'ld-linux-x86-64.so.2': '/lib64/ld-linux-x86-64.so.2',
    });
    expect(c.missing.map((m) => m.soname)).toEqual(['libhost.so.1']);
    // '..' stops at the root: the host directory of that name is never looked at.
    expect(c.probes).toEqual(expect.arrayContaining([`/../../../..${T}/hostonly/libhost.so.1`, '/lib/x86_64-linux-gnu/libhost.so.1']));
    expect(c.warnings.join('\n')).toMatch(/ld\.so\.cache.* is missing/);

    // The links a copy into a jail must recreate, in the order they are followed.
    expect(new RootPaths(R).trace('/lib64/ld-linux-x86-64.so.2')).toMatchObject({
      links: [
        { path: '/lib64', target: '/usr/lib64' },
        { path: '/usr/lib64/ld-linux-x86-64.so.2', target: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' },
        { path: '/lib', target: 'usr/lib' },
      ],
      real: '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
    });
    expect(new RootPaths(R).trace('/lib64/ld-linux-x86-64.so.2').links).toHaveLength(3);
    expect(new RootPaths(R).trace('/usr/lib/x86_64-linux-gnu/libhost.so.1').real).toBeUndefined();
  });

  it('uses ld.so.conf without a cache, then the cache the host ldconfig writes', () => {
    buildLib(`${R}/opt/extra/libextra.so.1`, 'libextra.so.1');
    fs.writeFileSync(`${R}/etc/ld.so.conf`, 'include /etc/ld.so.conf.d/*.conf\n');
    fs.mkdirSync(`${R}/etc/ld.so.conf.d`, { recursive: true });
    fs.writeFileSync(`${R}/etc/ld.so.conf.d/extra.conf`, '/opt/extra\n');
    buildProg(`${R}/bin/prog-extra`, { needs: [`${R}/opt/extra/libextra.so.1`] });
    const cache = new ElfFactsCache();
    const resolver = new Resolver({ root: R, cache });
    const before = resolver.closure('/bin/prog-extra');
    if (!before.ok) throw new Error(before.error.message);
    expect(before.value.libraries['libextra.so.1']).toBe('/opt/extra/libextra.so.1');
    expect(before.value.config).toEqual(expect.arrayContaining(['/etc/ld.so.conf', '/etc/ld.so.conf.d/extra.conf']));
    const noFallback = new Resolver({ root: R, ldconfFallback: false }).closure('/bin/prog-extra');
    expect(noFallback.ok && noFallback.value.missing.map((m) => m.soname)).toEqual(['libextra.so.1']);

    try {
      execFileSync('ldconfig', ['-r', R], { stdio: 'pipe', env: { PATH: '/usr/sbin:/sbin:/usr/bin:/bin' } });
    } catch {
      return; // no usable ldconfig here
    }
    const after = resolver.closure('/bin/prog-extra');
    if (!after.ok) throw new Error(after.error.message);
    expect(after.value.libraries['libextra.so.1']).toBe('/opt/extra/libextra.so.1');
    expect(after.value.libraries['libc.so.6']).toBe('/lib/x86_64-linux-gnu/libc.so.6');
    expect(after.value.warnings.join('\n')).not.toMatch(/is missing/);
    expect(after.value.probes).toEqual([]);
  });

  it('honours ROOT/etc/ld.so.preload', () => {
    buildLib(`${R}/opt/pre/libpre.so.1`, 'libpre.so.1');
    fs.writeFileSync(`${R}/etc/ld.so.preload`, '# preload\n/opt/pre/libpre.so.1\nlibnotthere.so.1\n');
    try {
      const c = closureOf('/bin/prog', { root: R });
      expect(c.libraries['/opt/pre/libpre.so.1']).toBe('/opt/pre/libpre.so.1');
      expect(c.warnings.join('\n')).toMatch(/libnotthere\.so\.1, which cannot be loaded/);
      const off = closureOf('/bin/prog', { root: R, preload: false });
      expect(off.libraries['/opt/pre/libpre.so.1']).toBeUndefined();
    } finally {
      fs.rmSync(`${R}/etc/ld.so.preload`);
    }
  });

  it('refuses a relative program path inside a root', () => {
    const r = new Resolver({ root: R }).closure('bin/prog');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('bad-path');
  });
});

describe('big-endian and foreign machines', () => {
  it('resolves a hand-crafted big-endian ELF32 closure with generic directories', () => {
    const R = `${T}/beroot`;
    fs.mkdirSync(`${R}/lib`, { recursive: true });
    fs.mkdirSync(`${R}/usr/lib`, { recursive: true });
    fs.mkdirSync(`${R}/bin`, { recursive: true });
    const be = { cls: 32, endian: 'be', machine: 20 } as const;
    fs.writeFileSync(`${R}/lib/ld.so.1`, craftElf({ ...be, soname: 'ld.so.1' }));
    fs.writeFileSync(`${R}/usr/lib/libbe.so.1`, craftElf({ ...be, soname: 'libbe.so.1', needed: ['ld.so.1'] }));
    // Same class, other byte order: the loader gives up at it.
    fs.writeFileSync(`${R}/lib/libmixed.so.1`, craftElf({ cls: 32, endian: 'le', machine: 20, soname: 'libmixed.so.1' }));
    fs.writeFileSync(`${R}/bin/prog`, craftElf({ ...be, type: 2, interp: '/lib/ld.so.1', needed: ['libbe.so.1', 'libmixed.so.1'] }));
    const c = closureOf('/bin/prog', { root: R });
    expect(c.interpreter).toBe('/lib/ld.so.1');
    expect(c.libraries).toEqual({ 'libbe.so.1': '/usr/lib/libbe.so.1', 'ld.so.1': '/lib/ld.so.1' });
    expect(c.missing).toEqual([{ soname: 'libmixed.so.1', chain: ['/bin/prog', 'libmixed.so.1'], reason: expect.stringMatching(/data encoding not big-endian/) }]);
    expect(c.warnings.join('\n')).toMatch(/not in the loader table/);
  });
});

describe.skipIf(!gccOk)('facts cache', () => {
  it('a second resolution reads no binary; a changed file is read again; JSON round-trips', () => {
    const one = buildLib(`${T}/fc/libone.so.1`, 'libone.so.1');
    const prog = buildProg(`${T}/fc/prog`, { needs: [one], runpath: `${T}/fc` });
    // Files written within a clock tick are parsed but not saved (racy); let the tick pass.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    const cache = new ElfFactsCache();
    const r1 = new Resolver({ cache });
    expect(r1.closure(prog).ok).toBe(true);
    const first = cache.parses;
    expect(first).toBeGreaterThanOrEqual(4);
    expect(r1.closure(prog).ok).toBe(true);
    expect(cache.parses).toBe(first);

    const restored = ElfFactsCache.fromJSON(JSON.parse(JSON.stringify(cache.toJSON())));
    expect(restored.size).toBe(cache.size);
    expect(new Resolver({ cache: restored }).closure(prog).ok).toBe(true);
    expect(restored.parses).toBe(0);

    const later = new Date(Date.now() + 5000);
    fs.utimesSync(one, later, later);
    expect(new Resolver({ cache: restored }).closure(prog).ok).toBe(true);
    expect(restored.parses).toBe(1);
    // A file whose time is in the future cannot be told apart from a later same-tick write: not saved.
    const saved = (restored.toJSON() as { entries: [string, unknown][] }).entries.map(([p]) => p);
    expect(saved).toContain(prog);
    expect(saved).not.toContain(one);

    expect(ElfFactsCache.fromJSON({ format: 'something else' }).size).toBe(0);
    expect(ElfFactsCache.fromJSON(null).size).toBe(0);
    expect(ElfFactsCache.fromJSON({ format: 'jail-elf-facts/1', entries: [['x', { stamp: {}, result: {} }]] }).size).toBe(0);
  });
});

/**
 * What glibc's own loader maps for a program (test only: it runs this test's own fixture),
 * from `ld.so --list`, inside ROOT through a real chroot when given: name -> path, and
 * the loader's error line when it refuses.
 */
function loaderList(prog: string, root?: string): { libs: Record<string, string>; error?: string } {
  const ldso = '/lib64/ld-linux-x86-64.so.2';
  const cmd = root === undefined ? ldso : 'chroot';
  const args = root === undefined ? ['--list', prog] : [root, ldso, '--list', prog];
  const r = spawnSync(cmd, args, { encoding: 'latin1', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } });
  const libs: Record<string, string> = {};
  // Read as bytes and turned back into the UTF-8 names the loader printed.
  for (const line of Buffer.from(r.stdout, 'latin1').toString('utf8').split('\n')) {
    const m = line.trim().match(/^(\S+) => (\S+) \(0x[0-9a-f]+\)$/);
    if (m) libs[m[1] as string] = m[2] as string;
  }
  const err = Buffer.from(r.stderr, 'latin1').toString('utf8').trim();
  return r.status === 0 ? { libs } : { libs, error: err };
}

const DT_NEEDED = 1;
const DT_AUXILIARY = 0x7ffffffd;
const DT_FILTER = 0x7fffffff;

/** The DT_NEEDED, DT_FILTER and DT_AUXILIARY entries in section order, as readelf shows them. */
function dependencyEntries(file: string): string[] {
  const out: string[] = [];
  for (const line of execFileSync('readelf', ['-dW', file], { encoding: 'utf8' }).split('\n')) {
    const m = line.match(/\((NEEDED|FILTER|AUXILIARY)\)\s+\S+ library: \[(.*)\]$/);
    if (m) out.push(`${m[1]} ${m[2]}`);
  }
  return out;
}

/** A root the real loader can run in: its ld.so and libc, and what ldconfig -r needs. */
function loaderRoot(R: string): void {
  for (const d of ['lib64', 'lib/x86_64-linux-gnu', 'bin', 'etc']) fs.mkdirSync(`${R}/${d}`, { recursive: true });
  fs.copyFileSync('/lib64/ld-linux-x86-64.so.2', `${R}/lib64/ld-linux-x86-64.so.2`);
  fs.copyFileSync(LIBC, `${R}/lib/x86_64-linux-gnu/libc.so.6`);
}

function ldconfig(R: string): void {
  execFileSync('ldconfig', ['-r', R], { stdio: 'pipe', env: { PATH: '/usr/sbin:/sbin:/usr/bin:/bin' } });
}

describe.skipIf(!gccOk || !fs.existsSync('/lib64/ld-linux-x86-64.so.2'))('agrees with glibc 2.36\'s loader on fixtures', () => {
  it('finds libraries whose RUNPATH or soname holds UTF-8', () => {
    const dir = `${T}/utf/dé`;
    const a = buildLib(`${dir}/liba.so.1`, 'liba.so.1');
    const e = buildLib(`${T}/utf/d/libé.so.1`, 'libé.so.1');
    const prog = buildProg(`${T}/utf/bin/m3`, { needs: [a, e], runpath: `${dir}:${T}/utf/d` });
    const real = loaderList(prog);
    expect(real.error).toBeUndefined();
    expect(real.libs['liba.so.1']).toBe(`${dir}/liba.so.1`);
    const c = closureOf(prog);
    expect(c.missing).toEqual([]);
    expect(c.libraries['liba.so.1']).toBe(real.libs['liba.so.1']);
    expect(c.libraries['libé.so.1']).toBe(real.libs['libé.so.1']);
  });

  it('names the object and field when a NEEDED name is not UTF-8, where the loader finds the file', () => {
    const lib = buildLib(`${T}/bad8/build/libQx.so.1`, 'libQx.so.1');
    const prog0 = buildProg(`${T}/bad8/build/m`, { needs: [lib], runpath: `${T}/bad8/d` });
    // Byte 0xe9 alone (latin1 é) is not UTF-8: no gcc argument can carry it, so it is patched in.
    const patch = (src: string, dst: string) => {
      const b = fs.readFileSync(src);
      for (let at = b.indexOf('libQx.so.1'); at >= 0; at = b.indexOf('libQx.so.1', at + 1)) b[at + 3] = 0xe9;
      fs.mkdirSync(path.dirname(dst), { recursive: true });
      fs.writeFileSync(dst, b);
    };
    fs.mkdirSync(`${T}/bad8/d`, { recursive: true });
    patch(lib, `${T}/bad8/lib.tmp`);
    fs.renameSync(`${T}/bad8/lib.tmp`, Buffer.from(`${T}/bad8/d/lib\xe9x.so.1`, 'latin1'));
    patch(prog0, `${T}/bad8/bin/m`);
    fs.chmodSync(`${T}/bad8/bin/m`, 0o755);
    const real = loaderList(`${T}/bad8/bin/m`);
    expect(real.error).toBeUndefined();
    expect(Object.values(real.libs)).toContain(`${T}/bad8/d/lib\ufffdx.so.1`);
    const c = closureOf(`${T}/bad8/bin/m`);
    expect(c.missing).toEqual([{
      soname: 'lib\ufffdx.so.1', chain: [`${T}/bad8/bin/m`, 'lib\ufffdx.so.1'],
      reason: expect.stringMatching(/DT_NEEDED .*not valid UTF-8/),
    }]);
    expect(c.warnings.join('\n')).toMatch(new RegExp(`${T}/bad8/bin/m: DT_NEEDED lib\\\\xe9x\\.so\\.1 is not valid UTF-8`));
  });

  it('finds an ld.so.cache entry under a UTF-8 directory inside a root', () => {
    const R = `${T}/utfroot`;
    loaderRoot(R);
    const u = buildLib(`${R}/opt/ü/libu.so.1`, 'libu.so.1');
    buildProg(`${R}/bin/m`, { needs: [u] });
    fs.writeFileSync(`${R}/etc/ld.so.conf`, '/opt/ü\n');
    ldconfig(R);
    const real = loaderList('/bin/m', R);
    expect(real.libs['libu.so.1']).toBe('/opt/ü/libu.so.1');
    const c = closureOf('/bin/m', { root: R });
    expect(c.missing).toEqual([]);
    expect(c.libraries['libu.so.1']).toBe(real.libs['libu.so.1']);
  });

  it('stops at an executable where a library is expected, as the loader does', () => {
    const x = `${T}/exe/x.c`;
    fs.mkdirSync(`${T}/exe`, { recursive: true });
    fs.writeFileSync(x, 'int jail_fixture_symbol(void){return 3;}\nint main(void){return 0;}\n');
    const good = buildLib(`${T}/exe/good/liba.so.1`, 'liba.so.1');
    for (const [kind, flag, says] of [['pie', '-pie', 'cannot dynamically load position-independent executable'], ['nopie', '-no-pie', 'cannot dynamically load executable']] as const) {
      fs.mkdirSync(`${T}/exe/${kind}`, { recursive: true });
      execFileSync('gcc', ['-fPIE', flag, '-o', `${T}/exe/${kind}/liba.so.1`, x]);
      const prog = buildProg(`${T}/exe/m-${kind}`, { needs: [good], runpath: `${T}/exe/${kind}:${T}/exe/good` });
      const real = loaderList(prog);
      expect(real.error).toMatch(new RegExp(`liba\\.so\\.1: ${says}$`));
      const c = closureOf(prog);
      expect(c.libraries['liba.so.1']).toBeUndefined();
      expect(c.missing).toEqual([{ soname: 'liba.so.1', chain: [prog, 'liba.so.1'], reason: `the loader stops at ${T}/exe/${kind}/liba.so.1: ${says}` }]);
    }
  });

  it('loads a library whose ABI note names another OS (glibc 2.36 no longer checks it)', () => {
    const note = `${T}/abi/note.s`;
    fs.mkdirSync(`${T}/abi`, { recursive: true });
    // NT_GNU_ABI_TAG: OS 1 (Hurd), ABI 99.0.0.
    fs.writeFileSync(note, '\t.section .note.ABI-tag,"a",@note\n\t.p2align 2\n\t.long 4\n\t.long 16\n\t.long 1\n\t.asciz "GNU"\n\t.long 1\n\t.long 99,0,0\n');
    const hurd = buildLib(`${T}/abi/d1/liba.so.1`, 'liba.so.1', { extra: [note] });
    expect(execFileSync('readelf', ['-n', hurd]).toString()).toMatch(/OS: Hurd, ABI: 99\.0\.0/);
    buildLib(`${T}/abi/d2/liba.so.1`, 'liba.so.1');
    const prog = buildProg(`${T}/abi/m`, { needs: [hurd], runpath: `${T}/abi/d1:${T}/abi/d2` });
    const real = loaderList(prog);
    expect(real.libs['liba.so.1']).toBe(hurd);
    const c = closureOf(prog);
    expect(c.libraries['liba.so.1']).toBe(real.libs['liba.so.1']);
    expect(c.skipped).toEqual([]);
  });

  it('searches the legacy tls/ and x86_64/ subdirectories of each directory, but not glibc-hwcaps/', () => {
    const gen = buildLib(`${T}/hw/gen/liba.so.1`, 'liba.so.1');
    const prog = buildProg(`${T}/hw/m`, { needs: [gen], runpath: `${T}/hw/rp:${T}/hw/gen` });
    const agree = (want: string) => {
      const real = loaderList(prog);
      expect(real.libs['liba.so.1']).toBe(want);
      expect(closureOf(prog).libraries['liba.so.1']).toBe(want);
    };
    agree(gen);
    buildLib(`${T}/hw/rp/x86_64/liba.so.1`, 'liba.so.1');
    agree(`${T}/hw/rp/x86_64/liba.so.1`);
    buildLib(`${T}/hw/rp/tls/liba.so.1`, 'liba.so.1');
    agree(`${T}/hw/rp/tls/liba.so.1`);
    buildLib(`${T}/hw/rp/tls/x86_64/liba.so.1`, 'liba.so.1');
    agree(`${T}/hw/rp/tls/x86_64/liba.so.1`);
    // A CPU-specific variant: the loader would pick it on this CPU; the jail takes the generic one.
    buildLib(`${T}/hw/rp/glibc-hwcaps/x86-64-v2/liba.so.1`, 'liba.so.1');
    expect(closureOf(prog).libraries['liba.so.1']).toBe(`${T}/hw/rp/tls/x86_64/liba.so.1`);
    // Only a variant: not found, and the reason names it, so the user knows what to install.
    const only = buildLib(`${T}/hw/only/glibc-hwcaps/x86-64-v2/libv.so.2`, 'libv.so.2');
    const pv = buildProg(`${T}/hw/pv`, { needs: [only], runpath: `${T}/hw/only` });
    expect(closureOf(pv).missing).toEqual([{ soname: 'libv.so.2', chain: [pv, 'libv.so.2'], reason:
      `not found in any searched directory; only ${only} exists, a CPU-specific (glibc-hwcaps) variant, which jail passes over: ` +
      'a jail gets the generic library under its soname, which runs on any CPU' }]);
  });

  it('processes a DT_FILTER filtee right after its filter object, before libraries queued earlier', () => {
    // libq.so.1 is found through the filtee's RUNPATH or through libn's, whichever asks first.
    const D = `${T}/flt/d`;
    const A = `${T}/flt/a`;
    const qd = buildLib(`${D}/libq.so.1`, 'libq.so.1');
    const qn = buildLib(`${T}/flt/n/libq.so.1`, 'libq.so.1');
    const filtee = buildLib(`${A}/libfd.so.1`, 'libfd.so.1', { needs: [qd], runpath: D });
    const filter = buildLib(`${A}/libf.so.1`, 'libf.so.1', { runpath: A, extra: ['-Wl,--filter=libfd.so.1'] });
    const other = buildLib(`${A}/libn.so.1`, 'libn.so.1', { needs: [qn], runpath: `${T}/flt/n` });
    // Then the filtee also a NEEDED of the program, behind libn: the loader moves it up.
    for (const needs of [[filter, other], [filter, other, filtee]]) {
      const prog = buildProg(`${T}/flt/m${needs.length}`, { needs, runpath: A });
      const real = loaderList(prog);
      expect(real.error).toBeUndefined();
      expect(real.libs['libq.so.1']).toBe(qd);
      const c = closureOf(prog);
      expect(c.missing).toEqual([]);
      expect(c.libraries).toEqual({ ...real.libs, 'ld-linux-x86-64.so.2': '/lib64/ld-linux-x86-64.so.2' });
    }
  });

  it('maps DT_NEEDED, DT_FILTER and DT_AUXILIARY in the dynamic section\'s one order, and passes over a missing auxiliary', () => {
    const B = `${T}/ord`;
    const b = buildLib(`${B}/libb.so.1`, 'libb.so.1');
    const e = buildLib(`${B}/libe.so.1`, 'libe.so.1');
    // Filtees answering to the SONAMEs of two NEEDED: whichever is mapped first is what both names get.
    const fb = buildLib(`${B}/libfb.so.1`, 'libb.so.1');
    const xe = buildLib(`${B}/libxe.so.1`, 'libe.so.1');
    const l = buildLib(`${B}/libl.so.1`, 'libl.so.1', {
      needs: [b, e], runpath: B, extra: ['-Wl,--filter=libfb.so.1', '-Wl,--auxiliary=libxe.so.1', '-Wl,--auxiliary=libnone.so.1'],
    });
    swapDynamic(l, DT_NEEDED, DT_FILTER);
    swapDynamic(l, DT_NEEDED, DT_AUXILIARY);
    expect(dependencyEntries(l)).toEqual([
      'FILTER libfb.so.1', 'AUXILIARY libxe.so.1', 'NEEDED libc.so.6', 'NEEDED libb.so.1', 'NEEDED libe.so.1', 'AUXILIARY libnone.so.1',
    ]);
    const prog = buildProg(`${B}/m`, { needs: [l], runpath: B });
    expect(spawnSync(prog).status).toBe(0);
    const real = loaderList(prog);
    expect(real.libs).toEqual({ 'libfb.so.1': fb, 'libxe.so.1': xe, 'libl.so.1': l, 'libc.so.6': LIBC });
    const c = closureOf(prog);
    expect(c.libraries).toEqual({
      'libl.so.1': l, 'libc.so.6': LIBC, 'libfb.so.1': fb, 'libxe.so.1': xe, 'ld-linux-x86-64.so.2': '/lib64/ld-linux-x86-64.so.2',
      'libb.so.1': fb, 'libe.so.1': xe,
    });
    expect(c.graph[l]).toEqual(['libfb.so.1', 'libxe.so.1', 'libc.so.6', 'libb.so.1', 'libe.so.1', 'libnone.so.1']);
    expect(c.missing).toEqual([]);
    expect(c.unneeded).toEqual({ 'libnone.so.1': 'auxiliary' });
  });

  it('a missing DT_FILTER stops the program, as the loader refuses to start it', () => {
    const f = buildLib(`${T}/fltgone/libf.so.1`, 'libf.so.1', { extra: ['-Wl,--filter=libgone.so.1'] });
    const prog = buildProg(`${T}/fltgone/m`, { needs: [f], runpath: `${T}/fltgone` });
    const run = spawnSync(prog, { encoding: 'utf8' });
    expect(run.status).toBe(127);
    expect(run.stderr).toMatch(/error while loading shared libraries: libgone\.so\.1: cannot open shared object file/);
    expect(execFileSync('ldd', [prog], { encoding: 'utf8' })).toMatch(/libgone\.so\.1 => not found/);
    const c = closureOf(prog);
    expect(c.missing).toEqual([{ soname: 'libgone.so.1', chain: [prog, 'libf.so.1', 'libgone.so.1'], reason: 'not found in any searched directory' }]);
    expect(c.unneeded).toEqual({});
  });

  it('takes an empty DT_NEEDED for the program itself, loading nothing, and says so', () => {
    // No linker writes an empty NEEDED: a placeholder name is linked in, then blanked.
    const E = `${T}/empty`;
    const ph = buildLib(`${E}/build/libPLACEHOLDER.so.1`, 'libPLACEHOLDER.so.1');
    const mid = buildLib(`${E}/lib/libmid.so.1`, 'libmid.so.1', { needs: [ph] });
    const own = buildProg(`${E}/own`, { needs: [ph] });
    blankString(mid, 'libPLACEHOLDER.so.1');
    blankString(own, 'libPLACEHOLDER.so.1');
    expect(dependencyEntries(mid)).toEqual(['NEEDED ', 'NEEDED libc.so.6']);
    const viaLib = buildProg(`${E}/m`, { needs: [mid], runpath: `${E}/lib` });
    for (const prog of [own, viaLib]) {
      expect(spawnSync(prog).status).toBe(0);
      const real = loaderList(prog);
      expect(real.error).toBeUndefined();
      const c = closureOf(prog);
      expect(c.missing).toEqual([]);
      expect(c.libraries).toEqual({ ...real.libs, 'ld-linux-x86-64.so.2': '/lib64/ld-linux-x86-64.so.2' });
      const from = prog === own ? own : mid;
      expect(c.graph[from]?.[0]).toBe('');
      expect(c.warnings).toContain(`${from}: a DT_NEEDED entry is the empty string, which the loader takes for the program itself ` +
        '(its own entry in the loaded list has an empty name), so nothing is loaded for it; a linker never writes one: the file may be damaged');
    }
  });

  it('takes ld.so.cache entries that ldconfig recorded for tls/ and x86_64/ subdirectories', () => {
    const R = `${T}/hwroot`;
    loaderRoot(R);
    const h = buildLib(`${R}/opt/y/libh.so.1`, 'libh.so.1');
    buildProg(`${R}/bin/m`, { needs: [h] });
    fs.writeFileSync(`${R}/etc/ld.so.conf`, '/opt/y\n');
    const agree = (want: string) => {
      ldconfig(R);
      expect(loaderList('/bin/m', R).libs['libh.so.1']).toBe(want);
      expect(closureOf('/bin/m', { root: R }).libraries['libh.so.1']).toBe(want);
    };
    agree('/opt/y/libh.so.1');
    buildLib(`${R}/opt/y/x86_64/libh.so.1`, 'libh.so.1');
    agree('/opt/y/x86_64/libh.so.1');
    buildLib(`${R}/opt/y/tls/libh.so.1`, 'libh.so.1');
    agree('/opt/y/tls/libh.so.1');
    buildLib(`${R}/opt/y/tls/x86_64/libh.so.1`, 'libh.so.1');
    agree('/opt/y/tls/x86_64/libh.so.1');
  });
});
