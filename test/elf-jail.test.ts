// elf() in a jail: programs land with their interpreter and library closure, run under
// a real chroot, and after a library upgrade on the host exactly that library moves.

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO, changes, fingerprint, rig, touched, type Rig } from './helpers.js';

let r: Rig;
beforeEach(() => { r = rig(); });
afterEach(() => r.cleanup());

const make = (...args: string[]) => r.jail('make', `ROOT=${r.root}`, `SRC=${r.src}`, ...args);
const gcc = (...args: string[]) => execFileSync('gcc', args, { stdio: 'pipe' });

describe('a jail of programs', () => {
  it('runs /bin/sh, ls and id under chroot, with the jail\'s own user names', () => {
    r.jailfile(`
import { defineJail, elf, users, dir } from 'jail';
export default defineJail(() => [
  elf('/bin/sh', '/usr/bin/ls', '/usr/bin/id'),
  dir('/tmp', { mode: 0o1777 }),
  users({ www: { uid: 80, gid: 80, home: '/tmp' } }),
]);`);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    // The host's merged-/usr links are mirrored, and each file sits once at its real path.
    expect(fs.readlinkSync(r.root + '/bin')).toBe(fs.readlinkSync('/bin'));
    expect(fs.readlinkSync(r.root + '/usr/bin/sh')).toBe(fs.readlinkSync('/usr/bin/sh'));
    expect(fs.lstatSync(r.root + '/lib64').isSymbolicLink()).toBe(true);
    const out = execFileSync('chroot', ['--userspec=80:80', r.root, '/bin/sh', '-c', 'ls / && id'], { encoding: 'utf8' });
    expect(out).toMatch(/^bin\netc\nlib\nlib64\ntmp\nusr\n/);
    expect(out).toMatch(/uid=80\(www\) gid=80\(www\) groups=80\(www\)/);
    // A no-op build reads no binary again: the parsed facts are kept by stat.
    const facts = path.join(r.dir, '.jail', 'elf-facts.json');
    const before = fs.statSync(facts).mtimeMs;
    const again = make();
    expect(changes(again.stdout)).toEqual([]);
    expect(fs.statSync(facts).mtimeMs).toBe(before);
  });

  it('says clearly, once, when a declared directory stands where the host has a merged-/usr link that an entry needs', () => {
    const to = fs.readlinkSync('/bin');
    const said = (why: string) => `jail: error: jailfile.ts:4: dir(["/bin", ...]) declares /bin a real directory, but this host has /bin -> ${to} (merged /usr), and ${why}. ` +
      `Drop /bin from the entry: the jail mirrors the link (layout() and elf() make it, or declare link('/bin', '${to}')), and what lies beneath it lands in /usr/bin.\n`;
    // The same error whichever entry needs the link: elf() (one program or several, each
    // bringing files through /bin), or a copy of a host path beneath it; once, and counted once.
    const cases = [
      [`elf('/bin/sh')`, 'elf("/bin/sh") at jailfile.ts:5 mirrors that link'],
      [`elf('/bin/sh', '/bin/ls')`, 'elf("/bin/sh", "/bin/ls") at jailfile.ts:5 mirrors that link'],
      [`copy('/bin/sh')`, 'copy("/bin/sh") at jailfile.ts:5 copies /bin/sh through that link'],
      [`copy('/bin/s*')`, 'copy("/bin/s*") at jailfile.ts:5 copies /bin/s* through that link'],
    ];
    for (const [other, why] of cases) {
      r.jailfile(`\nimport { defineJail, elf, dir, copy } from 'jail';\nexport default defineJail(() => [\n  dir(['/bin', '/etc']),\n  ${other},\n]);`);
      for (const args of [[], ['-n'], ['-k']]) {
        const res = make(...args);
        expect(res.code, `${other} ${args}`).toBe(2);
        expect(res.stderr, `${other} ${args}`).toBe(said(why!));
        expect(res.stdout).toMatch(/, 1 error$/m);
        if (args[0] !== '-k') expect(fs.existsSync(r.root)).toBe(false);
      }
      fs.rmSync(r.root, { recursive: true, force: true });
    }
    // A jail built with the link keeps it: the directory is refused, not built over the link.
    r.jailfile(`\nimport { defineJail, dir } from 'jail';\nimport { layout } from 'jail/recipes';\nexport default defineJail(({ DIR }) => [\n  layout(),\n  DIR === 'yes' && dir('/bin'),\n]);`);
    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    const refused = make('DIR=yes');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(new RegExp(`jailfile\\.ts:6: dir\\("/bin"\\) declares /bin a real directory, but this host has /bin -> ${to}.*and link\\("/bin", "${to}"\\) at jailfile\\.ts:5 declares that link\\.`));
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    expect(fs.readlinkSync(r.root + '/bin')).toBe(to);
    // Nothing needs the link: a jail of its own layout may have a real /bin (the issue's basic jailfile has one).
    fs.rmSync(r.root, { recursive: true });
    r.jailfile(`\nimport { defineJail, dir, copy } from 'jail';\nexport default defineJail(({ SRC }) => [\n  dir(['/bin', '/etc']),\n  copy('/etc/services'),\n]);`);
    expect(make().code).toBe(0);
    expect(fs.lstatSync(r.root + '/bin').isDirectory()).toBe(true);
  });

  it('brings libgcc_s.so.1 for a program whose threads exit, which glibc dlopens', () => {
    fs.writeFileSync(path.join(r.src, 'threads.c'), `#include <pthread.h>
#include <stdio.h>
static void *work(void *a) { pthread_exit(a); return 0; }
int main(void) { pthread_t t; void *v; pthread_create(&t, 0, work, (void *)42); pthread_join(t, &v); printf("thread said %ld\\n", (long)v); return 0; }
`);
    gcc('-o', path.join(r.src, 'threads'), path.join(r.src, 'threads.c'), '-pthread');
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/threads') ]);`);
    expect(make().code).toBe(0);
    expect(fs.existsSync(r.root + '/usr/lib/x86_64-linux-gnu/libgcc_s.so.1')).toBe(true);
    expect(execFileSync('chroot', [r.root, path.join(r.src, 'threads')], { encoding: 'utf8' })).toBe('thread said 42\n');
  });

  it('brings each name of a hard-linked library that the loader opens, so the program runs', () => {
    fs.writeFileSync(path.join(r.src, 'z.c'), 'int z(void) { return 0; }\n');
    fs.writeFileSync(path.join(r.src, 'm.c'), '#include <stdio.h>\nint main(void) { puts("ran"); return 0; }\n');
    gcc('-shared', '-fPIC', '-o', path.join(r.src, 'libh1.so'), path.join(r.src, 'z.c'));
    fs.linkSync(path.join(r.src, 'libh1.so'), path.join(r.src, 'libh2.so'));
    const ph = path.join(r.src, 'ph');
    gcc('-Wl,--no-as-needed', '-o', ph, path.join(r.src, 'm.c'), `-L${r.src}`, '-l:libh1.so', '-l:libh2.so', `-Wl,-rpath,${r.src}`);
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/ph') ]);`);
    expect(make().code).toBe(0);
    for (const n of ['libh1.so', 'libh2.so']) expect(fs.lstatSync(path.join(r.root, r.src, n)).isFile(), n).toBe(true);
    expect(execFileSync('chroot', [r.root, ph], { encoding: 'utf8' })).toBe('ran\n');
    expect(make('-q').code).toBe(0);
  });

  it('a truncated ELF or one whose NEEDED climbs with .. is a clear error, and nothing is written', () => {
    const ls = fs.readFileSync('/usr/bin/ls');
    fs.writeFileSync(path.join(r.src, 'truncated'), ls.subarray(0, 900), { mode: 0o755 });
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/truncated') ]);`);
    let res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/jailfile\.ts:\d+: elf\(.*truncated.*\): .*truncated/);
    expect(fs.existsSync(r.root)).toBe(false);

    fs.writeFileSync(path.join(r.src, 'up.c'), 'int up(void) { return 1; }\n');
    fs.mkdirSync(path.join(r.src, 'sub'));
    gcc('-shared', '-fPIC', '-o', path.join(r.src, 'libup.so'), path.join(r.src, 'up.c'));
    fs.writeFileSync(path.join(r.src, 'climb.c'), 'int up(void);\nint main(void) { return up(); }\n');
    // A NEEDED entry naming ../libup.so (relative paths go into NEEDED as written).
    execFileSync('gcc', ['-o', path.join(r.src, 'sub', 'climb'), path.join(r.src, 'climb.c'), '../libup.so'], { cwd: path.join(r.src, 'sub'), stdio: 'pipe' });
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/sub/climb') ]);`);
    res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/climb -> \.\.\/libup\.so: not found \(relative path in NEEDED/);
    expect(fs.existsSync(r.root)).toBe(false);
  });

  it('refuses a program the kernel would not run: too many program headers, or an empty PT_INTERP', () => {
    fs.writeFileSync(path.join(r.src, 'm.c'), 'int main(void) { return 0; }\n');
    const good = path.join(r.src, 'good');
    gcc('-o', good, path.join(r.src, 'm.c'));
    const patched = (name: string, patch: (b: Buffer) => void) => {
      const b = fs.readFileSync(good);
      patch(b);
      fs.writeFileSync(path.join(r.src, name), b, { mode: 0o755 });
      // The host agrees: the kernel will not start it.
      const ran = spawnSync(path.join(r.src, name));
      expect(ran.error !== undefined || ran.status !== 0, name).toBe(true);
      return path.join(r.src, name);
    };
    const xnum = patched('xnum', (b) => b.writeUInt16LE(0xffff, 56));
    const nophdr = patched('nophdr', (b) => b.writeUInt16LE(0, 56));
    const noInterp = patched('nointerp', (b) => { b[b.indexOf('/lib64/ld-linux-x86-64.so.2\0', 0, 'latin1')] = 0; });
    const cases: [string, RegExp][] = [
      [xnum, /xnum starts like an ELF file but is broken: e_phnum is 65535 \(PN_XNUM\), more than 64 KiB of program headers, so the kernel refuses to run it \(Exec format error\)/],
      [nophdr, /nophdr starts like an ELF file but is broken: e_phnum is 0 \(no program headers\), so the kernel refuses to run it/],
      [noInterp, /nointerp has an empty program interpreter path \(PT_INTERP\), so no loader can start it and the kernel will not run it\. Replace it with an intact copy, or relink it\./],
    ];
    for (const [prog, said] of cases) {
      const deps = r.jail('deps', prog);
      expect(deps.code, prog).toBe(2);
      expect(deps.stdout + deps.stderr).toMatch(said);
      r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(() => [ elf(${JSON.stringify(prog)}) ]);`);
      const res = make();
      expect(res.code, prog).toBe(2);
      const errors = res.stderr.split('\n').filter((l) => l.startsWith('jail: error:'));
      expect(errors, prog).toHaveLength(1);
      expect(errors[0]).toMatch(said);
      expect(res.stderr).not.toMatch(/relative PT_INTERP/);
      expect(fs.existsSync(r.root)).toBe(false);
      // Going on past errors (-k), the program does not ride in either.
      expect(make('-k').code, prog).toBe(2);
      expect(fs.existsSync(path.join(r.root, prog)), prog).toBe(false);
      fs.rmSync(r.root, { recursive: true, force: true });
    }
  });

  it('refuses a file that is neither ELF nor a #! script, naming the entry, and writes nothing', () => {
    fs.writeFileSync(path.join(r.src, 'accounts'), 'root:x:0:0:root:/root:/bin/bash\n', { mode: 0o644 });
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf('/bin/sh', SRC + '/accounts') ]);`);
    for (const args of [[], ['-n'], ['-k']]) {
      const res = make(...args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toContain(`jail: error: jailfile.ts:3: elf("/bin/sh", "${r.src}/accounts"): ${r.src}/accounts is neither an ELF program or library nor a #! script, so elf() will not copy it. Copy data files with copy(), or fix the path.`);
      expect(changes(res.stdout).some((l) => l.includes('accounts'))).toBe(false);
    }
    expect(fs.existsSync(r.root + r.src + '/accounts')).toBe(false);
    // A pattern's match that is no program is left out with a warning: modules beside a README.
    fs.mkdirSync(path.join(r.src, 'mods'));
    fs.copyFileSync(fs.realpathSync('/bin/sh'), path.join(r.src, 'mods', 'a.so'));
    fs.writeFileSync(path.join(r.src, 'mods', 'README.so'), 'not a module\n');
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/mods/*.so') ]);`);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain(`${r.src}/mods/README.so matches the pattern but is neither ELF nor a #! script; left out`);
    expect(fs.existsSync(r.root + r.src + '/mods/a.so')).toBe(true);
    expect(fs.existsSync(r.root + r.src + '/mods/README.so')).toBe(false);
  });

  it('the README\'s example of a path beneath a declared link: the soname link and the file it names land where the link leads', () => {
    const example = /`(link\('\/lib', 'usr\/lib'\))`, `(copy\([^`]*\))`/.exec(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8').replace(/\n/g, ' '))!;
    r.jailfile(`
import { defineJail, link, copy } from 'jail';
export default defineJail(() => [ ${example[1]}, ${example[2]} ]);`);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    const host = fs.realpathSync('/lib/x86_64-linux-gnu/libz.so.1');
    // The jail sees it at /lib/..., built under /usr/lib/..., and the link leads to a file of the jail.
    expect(fs.readlinkSync(r.root + '/lib')).toBe('usr/lib');
    expect(fs.realpathSync(r.root + '/lib/x86_64-linux-gnu/libz.so.1')).toBe(r.root + host.replace(/^\/lib\//, '/usr/lib/'));
    expect(fs.readFileSync(r.root + '/lib/x86_64-linux-gnu/libz.so.1')).toEqual(fs.readFileSync(host));
  });

  it('builds a program named by the path the jailfile wrote, through the host\'s merged-/usr links', () => {
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(() => [ elf('/bin/sh') ]);`);
    const res = make('/bin/sh');
    expect(res.code, res.stderr).toBe(0);
    // The real paths are built: the links on the way and the program they end at.
    const real = fs.realpathSync('/bin/sh');
    expect(changes(res.stdout)).toContain(`create ${real} (file): output missing`);
    expect(changes(res.stdout)).toContain('create /bin (symlink): output missing');
    expect(fs.realpathSync(r.root + '/bin/sh')).toBe(r.root + real);
  });

  it('brings the #! interpreter of a script', () => {
    fs.writeFileSync(path.join(r.src, 'hello.sh'), '#!/bin/sh\necho hello from the jail\n', { mode: 0o755 });
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/hello.sh') ]);`);
    expect(make().code).toBe(0);
    expect(execFileSync('chroot', [r.root, path.join(r.src, 'hello.sh')], { encoding: 'utf8' })).toBe('hello from the jail\n');
  });

  it('brings the program a #!/usr/bin/env script runs, found in the PATH of jailed commands; one found nowhere is an error', () => {
    const JAIL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
    fs.writeFileSync(path.join(r.src, 'report.pl'), '#!/usr/bin/env perl\nprint "perl in the jail\\n";\n', { mode: 0o755 });
    fs.writeFileSync(path.join(r.src, 'strict.pl'), '#!/usr/bin/env -S PERL_UNICODE=0 perl -w\nprint "split by env\\n";\n', { mode: 0o755 });
    fs.writeFileSync(path.join(r.src, 'oneword.pl'), '#!/usr/bin/env perl -w\nprint 1;\n', { mode: 0o755 });
    fs.writeFileSync(path.join(r.src, 'gone'), '#!/usr/bin/env no-such-interpreter\n', { mode: 0o755 });
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC, BAD }) => [
  elf(SRC + '/report.pl', SRC + '/strict.pl'),
  BAD === 'yes' && elf(SRC + '/oneword.pl', SRC + '/gone'),
]);`);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    // perl where env looks for it (the first PATH directory that has it), with its closure.
    const perl = fs.realpathSync('/usr/bin/perl');
    expect(changes(res.stdout)).toContain(`create ${perl} (file): output missing`);
    expect(fs.existsSync(r.root + '/usr/local/bin/perl')).toBe(false);
    const run = (script: string) => execFileSync('chroot', [r.root, path.join(r.src, script)], { encoding: 'utf8', env: { PATH: JAIL_PATH } });
    expect(run('report.pl')).toBe('perl in the jail\n');
    expect(run('strict.pl')).toBe('split by env\n');

    // Not found: an error naming the script, the program and the PATH; nothing is written.
    const before = fingerprint(r.root);
    const bad = make('BAD=yes');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${r.src}/gone: its #! line has /usr/bin/env run "no-such-interpreter", and no executable file of that name is in ${JAIL_PATH} on this host`);
    // Without -S, env gets "perl -w" as one name, and would not find it either.
    expect(bad.stderr).toContain(`${r.src}/oneword.pl: its #! line has /usr/bin/env run "perl -w", and no executable file of that name`);
    expect(bad.stderr).toContain('write #!/usr/bin/env -S perl -w to have env split it');
    expect(touched(before, fingerprint(r.root))).toEqual([]);
  });

  it('never takes a program, a library or a #! interpreter from inside ROOT, where it may have been planted', () => {
    // A host program whose RUNPATH points into the jail: the jail's libfoo.so would be "the host's".
    fs.writeFileSync(path.join(r.src, 'foo.c'), 'int foo(void) { return 7; }\n');
    fs.writeFileSync(path.join(r.src, 'app.c'), 'int foo(void);\nint main(void) { return foo(); }\n');
    gcc('-shared', '-fPIC', '-o', path.join(r.src, 'libfoo.so'), path.join(r.src, 'foo.c'));
    gcc('-o', path.join(r.src, 'app'), path.join(r.src, 'app.c'), `-L${r.src}`, '-lfoo', `-Wl,-rpath,${r.root}/plant/lib:${r.src}`);
    fs.writeFileSync(path.join(r.src, 'run.sh'), `#!${r.root}/plant/bin/sh\necho hi\n`, { mode: 0o755 });
    r.jailfile(`
import { defineJail, elf, dir } from 'jail';
export default defineJail(({ SRC, WHAT }) => [ dir(['/plant/lib', '/plant/bin']), elf(SRC + '/' + WHAT) ]);`);
    expect(make('WHAT=app').code).toBe(0);
    fs.copyFileSync(path.join(r.src, 'libfoo.so'), r.root + '/plant/lib/libfoo.so');
    fs.copyFileSync(fs.realpathSync('/bin/sh'), r.root + '/plant/bin/sh');
    fs.symlinkSync(r.root + '/plant/bin/sh', path.join(r.src, 'sh-link'));
    const before = fingerprint(r.root);
    const cases = [
      ['WHAT=app', `${r.root}/plant/lib/libfoo.so lies inside ROOT (${r.root}): programs and libraries come from the host, never from the jail`],
      ['WHAT=run.sh', `${r.root}/plant/bin/sh lies inside ROOT (${r.root})`],
      ['WHAT=sh-link', `the program ${r.src}/sh-link (${r.root}/plant/bin/sh) lies inside ROOT (ROOT=${r.root})`],
      [`WHAT=../root/plant/bin/sh`, `lies inside ROOT (ROOT=${r.root})`],
    ];
    for (const [what, msg] of cases) {
      const res = make(what!);
      expect(res.code, what).toBe(2);
      expect(res.stderr).toContain(msg);
    }
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    // -k builds the rest, and still nothing from inside ROOT.
    for (const [what, msg] of cases) {
      const res = make(what!, '-k');
      expect(res.code, what).toBe(2);
      expect(res.stderr).toContain(msg);
      expect(changes(res.stdout).filter((l) => l.includes(r.root))).toEqual([]);
    }
  });

  it('a host name that is not UTF-8 met by a pattern is an error naming it escaped, not a missing file, and nothing is written', () => {
    const mods = path.join(r.src, 'mods');
    fs.mkdirSync(mods);
    fs.copyFileSync(fs.realpathSync('/bin/sh'), path.join(mods, 'a.so'));
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/mods/**/*.so') ]);`);
    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    // A module whose name is not UTF-8, and one in a directory whose name is not.
    const raw = (...parts: (string | number)[]) => Buffer.concat(parts.map((p) => typeof p === 'number' ? Buffer.of(p) : Buffer.from(p)));
    fs.copyFileSync(fs.realpathSync('/bin/sh'), raw(mods, '/b', 0xff, '.so'));
    fs.mkdirSync(raw(mods, '/d', 0xfe));
    fs.copyFileSync(fs.realpathSync('/bin/sh'), raw(mods, '/d', 0xfe, '/c.so'));
    const said = (name: string) => `jail: error: jailfile.ts:3: elf("${mods}/**/*.so"): the host name ${name} is not valid UTF-8 (shown escaped) (met by the pattern ${mods}/**/*.so); ` +
      "jail's paths are UTF-8 text, so it cannot copy it. Rename it on the host, or narrow the pattern so it is left out.";
    for (const args of [[], ['-n'], ['-k']]) {
      const res = make(...args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).not.toMatch(/does not exist/);
      const errors = res.stderr.split('\n').filter((l) => l.startsWith('jail: error:'));
      expect(errors).toEqual([said(`${mods}/b\\xff.so`), said(`${mods}/d\\xfe`)]);
    }
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    // Renamed on the host, both come in.
    fs.renameSync(raw(mods, '/b', 0xff, '.so'), path.join(mods, 'b.so'));
    fs.renameSync(raw(mods, '/d', 0xfe), path.join(mods, 'd'));
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout).filter((l) => l.includes('/mods/'))).toEqual([`${mods}/b.so (file)`, `${mods}/d (dir)`, `${mods}/d/c.so (file)`].map((l) => `create ${l}: output missing`));
  });

  it('brings a #! interpreter whose path is UTF-8, and jail check finds it there', () => {
    const dir = path.join(r.src, 'outils-dé');
    fs.mkdirSync(dir);
    fs.copyFileSync(fs.realpathSync('/bin/sh'), path.join(dir, 'sh'));
    fs.chmodSync(path.join(dir, 'sh'), 0o755);
    fs.writeFileSync(path.join(r.src, 'hé.sh'), `#!${dir}/sh\necho été\n`, { mode: 0o755 });
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/hé.sh') ]);`);
    expect(make().code).toBe(0);
    expect(execFileSync('chroot', [r.root, path.join(r.src, 'hé.sh')], { encoding: 'utf8' })).toBe('été\n');
    const check = r.jail('check', `ROOT=${r.root}`, `SRC=${r.src}`, '--json');
    expect(JSON.parse(check.stdout).findings.filter((f: { kind: string }) => f.kind === 'missing-interpreter')).toEqual([]);
  });
});

describe('library upgrades on the host', () => {
  let app: string;
  const lib = (name: string) => path.join(app, 'lib', name);

  /** libgreet.so.1 (a soname link to a version file), used by prog through an absolute RUNPATH. */
  function buildApp(version: string, text: string) {
    fs.writeFileSync(path.join(r.src, 'greet.c'), `const char *greet(void) { return "${text}"; }\n`);
    gcc('-shared', '-fPIC', '-Wl,-soname,libgreet.so.1', '-o', lib(`libgreet.so.${version}`), path.join(r.src, 'greet.c'));
  }

  beforeEach(() => {
    app = path.join(r.src, 'app');
    fs.mkdirSync(path.join(app, 'lib'), { recursive: true });
    fs.mkdirSync(path.join(app, 'bin'));
    buildApp('1.0', 'hello 1.0');
    fs.symlinkSync('libgreet.so.1.0', lib('libgreet.so.1'));
    fs.symlinkSync('libgreet.so.1', lib('libgreet.so'));
    fs.writeFileSync(path.join(r.src, 'prog.c'), '#include <stdio.h>\nconst char *greet(void);\nint main(void) { puts(greet()); return 0; }\n');
    gcc('-o', path.join(app, 'bin', 'prog'), path.join(r.src, 'prog.c'), `-L${path.join(app, 'lib')}`, '-lgreet', `-Wl,-rpath,${path.join(app, 'lib')}`);
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/app/bin/prog') ]);`);
  });

  const runInJail = () => execFileSync('chroot', [r.root, path.join(app, 'bin', 'prog')], { encoding: 'utf8' });

  it('re-copies exactly the library whose bytes changed', () => {
    expect(make().code).toBe(0);
    expect(runInJail()).toBe('hello 1.0\n');
    const before = fingerprint(r.root);
    buildApp('1.0', 'hello 1.0 patched');
    const res = make();
    expect(changes(res.stdout)).toEqual([`update ${lib('libgreet.so.1.0')} (file): source changed: content`]);
    expect(touched(before, fingerprint(r.root))).toEqual([lib('libgreet.so.1.0')]);
    expect(runInJail()).toBe('hello 1.0 patched\n');
  });

  it('`make libs` refreshes what the loader needs and leaves the programs for a full make', () => {
    const prog = path.join(app, 'bin', 'prog');
    // Before the first build: the group is the closure (interpreter, libraries, their
    // links), never the program itself or the directories above them.
    const planned = changes(make('-n', 'libs').stdout).map((l) => l.replace(/^would /, '')).filter((l) => !l.endsWith('(dir): output missing'));
    expect(planned).toContain(`create ${lib('libgreet.so.1.0')} (file): output missing`);
    expect(planned).toContain(`create ${lib('libgreet.so.1')} (symlink): output missing`);
    expect(planned.some((l) => /^create \S*\/libc\.so\.6 \(file\)/.test(l))).toBe(true);
    expect(planned.some((l) => /^create \S*\/ld-linux[^ ]* \(file\)/.test(l))).toBe(true);
    expect(planned.some((l) => l.includes(` ${prog} `))).toBe(false);

    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    // A host upgrade moves a library; the program is rebuilt too, with new bytes.
    buildApp('1.0', 'hello 1.0 patched');
    fs.writeFileSync(path.join(r.src, 'prog.c'), '#include <stdio.h>\nconst char *greet(void);\nint main(void) { printf("v2 %s\\n", greet()); return 0; }\n');
    gcc('-o', prog, path.join(r.src, 'prog.c'), `-L${path.join(app, 'lib')}`, '-lgreet', `-Wl,-rpath,${path.join(app, 'lib')}`);
    let res = make('libs');
    expect(changes(res.stdout)).toEqual([`update ${lib('libgreet.so.1.0')} (file): source changed: content`]);
    expect(touched(before, fingerprint(r.root))).toEqual([lib('libgreet.so.1.0')]);
    expect(runInJail()).toBe('hello 1.0 patched\n');
    res = make();
    expect(changes(res.stdout)).toEqual([`update ${prog} (file): source changed: content`]);
    expect(runInJail()).toBe('v2 hello 1.0 patched\n');

    // A library also named as a program of its own, before the closure that needs it, is still one of the libs.
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/app/lib/libgreet.so.1.0'), elf(SRC + '/app/bin/prog') ]);`);
    buildApp('1.0', 'hello 1.0 again');
    expect(changes(make('libs').stdout)).toEqual([`update ${lib('libgreet.so.1.0')} (file): source changed: content`]);
  });

  it('follows the soname link to a new version file, and prunes the old one', () => {
    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    buildApp('1.1', 'hello 1.1');
    fs.unlinkSync(lib('libgreet.so.1'));
    fs.symlinkSync('libgreet.so.1.1', lib('libgreet.so.1'));
    fs.unlinkSync(lib('libgreet.so.1.0'));
    const res = make();
    expect(changes(res.stdout)).toEqual([
      `create ${lib('libgreet.so.1.1')} (file): output missing`,
      `remove ${lib('libgreet.so.1.0')} (file): no longer declared`,
      `update ${lib('libgreet.so.1')} (symlink): link points to libgreet.so.1.0, declared libgreet.so.1.1`,
    ].sort());
    expect(touched(before, fingerprint(r.root))).toEqual([lib('libgreet.so.1'), lib('libgreet.so.1.0'), lib('libgreet.so.1.1')]);
    expect(runInJail()).toBe('hello 1.1\n');
    expect(make('-q').code).toBe(0);
  });

  it('adds a new dependency, and removes one that left every closure', () => {
    expect(make().code).toBe(0);
    fs.writeFileSync(path.join(r.src, 'extra.c'), 'int extra(void) { return 42; }\n');
    gcc('-shared', '-fPIC', '-Wl,-soname,libextra.so.7', '-o', lib('libextra.so.7'), path.join(r.src, 'extra.c'));
    fs.writeFileSync(path.join(r.src, 'prog.c'), '#include <stdio.h>\nconst char *greet(void);\nint extra(void);\nint main(void) { printf("%s %d\\n", greet(), extra()); return 0; }\n');
    gcc('-o', path.join(app, 'bin', 'prog'), path.join(r.src, 'prog.c'), `-L${path.join(app, 'lib')}`, '-lgreet', '-l:libextra.so.7', `-Wl,-rpath,${path.join(app, 'lib')}`);
    let res = make();
    expect(changes(res.stdout)).toEqual([
      `create ${lib('libextra.so.7')} (file): output missing`,
      `update ${path.join(app, 'bin', 'prog')} (file): source changed: content`,
    ]);
    expect(runInJail()).toBe('hello 1.0 42\n');
    gcc('-o', path.join(app, 'bin', 'prog'), path.join(r.src, 'prog.c'), `-L${path.join(app, 'lib')}`, '-lgreet', path.join(r.src, 'extra.c'), `-Wl,-rpath,${path.join(app, 'lib')}`);
    res = make();
    expect(changes(res.stdout)).toEqual([
      `remove ${lib('libextra.so.7')} (file): no longer declared`,
      `update ${path.join(app, 'bin', 'prog')} (file): source changed: content`,
    ]);
  });

  it('fails on a missing library with the chain, and leaves the jail as it was', () => {
    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    fs.writeFileSync(path.join(r.src, 'dep.c'), 'int dep(void) { return 1; }\n');
    gcc('-shared', '-fPIC', '-Wl,-soname,libdep.so.3', '-o', lib('libdep.so.3'), path.join(r.src, 'dep.c'));
    fs.writeFileSync(path.join(r.src, 'greet.c'), 'int dep(void);\nconst char *greet(void) { return dep() ? "x" : "y"; }\n');
    gcc('-shared', '-fPIC', '-Wl,-soname,libgreet.so.1', '-o', lib('libgreet.so.1.0'), path.join(r.src, 'greet.c'), `-L${path.join(app, 'lib')}`, '-l:libdep.so.3');
    fs.unlinkSync(lib('libdep.so.3'));
    const res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${path.join(app, 'bin', 'prog')} -> libgreet.so.1 -> libdep.so.3: not found`);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    // The README's sample of an error is this one, word for word but the names.
    const sample = /```\n(jail: error: jailfile\.ts:12: elf\(.*)\n```/.exec(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8'))![1]!;
    const ours = sample.replace('jailfile.ts:12', 'jailfile.ts:3').replaceAll('/opt/app/bin/app', path.join(app, 'bin', 'prog'))
      .replace('libaprutil-1.so.0', 'libgreet.so.1').replaceAll('libexpat.so.1', 'libdep.so.3');
    expect(res.stderr.split('\n')).toContain(ours);
  });

  it('re-resolves a soname when a library appears earlier in the search path', () => {
    const early = path.join(app, 'early');
    fs.mkdirSync(early);
    gcc('-o', path.join(app, 'bin', 'prog'), path.join(r.src, 'prog.c'), `-L${path.join(app, 'lib')}`, '-lgreet', `-Wl,-rpath,${early}:${path.join(app, 'lib')}`);
    expect(make().code).toBe(0);
    expect(runInJail()).toBe('hello 1.0\n');
    fs.writeFileSync(path.join(r.src, 'greet.c'), 'const char *greet(void) { return "early bird"; }\n');
    gcc('-shared', '-fPIC', '-Wl,-soname,libgreet.so.1', '-o', path.join(early, 'libgreet.so.1'), path.join(r.src, 'greet.c'));
    const res = make();
    expect(changes(res.stdout)).toContain(`create ${path.join(early, 'libgreet.so.1')} (file): output missing`);
    expect(changes(res.stdout)).toContain(`remove ${lib('libgreet.so.1.0')} (file): no longer declared`);
    expect(runInJail()).toBe('early bird\n');
    expect(spawnSync('chroot', [r.root, '/bin/true']).status).not.toBe(0); // nothing else sneaked in
  });
});

describe('paths with .. in them', () => {
  it('makes every directory the kernel walks through before a .., so the jailed program runs, and -q and check agree', () => {
    const x = path.join(r.src, 'x');
    for (const d of ['lib', 'build', 'bin', 'gone', 'other', 'real/lib', 'real/lib2', 'Q2']) fs.mkdirSync(path.join(x, d), { recursive: true });
    const c = (name: string, body: string) => { fs.writeFileSync(path.join(r.src, name), body); return path.join(r.src, name); };
    const shared = (out: string, fn: string, soname: string) => gcc('-shared', '-fPIC', `-Wl,-soname,${soname}`, '-o', path.join(x, out), c(`${fn}.c`, `int ${fn}(void) { return 0; }\n`));
    const main = c('m.c', '#include <stdio.h>\nint main(void) { puts("ran"); return 0; }\n');
    shared('lib/libw.so', 'w', 'libw.so');
    shared('other/libk.so.1.0', 'k', 'libk.so.1');
    fs.symlinkSync('../gone/../other/libk.so.1.0', path.join(x, 'lib/libk.so.1'));
    shared('real/lib2/libr.so', 'rr', 'libr.so');
    shared('real/lib/liba.so', 'a', 'liba.so');
    fs.symlinkSync('real/lib', path.join(x, 'libdir'));
    // No soname: the link records the path it was given as the NEEDED entry.
    gcc('-shared', '-fPIC', '-o', path.join(x, 'libq.so'), c('q.c', 'int q(void) { return 0; }\n'));
    const prog = (name: string, ...args: string[]) => gcc('-Wl,--no-as-needed', '-o', path.join(x, 'bin', name), main, ...args);
    // An RPATH through a directory left by .., a library link whose target climbs out of
    // another, an RPATH through a symlinked directory, and a NEEDED path holding ..
    prog('pw', `-L${x}/lib`, '-lw', `-Wl,-rpath,${x}/build/../lib`);
    prog('pk', `-L${x}/lib`, '-l:libk.so.1', `-Wl,-rpath,${x}/lib`);
    prog('pr', `-L${x}/real/lib2`, '-lr', `-Wl,-rpath,${x}/libdir/../lib2`);
    prog('pq', `${x}/Q2/../libq.so`);
    prog('pa', `-L${x}/real/lib`, '-la', `-Wl,-rpath,${x}/real/lib`);
    const progs = ['pw', 'pk', 'pr', 'pq'];
    for (const p of progs) expect(execFileSync(path.join(x, 'bin', p), { encoding: 'utf8' })).toBe('ran\n');
    const jailOf = (names: string[]) => r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ ${names.map((n) => `elf(SRC + '/x/bin/${n}')`).join(', ')} ]);`);
    const agree = () => {
      expect(make('-q').code).toBe(0);
      const check = r.jail('check', `ROOT=${r.root}`, `SRC=${r.src}`, '--json');
      expect(JSON.parse(check.stdout).findings.filter((f: { kind: string }) => f.kind.startsWith('missing-'))).toEqual([]);
    };
    jailOf(progs);
    expect(make().code).toBe(0);
    for (const p of progs) expect(execFileSync('chroot', [r.root, path.join(x, 'bin', p)], { encoding: 'utf8' }), p).toBe('ran\n');
    for (const d of ['build', 'gone', 'Q2', 'real/lib']) expect(fs.lstatSync(path.join(r.root, x, d)).isDirectory(), d).toBe(true);
    expect(fs.readlinkSync(path.join(r.root, x, 'libdir'))).toBe('real/lib');
    agree();
    // real/lib, which pr only passes through, stays when pa, whose library lives there, leaves.
    jailOf(['pa', 'pr']);
    expect(make().code).toBe(0);
    jailOf(['pr']);
    expect(changes(make().stdout)).toEqual([`remove ${x}/bin/pa (file): no longer declared`, `remove ${x}/real/lib/liba.so (file): no longer declared`]);
    expect(execFileSync('chroot', [r.root, path.join(x, 'bin', 'pr')], { encoding: 'utf8' })).toBe('ran\n');
    agree();
  });
});

describe('libraries the host finds only through its ld.so.cache', () => {
  // The host's loader finds a library in a directory named by /etc/ld.so.conf.d only through
  // /etc/ld.so.cache; the test adds such a directory for its own run and takes it away after.
  let conf: string;
  let libDir: string;
  beforeEach(() => {
    libDir = path.join(r.src, 'cachelib');
    fs.mkdirSync(libDir);
    fs.writeFileSync(path.join(r.src, 'v.c'), 'int v(void) { return 7; }\n');
    gcc('-shared', '-fPIC', '-Wl,-soname,libjcache.so.1', '-o', path.join(libDir, 'libjcache.so.1.0'), path.join(r.src, 'v.c'));
    fs.symlinkSync('libjcache.so.1.0', path.join(libDir, 'libjcache.so.1'));
    fs.symlinkSync('libjcache.so.1', path.join(libDir, 'libjcache.so'));
    fs.writeFileSync(path.join(r.src, 'cached.c'), '#include <stdio.h>\nint v(void);\nint main(void) { printf("v=%d\\n", v()); return 0; }\n');
    gcc('-o', path.join(r.src, 'cached'), path.join(r.src, 'cached.c'), '-L' + libDir, '-ljcache');
    conf = `/etc/ld.so.conf.d/zz-jail-test-${path.basename(r.dir)}.conf`;
    fs.writeFileSync(conf, libDir + '\n');
    execFileSync('ldconfig');
  });
  afterEach(() => {
    fs.rmSync(conf, { force: true });
    execFileSync('ldconfig');
  });

  it('gives the jail an ld.so.cache with their entries, which the real loader uses', () => {
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/cached') ]);`);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/create \/etc\/ld\.so\.cache/);
    // The jail's cache names exactly the library that needs it, at its path in the jail.
    const listed = execFileSync('ldconfig', ['-p', '-C', path.join(r.root, 'etc/ld.so.cache')], { encoding: 'utf8' });
    expect(listed.trim().split('\n')).toEqual([
      '1 libs found in cache `' + path.join(r.root, 'etc/ld.so.cache') + "'",
      `\tlibjcache.so.1 (libc6,x86-64) => ${libDir}/libjcache.so.1`,
    ]);
    expect(fs.readlinkSync(path.join(r.root, libDir, 'libjcache.so.1'))).toBe('libjcache.so.1.0');
    expect(execFileSync('chroot', [r.root, path.join(r.src, 'cached')], { encoding: 'utf8' })).toBe('v=7\n');
    // Without it the loader does not look in that directory; the next build puts it back.
    fs.rmSync(path.join(r.root, 'etc/ld.so.cache'));
    const broken = spawnSync('chroot', [r.root, path.join(r.src, 'cached')], { encoding: 'utf8' });
    expect(broken.status).not.toBe(0);
    expect(broken.stderr).toMatch(/libjcache\.so\.1: cannot open shared object file/);
    // It is one of the libs: `make libs` after a host upgrade brings it back too.
    expect(changes(make('libs').stdout)).toEqual([expect.stringMatching(/^create \/etc\/ld\.so\.cache /)]);
    expect(execFileSync('chroot', [r.root, path.join(r.src, 'cached')], { encoding: 'utf8' })).toBe('v=7\n');
    // Resolved inside the jail, through the jail's own cache, the closure is whole.
    const deps = JSON.parse(r.jail('deps', '--json', '--root', r.root, path.join(r.src, 'cached')).stdout);
    expect(deps[path.join(r.src, 'cached')].libraries['libjcache.so.1']).toBe(`${libDir}/libjcache.so.1`);
    expect(changes(make().stdout)).toEqual([]);

    // Without the program, the jail needs no cache, and the generated one goes.
    r.jailfile(`
import { defineJail, elf } from 'jail';
export default defineJail(() => [ elf('/bin/sh') ]);`);
    const again = make();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/remove \/etc\/ld\.so\.cache/);
    expect(fs.existsSync(path.join(r.root, 'etc/ld.so.cache'))).toBe(false);
  });

  it('leaves a jailfile\'s own /etc/ld.so.cache in charge', () => {
    r.jailfile(`
import { defineJail, elf, copy } from 'jail';
export default defineJail(({ SRC }) => [ elf(SRC + '/cached'), copy('/etc/ld.so.cache') ]);`);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readFileSync(path.join(r.root, 'etc/ld.so.cache')).equals(fs.readFileSync('/etc/ld.so.cache'))).toBe(true);
    expect(execFileSync('chroot', [r.root, path.join(r.src, 'cached')], { encoding: 'utf8' })).toBe('v=7\n');
  });
});
