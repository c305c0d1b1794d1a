// The make semantics of issue #2, as a user lives them: build, change one thing, build
// again, and assert exactly what was touched in ROOT.

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO, changes, fingerprint, rig, touched, tree, type Rig } from './helpers.js';
import { sourceStampOf, stampOf } from '../tasks/stat.js';
import { defaultJobs } from '../tasks/jobs.js';
import { manifestPath } from '../tasks/manifest.js';
import { isEntryOf } from '../tasks/targets.js';
import { rootKey, stateDir } from '../tasks/manifest.js';
import { HumanLog, progressLine } from '../tasks/progress.js';

let r: Rig;

const JAILFILE = (extra = '') => `
import { defineJail, dir, link, device, copy, text, users } from 'jail';
export default defineJail(({ ROOT, SRC, GREETING = 'hello' }) => [
  dir(['/bin', '/etc', '/var/log', '/var/www']),
  dir('/tmp', { mode: 0o1777 }),
  link('/lib', 'usr/lib'),
  device('/dev/null', { type: 'c', major: 1, minor: 3, mode: 0o666 }),
  copy(SRC + '/a.conf', { to: '/etc/a.conf' }),
  copy(SRC + '/b.conf', { to: '/etc/b.conf', mode: 0o600 }),
  copy(SRC + '/site', { to: '/var/www/site' }),
  text('/etc/motd', GREETING + ' from ' + ROOT + '\\n'),
  users({ www: { uid: 80, gid: 80, home: '/var/www', shell: '/usr/sbin/nologin' } }),
  ${extra}
]);
`;

function makeSources(src: string) {
  fs.writeFileSync(path.join(src, 'a.conf'), 'alpha\n');
  fs.writeFileSync(path.join(src, 'b.conf'), 'bravo\n');
  fs.mkdirSync(path.join(src, 'site', 'img'), { recursive: true });
  fs.writeFileSync(path.join(src, 'site', 'index.html'), '<h1>hi</h1>\n');
  fs.writeFileSync(path.join(src, 'site', 'img', 'logo.svg'), '<svg/>\n');
  fs.symlinkSync('index.html', path.join(src, 'site', 'home.html'));
}

beforeEach(() => {
  r = rig();
  makeSources(r.src);
  r.jailfile(JAILFILE());
});
afterEach(() => r.cleanup());

const make = (...args: string[]) => r.jail('make', `ROOT=${r.root}`, `SRC=${r.src}`, ...args);

describe('first build', () => {
  it('creates every target, one line each, and a summary line', () => {
    const res = make();
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const lines = changes(res.stdout);
    expect(lines.every((l) => l.startsWith('create '))).toBe(true);
    expect(lines).toContain('create /etc/motd (text): output missing');
    expect(lines).toContain('create /dev/null (device): output missing');
    const summary = res.stdout.trim().split('\n').at(-1)!;
    expect(summary).toMatch(new RegExp(`^jail: ${lines.length} created, 0 updated, 0 removed, 0 up to date in \\d+\\.\\d+s$`));

    const st = (p: string) => fs.lstatSync(r.root + p);
    expect(st('/tmp').mode & 0o7777).toBe(0o1777);
    expect(fs.readlinkSync(r.root + '/lib')).toBe('usr/lib');
    expect(st('/dev/null').isCharacterDevice()).toBe(true);
    expect(st('/dev/null').rdev).toBe(fs.statSync('/dev/null').rdev);
    expect(st('/dev/null').mode & 0o7777).toBe(0o666);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe(`hello from ${r.root}\n`);
    expect(st('/etc/b.conf').mode & 0o7777).toBe(0o600);
    expect(fs.readlinkSync(r.root + '/var/www/site/home.html')).toBe('index.html');
    expect(fs.readFileSync(r.root + '/var/www/site/img/logo.svg', 'utf8')).toBe('<svg/>\n');
    expect(fs.readFileSync(r.root + '/etc/passwd', 'utf8')).toBe('root:x:0:0:root:/root:/usr/sbin/nologin\nwww:x:80:80::/var/www:/usr/sbin/nologin\n');
    expect(fs.readFileSync(r.root + '/etc/group', 'utf8')).toBe('root:x:0:\nwww:x:80:\n');
    expect(fs.readFileSync(r.root + '/etc/shadow', 'utf8')).toMatch(/^root:\*:.*\nwww:\*:/);
    expect(st('/etc/shadow').mode & 0o777).toBe(0o600);
    // Nothing but what was declared, and no temporary files.
    expect([...fingerprint(r.root).keys()].filter((p) => p.includes('.jail-tmp'))).toEqual([]);
  });

  it('builds the basic fixture jailfile exactly as the issue writes it', () => {
    const basic = r.repoJailfile('fixtures/jailfiles/basic.ts');
    const res = r.jail('make', `ROOT=${r.root}`, '-f', basic, 'GREETING=hi');
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe(`hi from ${r.root}\n`);
    expect(fs.readFileSync(r.root + '/etc/localtime')).toEqual(fs.readFileSync('/usr/share/zoneinfo/UTC'));
    expect(fs.lstatSync(r.root + '/etc/localtime').isFile()).toBe(true);
    expect(fs.readdirSync(r.root + '/usr/share/doc/bash').sort()).toEqual(fs.readdirSync('/usr/share/doc/bash').sort());
    expect(fs.readFileSync(r.root + '/etc/services')).toEqual(fs.readFileSync('/etc/services'));
    expect(fs.statSync(r.root + '/dev/zero').rdev).toBe(fs.statSync('/dev/zero').rdev);
    expect(r.jail('make', `ROOT=${r.root}`, '-f', basic, 'GREETING=hi', '-q').code).toBe(0);
  });
});

describe('host programs', () => {
  it('run without a shell: root\'s shell start-up files never run while devices are made', () => {
    // bash sources root's ~/.bashrc when its stdin is a socket (node's pipes are), as under sshd.
    // root's home here is a directory of the test's, bound over /root in a mount namespace of
    // its own: a .bashrc (and a BASH_ENV) that leave a mark and put a `mknod` of theirs first in PATH.
    const home = path.join(r.outside, 'home');
    const marks = path.join(r.outside, 'marks');
    fs.mkdirSync(path.join(home, 'bin'), { recursive: true });
    fs.mkdirSync(marks);
    fs.writeFileSync(path.join(home, 'bin', 'mknod'), `#!/bin/sh\necho "$@" > ${marks}/fake-mknod\nexit 1\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(home, '.bashrc'), `echo ran > ${marks}/bashrc\nexport PATH=${home}/bin:$PATH\n`);
    fs.writeFileSync(path.join(home, 'env.sh'), `echo ran > ${marks}/bash-env\nexport PATH=${home}/bin:$PATH\n`);
    const env = { ...process.env, FORCE_COLOR: '0', HOME: home, BASH_ENV: path.join(home, 'env.sh'), ENV: path.join(home, 'env.sh'), SSH_CLIENT: '10.0.0.1 50000 22' };
    const res = spawnSync('unshare', ['--mount', '--propagation=private', '--', '/bin/sh', '-c', 'mount --bind "$0" /root && exec "$@"', home,
      process.execPath, path.join(REPO, 'dist', 'tasks', 'cli.js'), 'make', `ROOT=${r.root}`, `SRC=${r.src}`], { cwd: r.dir, env, encoding: 'utf8', input: '' });
    expect(res.status, res.stderr).toBe(0);
    expect(changes(res.stdout)).toContain('create /dev/null (device): output missing');
    expect(fs.readdirSync(marks)).toEqual([]);
    const st = fs.lstatSync(path.join(r.root, 'dev', 'null'));
    expect(st.isCharacterDevice()).toBe(true);
    expect([st.rdev >> 8, st.rdev & 0xff, st.mode & 0o7777]).toEqual([1, 3, 0o666]);
  });
});

describe('a second make', () => {
  it('writes nothing into ROOT, and -q says up to date', () => {
    make();
    const before = fingerprint(r.root);
    const res = make();
    expect(res.code).toBe(0);
    expect(changes(res.stdout)).toEqual([]);
    expect(res.stdout).toMatch(/jail: 0 created, 0 updated, 0 removed, \d+ up to date/);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    expect(make('-q').code).toBe(0);
  });
});

describe('a changed source', () => {
  it('updates exactly that target', () => {
    make();
    const before = fingerprint(r.root);
    fs.writeFileSync(path.join(r.src, 'a.conf'), 'alpha 2\n');
    const q = make('-q');
    expect(q.code).toBe(1);
    expect(q.stdout).toBe('');
    const res = make();
    expect(changes(res.stdout)).toEqual(['update /etc/a.conf (file): source changed: content']);
    expect(touched(before, fingerprint(r.root))).toEqual(['/etc/a.conf']);
    expect(fs.readFileSync(r.root + '/etc/a.conf', 'utf8')).toBe('alpha 2\n');
    expect(make('-q').code).toBe(0);
  });

  it('copies nothing when a source is touched without changing its bytes', () => {
    make();
    const before = fingerprint(r.root);
    const earlier = new Date(Date.now() - 5000);
    fs.utimesSync(path.join(r.src, 'a.conf'), earlier, earlier);
    fs.writeFileSync(path.join(r.src, 'site', 'index.html'), '<h1>hi</h1>\n'); // rewritten, same bytes
    const res = make();
    expect(changes(res.stdout)).toEqual([]);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    // ... and the record is refreshed, so the next run does not even compare bytes again.
    expect(make('-q').code).toBe(0);
  });

  it('does not trust the stamp of a source written as the build read it: the next build compares bytes', () => {
    const a = path.join(r.src, 'a.conf');
    // Times in the future (or within a clock tick of the build) cannot tell a later same-size write apart.
    const soon = new Date(Date.now() + 60_000);
    fs.utimesSync(a, soon, soon);
    make();
    const manifestFile = path.join(r.dir, '.jail', fs.readdirSync(path.join(r.dir, '.jail')).find((n) => n.endsWith('.json') && n !== 'elf-facts.json')!);
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    expect(manifest.records['/etc/a.conf'].ss).toMatch(/:racy$/);
    expect(manifest.records['/etc/b.conf'].ss).not.toMatch(/racy/);
    // Same bytes: nothing is written, however often the stamp is distrusted.
    const before = fingerprint(r.root);
    expect(changes(make().stdout)).toEqual([]);
    expect(make('-q').code).toBe(0);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    // The race itself: a same-size write in the tick the build read the stamp in leaves the
    // record holding the source's current stamp over the old bytes. Marked racy, it is checked.
    fs.writeFileSync(a, 'alphX\n');
    fs.utimesSync(a, soon, soon);
    const now = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    now.records['/etc/a.conf'].ss = `${stampOf(fs.statSync(a, { bigint: true }))}:racy`;
    fs.writeFileSync(manifestFile, JSON.stringify(now));
    expect(changes(make().stdout)).toEqual(['update /etc/a.conf (file): source changed: content']);
    expect(fs.readFileSync(r.root + '/etc/a.conf', 'utf8')).toBe('alphX\n');
    // A source older than a clock tick is trusted by its stamp, as before.
    const st = fs.statSync(path.join(r.src, 'b.conf'), { bigint: true });
    expect(sourceStampOf(st)).toBe(stampOf(st));
    expect(sourceStampOf(st, st.ctimeNs + 1_000_000n)).toBe(`${stampOf(st)}:racy`);
  });

  it("says the source changed when a copy's mode follows its source's chmod, in every report", () => {
    make();
    const before = fingerprint(r.root);
    fs.chmodSync(path.join(r.src, 'a.conf'), 0o600);
    fs.chmodSync(path.join(r.src, 'site', 'img'), 0o700);
    fs.chmodSync(path.join(r.src, 'b.conf'), 0o640); // declared mode 0600: the source's is not used
    const expected = [
      'update /etc/a.conf (file): source changed: mode 0644 -> 0600',
      'update /var/www/site/img (dir): source changed: mode 0755 -> 0700',
    ];
    expect(changes(make('-n').stdout)).toEqual(expected.map((l) => `would ${l}`));
    const json = JSON.parse(make('-n', '--json').stdout);
    expect(json.updated.map((a: { path: string; kind: string; reason: string }) => `update ${a.path} (${a.kind}): ${a.reason}`).sort()).toEqual(expected);
    const res = make('--explain');
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout).map((l) => l.replace(/ \[.*$/, ''))).toEqual(expected);
    expect(touched(before, fingerprint(r.root))).toEqual(['/etc/a.conf', '/var/www/site/img']);
    // A mode changed in ROOT is still told apart from the declared one.
    fs.chmodSync(r.root + '/etc/a.conf', 0o644);
    expect(changes(make().stdout)).toEqual(['update /etc/a.conf (file): mode 0644 != declared 0600']);
  });

  it('follows a variable that changes generated content', () => {
    make();
    const before = fingerprint(r.root);
    const res = make('GREETING=bye');
    expect(changes(res.stdout)).toEqual(['update /etc/motd (text): content changed']);
    expect(touched(before, fingerprint(r.root))).toEqual(['/etc/motd']);
  });
});

describe('tampering in ROOT', () => {
  const cases: [string, () => void, RegExp][] = [
    ['deleted', () => fs.unlinkSync(r.root + '/etc/a.conf'), /create \/etc\/a\.conf \(file\): output missing \(deleted since the last build\)/],
    ['edited', () => fs.appendFileSync(r.root + '/etc/a.conf', 'evil\n'), /update \/etc\/a\.conf \(file\): output edited since the last build/],
    ['edited, same size, times put back', () => {
      const st = fs.statSync(r.root + '/etc/a.conf');
      fs.writeFileSync(r.root + '/etc/a.conf', 'ALPHA\n');
      fs.utimesSync(r.root + '/etc/a.conf', st.atime, st.mtime);
    }, /update \/etc\/a\.conf \(file\): output edited/],
    ['chmod', () => fs.chmodSync(r.root + '/etc/a.conf', 0o666), /update \/etc\/a\.conf \(file\): mode 0666 != declared 0644/],
    ['chown', () => fs.chownSync(r.root + '/etc/a.conf', 1000, 1000), /update \/etc\/a\.conf \(file\): owner 1000:1000 != declared 0:0/],
    ['replaced by a symlink', () => { fs.unlinkSync(r.root + '/etc/a.conf'); fs.symlinkSync(path.join(r.outside, 'x'), r.root + '/etc/a.conf'); }, /update \/etc\/a\.conf \(file\): output is a symlink, declared a regular file/],
    ['replaced by a directory', () => { fs.unlinkSync(r.root + '/etc/a.conf'); fs.mkdirSync(r.root + '/etc/a.conf/sub', { recursive: true }); fs.writeFileSync(r.root + '/etc/a.conf/sub/f', 'x'); }, /update \/etc\/a\.conf \(file\): output is a directory, declared a regular file/],
    ['a device retyped', () => { fs.unlinkSync(r.root + '/dev/null'); fs.writeFileSync(r.root + '/dev/null', ''); }, /update \/dev\/null \(device\): output is a regular file, declared a character device/],
    ['a link repointed', () => { fs.unlinkSync(r.root + '/lib'); fs.symlinkSync('/lib', r.root + '/lib'); }, /update \/lib \(symlink\): link points to \/lib, declared usr\/lib/],
    // The jail wrote the target: its escape sequence is shown, never sent to the terminal.
    ['a link repointed at an escape sequence', () => { fs.unlinkSync(r.root + '/lib'); fs.symlinkSync('\x1b[2J\n', r.root + '/lib'); }, /update \/lib \(symlink\): link points to \\x1b\[2J\\x0a, declared usr\/lib/],
    ['a directory chmod', () => fs.chmodSync(r.root + '/tmp', 0o755), /update \/tmp \(dir\): mode 0755 != declared 1777/],
  ];
  for (const [name, tamper, line] of cases) {
    it(`is detected and repaired: ${name}`, () => {
      make();
      const good = new Map([...fingerprint(r.root)].map(([p, f]) => [p, { ...f, ino: 0n, mtimeNs: 0n, ctimeNs: 0n }]));
      tamper();
      expect(make('-q').code).toBe(1);
      const res = make();
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(line);
      expect(changes(res.stdout)).toHaveLength(1);
      const now = new Map([...fingerprint(r.root)].map(([p, f]) => [p, { ...f, ino: 0n, mtimeNs: 0n, ctimeNs: 0n }]));
      expect(now).toEqual(good);
      expect(fs.readFileSync(r.root + '/etc/a.conf', 'utf8')).toBe('alpha\n');
      expect(make('-q').code).toBe(0);
    });
  }
});

describe('a jail file\'s inode touched in ROOT', () => {
  it('is rewritten when only its ctime moved (a chmod put back), and the build\'s own writes stay a no-op', () => {
    expect(make().code).toBe(0);
    const built = fingerprint(r.root);
    // A no-op after a build writes nothing: every output's stamp was taken after its last change.
    expect(changes(make().stdout)).toEqual([]);
    expect(touched(built, fingerprint(r.root))).toEqual([]);
    // Mode, bytes and times are as built; only the inode's ctime says it was touched.
    fs.chmodSync(r.root + '/etc/a.conf', 0o4755);
    fs.chmodSync(r.root + '/etc/a.conf', 0o644);
    expect(make('-q').code).toBe(1);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual(['update /etc/a.conf (file): output metadata changed since the last build (its ctime moved: a capability or other xattr, a mode or owner put back, a link)']);
    expect(touched(built, fingerprint(r.root))).toEqual(['/etc/a.conf']);
    expect(make('-q').code).toBe(0);
  });

  // setcap is in libcap2-bin; a host without it skips this case (the chmod case above tests the same rule).
  const setcap = ['/usr/sbin/setcap', '/sbin/setcap'].find((p) => fs.existsSync(p));
  it.skipIf(!setcap)('loses a file capability set on a built program by hand: the next make rewrites exactly that file', () => {
    r.jailfile(JAILFILE(`elf('/usr/bin/cat'),`).replace('copy, text, users }', 'copy, text, users, elf }'));
    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    expect(spawnSync(setcap!, ['cap_net_raw+ep', r.root + '/usr/bin/cat']).status).toBe(0);
    expect(execFileSync(setcap!.replace(/setcap$/, 'getcap'), [r.root + '/usr/bin/cat'], { encoding: 'utf8' })).toMatch(/cap_net_raw/);
    expect(make('-q').code).toBe(1);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual([expect.stringMatching(/^update \/usr\/bin\/cat \(file\): output metadata changed since the last build/)]);
    expect(touched(before, fingerprint(r.root))).toEqual(['/usr/bin/cat']);
    expect(execFileSync(setcap!.replace(/setcap$/, 'getcap'), [r.root + '/usr/bin/cat'], { encoding: 'utf8' }).trim()).toBe('');
    expect(make('-q').code).toBe(0);
  });
});

describe('globs', () => {
  it('copies what a copy() glob matches and places the programs an elf() glob matches', () => {
    fs.mkdirSync(path.join(r.src, 'globbed'));
    for (const f of ['a.txt', 'b.txt', 'c.conf']) fs.writeFileSync(path.join(r.src, 'globbed', f), f);
    r.jailfile(JAILFILE(`copy(SRC + '/globbed/*.txt', { to: '/srv' }), elf('/usr/bin/ba?h'),`).replace("copy, text, users }", "copy, text, users, elf }"));
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readdirSync(r.root + '/srv').sort()).toEqual(['a.txt', 'b.txt']);
    expect(fs.statSync(r.root + '/usr/bin/bash').isFile()).toBe(true);
    expect(make('-q').code).toBe(0);
  });

  it('takes a source with `[...]` as a glob, and a source whose glob characters are escaped as that one path', () => {
    fs.mkdirSync(path.join(r.src, 'a[1]'));
    fs.mkdirSync(path.join(r.src, 'a1'));
    fs.writeFileSync(path.join(r.src, 'a[1]', 'f'), 'literal\n');
    fs.writeFileSync(path.join(r.src, 'a1', 'f'), 'one\n');
    const at = (source: string, to: string) => {
      r.jailfile(`import { defineJail, copy } from 'jail';\nexport default defineJail(({ SRC }) => [copy(${source}, { to: '${to}' })]);\n`);
      const res = make('-n');
      expect(res.code, res.stderr).toBe(0);
      return changes(res.stdout).filter((l) => /\(file\)/.test(l)).map((l) => l.replace(/^would create (\S+) .*/, '$1'));
    };
    // As globby has it, [1] matches both a1 and a literal a[1]: both land beneath `to`.
    expect(at(`SRC + '/a[1]/f'`, '/y')).toEqual(['/y/a1/f', '/y/a[1]/f']);
    // Escaped, it is one host path, copied to `to` itself as any plain path is.
    expect(at(`SRC + '/a\\\\[1\\\\]/f'`, '/y')).toEqual(['/y']);
    expect(at(`SRC + '/a\\\\[1]/f'`, '/y')).toEqual(['/y']);
    // An escaped part of a glob is part of its base.
    expect(at(`SRC + '/a\\\\[1]/*'`, '/y')).toEqual(['/y/f']);
    make();
    expect(fs.readFileSync(r.root + '/y/f', 'utf8')).toBe('literal\n');
  });
});

describe('pruning', () => {
  it('removes what is no longer declared, and never what a service made', () => {
    r.jailfile(JAILFILE(`copy(SRC + '/extra', { to: '/srv/extra' }),`));
    fs.mkdirSync(path.join(r.src, 'extra'));
    fs.writeFileSync(path.join(r.src, 'extra', 'x'), 'x');
    make();
    fs.writeFileSync(r.root + '/var/log/access.log', 'GET /\n'); // the service's own
    fs.writeFileSync(r.root + '/var/www/upload.bin', 'data'); // inside a declared directory
    const before = fingerprint(r.root);
    r.jailfile(JAILFILE());
    // A group or a path builds what it names and removes nothing: pruning is the full make's.
    expect(changes(make('files').stdout)).toEqual([]);
    expect(changes(make('dirs').stdout)).toEqual([]);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    const res = make();
    expect(changes(res.stdout)).toEqual([
      'remove /srv (dir): no longer declared',
      'remove /srv/extra (dir): no longer declared',
      'remove /srv/extra/x (file): no longer declared',
    ]);
    expect(fs.existsSync(r.root + '/srv')).toBe(false);
    expect(fs.readFileSync(r.root + '/var/log/access.log', 'utf8')).toBe('GET /\n');
    expect(fs.readFileSync(r.root + '/var/www/upload.bin', 'utf8')).toBe('data');
    expect(touched(before, fingerprint(r.root))).toEqual(['/srv', '/srv/extra', '/srv/extra/x']);
    expect(make('-q').code).toBe(0);
  });

  it('keeps a no-longer-declared directory that holds a service\'s files, and says so', () => {
    r.jailfile(JAILFILE(`dir('/var/spool'),`));
    make();
    fs.writeFileSync(r.root + '/var/spool/mail', 'm');
    r.jailfile(JAILFILE());
    const res = make();
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/warning: kept \/var\/spool: no longer declared, but it holds files jail did not create/);
    expect(fs.readFileSync(r.root + '/var/spool/mail', 'utf8')).toBe('m');
  });

  it('leaves what a service put where jail\'s files were, in a prune and in clean, and says so', () => {
    r.jailfile(JAILFILE(`dir('/var/spool'), text('/etc/issue', 'jail\\n'), link('/etc/mtab', '/proc/mounts'),`));
    expect(make().code).toBe(0);
    // The service replaced jail's files: a file where the directory was, new bytes by rename, another link.
    fs.rmdirSync(r.root + '/var/spool');
    fs.writeFileSync(r.root + '/var/spool', 'important log\n');
    fs.writeFileSync(r.root + '/etc/issue.new', 'the service\'s own\n');
    fs.renameSync(r.root + '/etc/issue.new', r.root + '/etc/issue');
    fs.unlinkSync(r.root + '/etc/mtab');
    fs.symlinkSync('/proc/self/mounts', r.root + '/etc/mtab');
    r.jailfile(JAILFILE());
    for (const args of [['-n'], []]) {
      const res = make(...args);
      expect(res.code, res.stderr).toBe(0);
      expect(changes(res.stdout)).toEqual([]);
      expect(res.stderr).toContain('left /var/spool: no longer declared, but it is a regular file now, where jail made a directory');
      expect(res.stderr).toContain('left /etc/issue: no longer declared, but it was replaced or edited since jail wrote it');
      expect(res.stderr).toContain('left /etc/mtab: no longer declared, but it points to /proc/self/mounts, where jail made a link to /proc/mounts');
    }
    expect(fs.readFileSync(r.root + '/var/spool', 'utf8')).toBe('important log\n');
    expect(fs.readFileSync(r.root + '/etc/issue', 'utf8')).toBe('the service\'s own\n');
    expect(make('-q').code).toBe(0);
    // clean removes what jail put there and leaves the same kind of thing alone.
    fs.writeFileSync(r.root + '/etc/motd.new', 'edited by hand\n');
    fs.renameSync(r.root + '/etc/motd.new', r.root + '/etc/motd');
    const res = make('clean');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('left /etc/motd: clean removes it, but it was replaced or edited since jail wrote it');
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe('edited by hand\n');
    expect(fs.readFileSync(r.root + '/var/spool', 'utf8')).toBe('important log\n');
    expect(fs.existsSync(r.root + '/etc/a.conf')).toBe(false);
  });

  it('plans a kept directory as kept in -n, -q and --json, as the build keeps it, and removes it once it is empty', () => {
    fs.mkdirSync(path.join(r.src, 'tree', 'newdir'), { recursive: true });
    fs.writeFileSync(path.join(r.src, 'tree', 'newdir', 'seed'), 's\n');
    fs.writeFileSync(path.join(r.src, 'tree', 'top'), 't\n');
    r.jailfile(JAILFILE(`copy(SRC + '/tree', { to: '/srv/tree' }), data('/srv/data'),`).replace('copy, text, users }', 'copy, text, users, data }'));
    expect(make().code).toBe(0);
    fs.writeFileSync(r.root + '/srv/tree/newdir/data.db', 'svc\n'); // the service's own
    fs.writeFileSync(r.root + '/srv/data/rows', 'r\n');
    r.jailfile(JAILFILE());
    const kept = ['/srv/tree/newdir', '/srv/tree', '/srv/data', '/srv']
      .map((p) => `jail: warning: kept ${p}: no longer declared, but it holds files jail did not create (a service's data?); remove it by hand if it should go`);
    const goes = ['remove /srv/tree/newdir/seed (file): no longer declared', 'remove /srv/tree/top (file): no longer declared'];
    const before = fingerprint(r.root);
    const n = make('-n');
    expect(n.code).toBe(0);
    expect(changes(n.stdout)).toEqual(goes.map((l) => `would ${l}`));
    expect(n.stderr.trim().split('\n').sort()).toEqual([...kept].sort());
    expect(n.stdout).toMatch(/jail: 0 would be created, 0 would be updated, 2 would be removed/);
    const json = JSON.parse(make('-n', '--json').stdout);
    expect(json.removed.map((a: { path: string }) => a.path)).toEqual(['/srv/tree/top', '/srv/tree/newdir/seed']);
    expect(json.warnings).toHaveLength(4);
    expect(make('-q').code).toBe(1); // two files to remove
    expect(touched(before, fingerprint(r.root))).toEqual([]);

    const res = make();
    expect(res.code).toBe(0);
    expect(changes(res.stdout)).toEqual(goes);
    expect(res.stderr.trim().split('\n').sort()).toEqual([...kept].sort());
    expect(res.stdout).toMatch(/jail: 0 created, 0 updated, 2 removed/);
    expect(touched(before, fingerprint(r.root))).toEqual(['/srv/tree/newdir/seed', '/srv/tree/top']);
    // Kept is not a change: every later run agrees, and says so.
    expect(make('-q').code).toBe(0);
    expect(changes(make('-n').stdout)).toEqual([]);
    const again = make();
    expect(changes(again.stdout)).toEqual([]);
    expect(again.stderr).toContain(kept[0]);
    expect(fs.readFileSync(r.root + '/srv/tree/newdir/data.db', 'utf8')).toBe('svc\n');
    expect(fs.readFileSync(r.root + '/srv/data/rows', 'utf8')).toBe('r\n');
    // The service's file gone, the directories jail made go with the next build; /srv/data still holds its rows.
    fs.unlinkSync(r.root + '/srv/tree/newdir/data.db');
    const empty = make();
    expect(changes(empty.stdout)).toEqual(['remove /srv/tree (dir): no longer declared', 'remove /srv/tree/newdir (dir): no longer declared']);
    expect(empty.stderr.trim().split('\n').sort()).toEqual([kept[2], kept[3]].sort());
    expect(fs.existsSync(r.root + '/srv/tree')).toBe(false);
    expect(make('-q').code).toBe(0);
  });
});

describe('on a terminal', () => {
  it('draws a progress line while it runs, and leaves none behind', () => {
    fs.mkdirSync(path.join(r.src, 'many'));
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(r.src, 'many', `f${i}`), `file ${i}\n`);
    r.jailfile(JAILFILE(`copy(SRC + '/many', { to: '/data' }),`));
    // script(1) gives the build a real pseudo-terminal.
    const cmd = `${process.execPath} ${path.join(REPO, 'dist/tasks/cli.js')} make ROOT=${r.root} SRC=${r.src}`;
    const out = execFileSync('script', ['-qec', cmd, '/dev/null'], { cwd: r.dir, encoding: 'utf8' });
    // Drawn below the action lines, whole (script's terminal says it has 0 columns: 80 are
    // assumed), naming the last of them, and left there until the next lines erase it.
    const draws = [...out.matchAll(/create (\S+) \(file\): output missing\r?\n(\[\d+\/\d+\] [^\r\n]*)(\r\x1b\[K)?/g)];
    expect(draws.length, out.slice(0, 2000)).toBeGreaterThanOrEqual(1);
    for (const [, last, line, erased] of draws) {
      expect(line).toMatch(new RegExp(`^\\[\\d+/\\d+\\] ${last}$`));
      expect(erased).toBe('\r\x1b[K');
    }
    // Every action line is there once, in order; none is written over by the progress line.
    const lines = out.replace(/\[\d+\/\d+\] [^\r\n]*\r\x1b\[K/g, '').split(/\r?\n/).filter((l) => l.startsWith('create /data/'));
    expect(lines.length).toBe(3000);
    const last = out.trimEnd().split('\n').at(-1)!;
    expect(last.replace(/^[\s\S]*\x1b\[K/, '')).toMatch(/^jail: \d+ created, 0 updated, 0 removed, 0 up to date in/);
  });

  it('keeps the progress line below the action lines, redrawn at most every 100 ms, cut to the terminal width', () => {
    // The rendering on its own: a stand-in terminal of a given width, and a clock the test moves.
    const screen: string[] = [];
    let pending: string[] = [];
    const io = { out: (l: string) => { pending.push(l + '\n'); }, err: (l: string) => { io.flush(); screen.push(l + '\n'); }, flush: () => { screen.push(...pending); pending = []; } };
    let now = 1000;
    const term = { columns: 24, write: (t: string) => { screen.push(t); } };
    const log = new HumanLog(io, { explain: false, progress: true, quiet: false }, { term, now: () => now });
    const action = (p: string) => log.event({ type: 'action', dryRun: false, action: { op: 'create', path: p, kind: 'file', reasons: ['output missing'] } as never });
    log.event({ type: 'start', total: 40 });
    action('/srv/a');
    expect(screen).toEqual(['create /srv/a (file): output missing\n', '[1/40] /srv/a']);
    // Lines that come within 100 ms wait, so the progress line stays the last thing drawn.
    now += 40; action('/srv/b');
    now += 40; action('/srv/a-rather-long-name-to-cut');
    expect(screen.at(-1)).toBe('[1/40] /srv/a');
    now += 20; action('/srv/d');
    expect(screen.slice(2)).toEqual([
      '\r\x1b[K', 'create /srv/b (file): output missing\n', 'create /srv/a-rather-long-name-to-cut (file): output missing\n',
      'create /srv/d (file): output missing\n', '[4/40] /srv/d',
    ]);
    now += 100; action('/srv/a-rather-long-name-to-cut');
    expect(screen.at(-1)).toBe('[5/40] /srv/a-rather-lo');
    expect(screen.at(-1)!.length).toBe(23);
    // A warning erases it first; the summary leaves nothing held and no progress line behind.
    now += 10; action('/srv/e');
    log.event({ type: 'warning', message: 'careful' });
    expect(screen.slice(-3)).toEqual(['\r\x1b[K', 'create /srv/e (file): output missing\n', 'jail: warning: careful\n']);
    log.summary({ created: [], updated: [], removed: [], upToDate: 0, installs: [], errors: [], warnings: [], dryRun: false, seconds: 0.5 } as never, new Set());
    io.flush();
    expect(screen.at(-1)).toMatch(/^jail: 0 created, /);
    expect(screen.filter((t) => t.startsWith('['))).toHaveLength(3);
  });

  it('cuts the progress line one column short of the width, and assumes 80 columns when the terminal says 0', () => {
    const path80 = '/' + 'x'.repeat(100);
    expect(progressLine(3, 9, '/srv/a', 0)).toBe('[3/9] /srv/a');
    expect(progressLine(3, 9, '/srv/a', undefined)).toBe('[3/9] /srv/a');
    expect(progressLine(3, 9, path80, 0)).toHaveLength(79);
    expect(progressLine(3, 9, '/srv/a', 13)).toBe('[3/9] /srv/a');
    expect(progressLine(3, 9, '/srv/abc', 13)).toBe('[3/9] /srv/a');
  });
});

describe('-n, --explain, --json', () => {
  it('-n prints the plan with reasons and changes nothing', () => {
    make();
    fs.writeFileSync(path.join(r.src, 'a.conf'), 'alpha 2\n');
    fs.chmodSync(r.root + '/etc/motd', 0o600);
    const before = fingerprint(r.root);
    const res = make('-n');
    expect(res.code).toBe(0);
    expect(changes(res.stdout)).toEqual([
      'would update /etc/a.conf (file): source changed: content',
      'would update /etc/motd (text): mode 0600 != declared 0644',
    ]);
    expect(res.stdout).toMatch(/jail: 0 would be created, 2 would be updated, 0 would be removed/);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    expect(make('-q').code).toBe(1);
  });

  it('--explain names every reason and the entry behind it', () => {
    make();
    fs.chmodSync(r.root + '/etc/motd', 0o600);
    fs.chownSync(r.root + '/etc/motd', 5, 5);
    const res = make('--explain');
    expect(res.stdout).toMatch(/update \/etc\/motd \(text\): mode 0600 != declared 0644; owner 5:5 != declared 0:0 \[jailfile\.ts:\d+ text\("\/etc\/motd"\)\]/);
  });

  it('--explain gives every reason when several things changed, and --json --explain names the entry', () => {
    make();
    // Source bytes and the output's mode; the output's bytes, mode and owner; declared content and the output's mode.
    fs.writeFileSync(path.join(r.src, 'a.conf'), 'alpha 2\n');
    fs.chmodSync(r.root + '/etc/a.conf', 0o600);
    fs.appendFileSync(r.root + '/etc/b.conf', 'evil\n');
    fs.chmodSync(r.root + '/etc/b.conf', 0o644);
    fs.chownSync(r.root + '/etc/b.conf', 5, 5);
    fs.chmodSync(r.root + '/etc/motd', 0o600);
    const json = JSON.parse(make('-n', '--json', '--explain', 'GREETING=hi').stdout);
    expect(json.updated).toEqual([
      { path: '/etc/a.conf', kind: 'file', reason: 'source changed: content; mode 0600 != declared 0644', at: expect.stringMatching(/^jailfile\.ts:\d+$/) },
      { path: '/etc/b.conf', kind: 'file', reason: 'output edited since the last build; mode 0644 != declared 0600; owner 5:5 != declared 0:0', at: expect.stringMatching(/^jailfile\.ts:\d+$/) },
      { path: '/etc/motd', kind: 'text', reason: 'content changed; mode 0600 != declared 0644', at: expect.stringMatching(/^jailfile\.ts:\d+$/) },
    ]);
    const lineOf = (needle: string) => `jailfile.ts:${JAILFILE().split('\n').findIndex((l) => l.includes(needle)) + 1}`;
    expect(json.updated.map((a: { at: string }) => a.at)).toEqual([lineOf("'/a.conf'"), lineOf("'/b.conf'"), lineOf("text('/etc/motd'")]);
    const res = make('--explain', 'GREETING=hi');
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual([
      expect.stringMatching(/^update \/etc\/a\.conf \(file\): source changed: content; mode 0600 != declared 0644 \[jailfile\.ts:\d+ copy\(/),
      expect.stringMatching(/^update \/etc\/b\.conf \(file\): output edited since the last build; mode 0644 != declared 0600; owner 5:5 != declared 0:0 \[/),
      expect.stringMatching(/^update \/etc\/motd \(text\): content changed; mode 0600 != declared 0644 \[/),
    ]);
    expect(make('-q', 'GREETING=hi').code).toBe(0);
  });

  it('--json prints one report object', () => {
    make();
    fs.writeFileSync(path.join(r.src, 'b.conf'), 'bravo 2\n');
    const res = make('--json');
    const rep = JSON.parse(res.stdout);
    expect(rep.created).toEqual([]);
    expect(rep.updated).toEqual([{ path: '/etc/b.conf', kind: 'file', reason: 'source changed: content' }]);
    expect(rep.removed).toEqual([]);
    expect(rep.errors).toEqual([]);
    expect(rep.upToDate).toBeGreaterThan(10);
  });
});

describe('flags and targets', () => {
  it('-B rebuilds everything', () => {
    make();
    const before = fingerprint(r.root);
    const res = make('-B');
    const n = before.size;
    expect(changes(res.stdout).length).toBe(n);
    const t = touched(before, fingerprint(r.root));
    expect(t).toContain('/etc/a.conf');
    expect(t).toContain('/dev/null');
  });

  it('-j 1 and -j 8 build the same tree', () => {
    make('-j', '1');
    const one = new Map([...fingerprint(r.root)].map(([p, f]) => [p, f.type + f.mode]));
    fs.rmSync(r.root, { recursive: true });
    make('-j8');
    expect(new Map([...fingerprint(r.root)].map(([p, f]) => [p, f.type + f.mode]))).toEqual(one);
  });

  it('copies many files on copy threads (-j above 1) exactly as one thread does, a planted directory in the way included', () => {
    const many = path.join(r.src, 'site', 'many');
    fs.mkdirSync(many);
    for (let i = 0; i < 700; i++) fs.writeFileSync(path.join(many, `f${i}`), `file ${i}\n`.repeat((i % 7) + 1), { mode: i % 2 ? 0o644 : 0o600 });
    expect(make('-j', '1').code).toBe(0);
    const one = tree(r.root);
    fs.rmSync(r.root, { recursive: true });
    // Where a file goes, a directory with something in it: the thread leaves the name to the main thread, which clears it.
    fs.mkdirSync(path.join(r.root, 'var/www/site/many/f5/planted'), { recursive: true });
    const res = make('-j', '4', '--json');
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).created.length).toBeGreaterThanOrEqual(700);
    expect(tree(r.root)).toEqual(one);
    expect(make('-q').code).toBe(0);
  });

  it('-j defaults to the thread pool on tmpfs and ramfs, and to 1 elsewhere', () => {
    const was = process.env.UV_THREADPOOL_SIZE;
    delete process.env.UV_THREADPOOL_SIZE;
    try {
      const type = (p: string) => Number(fs.statfsSync(p).type);
      // /dev/shm is a tmpfs on Linux; the checkout lies on a disk filesystem.
      if (type('/dev/shm') === 0x01021994) expect(defaultJobs('/dev/shm')).toBe(4);
      if (![0x01021994, 0x858458f6].includes(type(REPO))) expect(defaultJobs(REPO)).toBe(1);
      // A ROOT not made yet (a first build) goes by the filesystem it will be made on.
      if (type('/dev/shm') === 0x01021994) expect(defaultJobs('/dev/shm/no/such/root')).toBe(4);
      expect(defaultJobs(path.join(r.root, 'no', 'such', 'dir'))).toBe(defaultJobs(r.dir));
      process.env.UV_THREADPOOL_SIZE = '6';
      if (type('/dev/shm') === 0x01021994) expect(defaultJobs('/dev/shm')).toBe(6);
    } finally {
      if (was === undefined) delete process.env.UV_THREADPOOL_SIZE; else process.env.UV_THREADPOOL_SIZE = was;
    }
    expect(r.jail('--help').stdout).toMatch(/-j N .*default 4 when ROOT is on tmpfs or ramfs, else 1/);
  });

  it('-k builds the rest past a missing source; without -k nothing is touched', () => {
    r.jailfile(JAILFILE(`copy('/nonexistent/file.conf', { to: '/etc/missing.conf' }),`));
    const res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/jailfile\.ts:\d+: copy\("\/nonexistent\/file\.conf"\): \/nonexistent\/file\.conf does not exist on this host/);
    expect(fs.existsSync(r.root)).toBe(false);
    const k = make('-k');
    expect(k.code).toBe(2);
    expect(fs.readFileSync(r.root + '/etc/a.conf', 'utf8')).toBe('alpha\n');
  });

  it('-k keeps what an entry that failed to expand built before, and prunes it only once the entry is gone', () => {
    fs.writeFileSync(path.join(r.src, 'app.conf'), 'app\n');
    fs.mkdirSync(path.join(r.src, 'tree', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(r.src, 'tree', 'sub', 'f'), 'f\n');
    r.jailfile(JAILFILE(`copy(SRC + '/app.conf', { to: '/etc/app.conf' }), copy(SRC + '/tree', { to: '/srv/tree' }),`));
    expect(make().code).toBe(0);
    // Both sources go missing on the host, and another source changes.
    fs.renameSync(path.join(r.src, 'app.conf'), path.join(r.outside, 'app.conf'));
    fs.renameSync(path.join(r.src, 'tree'), path.join(r.outside, 'tree'));
    fs.writeFileSync(path.join(r.src, 'a.conf'), 'alpha 2\n');
    const before = fingerprint(r.root);
    const n = make('-k', '-n');
    expect(n.code).toBe(2);
    expect(changes(n.stdout)).toEqual(['would update /etc/a.conf (file): source changed: content']);
    const k = make('-k');
    expect(k.code).toBe(2);
    expect(k.stderr).toMatch(/app\.conf does not exist on this host/);
    expect(k.stderr).toMatch(/tree does not exist on this host/);
    expect(changes(k.stdout)).toEqual(['update /etc/a.conf (file): source changed: content']);
    expect(touched(before, fingerprint(r.root))).toEqual(['/etc/a.conf']);
    // The sources are back: what they built is still what the record says, and nothing is written.
    fs.renameSync(path.join(r.outside, 'app.conf'), path.join(r.src, 'app.conf'));
    fs.renameSync(path.join(r.outside, 'tree'), path.join(r.src, 'tree'));
    const back = fingerprint(r.root);
    expect(make('-q').code).toBe(0);
    const ok = make();
    expect(ok.code, ok.stderr).toBe(0);
    expect(changes(ok.stdout)).toEqual([]);
    expect(touched(back, fingerprint(r.root))).toEqual([]);
    // The entries removed from the jailfile, their outputs go.
    r.jailfile(JAILFILE());
    expect(changes(make().stdout)).toEqual([
      'remove /etc/app.conf (file): no longer declared',
      'remove /srv (dir): no longer declared',
      'remove /srv/tree (dir): no longer declared',
      'remove /srv/tree/sub (dir): no longer declared',
      'remove /srv/tree/sub/f (file): no longer declared',
    ]);
  });

  it('-k keeps the files of an elf() whose library went missing, and its message stays true', () => {
    const app = path.join(r.src, 'app');
    fs.mkdirSync(path.join(app, 'lib'), { recursive: true });
    fs.mkdirSync(path.join(app, 'bin'));
    fs.writeFileSync(path.join(r.src, 'foo.c'), 'int foo(void) { return 42; }\n');
    execFileSync('gcc', ['-shared', '-fPIC', '-Wl,-soname,libfoo.so.1', '-o', path.join(app, 'lib', 'libfoo.so.1'), path.join(r.src, 'foo.c')]);
    fs.writeFileSync(path.join(r.src, 'prog.c'), 'int foo(void);\nint main(void) { return foo() == 42 ? 0 : 1; }\n');
    execFileSync('gcc', ['-o', path.join(app, 'bin', 'prog'), path.join(r.src, 'prog.c'), path.join(app, 'lib', 'libfoo.so.1'), `-Wl,-rpath,${path.join(app, 'lib')}`]);
    r.jailfile(JAILFILE(`elf(SRC + '/app/bin/prog'),`).replace('copy, text, users }', 'copy, text, users, elf }'));
    expect(make().code).toBe(0);
    const built = [...fingerprint(r.root).keys()];
    fs.renameSync(path.join(app, 'lib', 'libfoo.so.1'), path.join(r.outside, 'libfoo.so.1'));
    fs.writeFileSync(path.join(r.src, 'a.conf'), 'alpha 2\n');
    const before = fingerprint(r.root);
    const k = make('-k');
    expect(k.code).toBe(2);
    expect(k.stderr).toMatch(/libfoo\.so\.1: not found/);
    expect(k.stderr).not.toMatch(/the jail was left as it was/);
    expect(changes(k.stdout)).toEqual(['update /etc/a.conf (file): source changed: content']);
    expect(touched(before, fingerprint(r.root))).toEqual(['/etc/a.conf']);
    expect([...fingerprint(r.root).keys()]).toEqual(built);
    expect(spawnSync('chroot', [r.root, path.join(app, 'bin', 'prog')]).status).toBe(0);
  });

  it('-k builds nothing of an entry whose owner does not resolve: its output stays as it was, -n agrees, and the rest is checked', () => {
    r.jailfile(`import { defineJail, users, data, copy, text } from 'jail';
export default defineJail(({ SRC, U = 'svc', GREETING = 'hi' }) => [
  users({ [U]: { uid: 1001, gid: 1001 } }),
  data('/var/db', { owner: 'svc', mode: 0o700 }),
  text('/var/db/README', 'the service keeps its files here\\n'),
  copy(SRC + '/a.conf', { to: '/etc/svc.conf', owner: 'svc' }),
  text('/etc/motd', GREETING + '\\n'),
  text('/bin/su', 'x\\n', { mode: 0o4755 }),
]);
`);
    expect(make().code).toBe(0);
    const own = (p: string) => { const st = fs.lstatSync(r.root + p); return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`; };
    expect([own('/var/db'), own('/etc/svc.conf')]).toEqual(['1001:1001 700', '1001:1001 644']);
    // The user is renamed: the entries that name the old one fail; the greeting changes too.
    const before = fingerprint(r.root);
    const expected = ['/etc/group', '/etc/motd', '/etc/passwd', '/etc/shadow'];
    const n = make('U=svc2', 'GREETING=hello', '-k', '-n');
    expect(n.code).toBe(2);
    expect(changes(n.stdout)).toEqual(expected.map((p) => `would update ${p} (text): content changed`));
    const k = make('U=svc2', 'GREETING=hello', '-k');
    expect(k.code).toBe(2);
    expect(k.stderr).toMatch(/jailfile\.ts:4: data\("\/var\/db"\): owner "svc": no user svc/);
    expect(k.stderr).toMatch(/jailfile\.ts:6: copy\(.*\): owner "svc": no user svc/);
    expect(k.stderr).toContain('1 target beneath /var/db not built: the entry that declares /var/db failed');
    expect(changes(k.stdout)).toEqual(expected.map((p) => `update ${p} (text): content changed`));
    expect(touched(before, fingerprint(r.root))).toEqual(expected);
    expect([own('/var/db'), own('/etc/svc.conf')]).toEqual(['1001:1001 700', '1001:1001 644']);
    // What was built is checked as after any build.
    expect(k.stderr).toMatch(/jail: finding: setuid \/bin\/su: /);
  });

  it('-k does not write the account files of refused users()', () => {
    expect(make().code).toBe(0);
    const passwd = fs.readFileSync(r.root + '/etc/passwd', 'utf8');
    r.jailfile(JAILFILE(`users({ www: { uid: 81, gid: 80 } }),`));
    const before = fingerprint(r.root);
    const k = make('-k', 'GREETING=bye');
    expect(k.code).toBe(2);
    expect(changes(k.stdout)).toEqual(['update /etc/motd (text): content changed']);
    expect(touched(before, fingerprint(r.root))).toEqual(['/etc/motd']);
    expect(fs.readFileSync(r.root + '/etc/passwd', 'utf8')).toBe(passwd);
  });

  it('-C changes directory first', () => {
    const res = r.jail('-C', r.dir, `ROOT=${r.root}`, `SRC=${r.src}`);
    expect(res.code, res.stderr).toBe(0);
    expect(fs.existsSync(r.root + '/etc/motd')).toBe(true);
  });

  it('builds only the named group or path', () => {
    let res = make('links');
    expect(changes(res.stdout)).toEqual([
      'create /lib (symlink): output missing',
      'create /var (dir): output missing', // parents of a selected target come with it
      'create /var/www (dir): output missing',
      'create /var/www/site (dir): output missing',
      'create /var/www/site/home.html (symlink): output missing',
    ]);
    res = make('/etc/passwd');
    expect(changes(res.stdout)).toEqual(['create /etc (dir): output missing', 'create /etc/passwd (text): output missing']);
    res = make('devices', 'etc');
    expect(changes(res.stdout)).toContain('create /dev/null (device): output missing');
    expect(changes(res.stdout)).toContain('create /etc/motd (text): output missing');
    expect(changes(res.stdout).some((l) => l.includes('/var'))).toBe(false);
    expect(make('nonsense').code).toBe(2);
    expect(make('/not/declared').stderr).toMatch(/No target \/not\/declared/);
    // `/`, the jail's root, names everything beneath it: the whole jail, pruning nothing.
    fs.rmSync(r.root, { recursive: true });
    const all = changes(make('-n').stdout);
    expect(all.length).toBeGreaterThan(10);
    expect(changes(make('/', '-n').stdout)).toEqual(all);
    res = make('/');
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual(all.map((l) => l.replace(/^would /, '')));
    r.jailfile(JAILFILE().replace("copy(SRC + '/b.conf', { to: '/etc/b.conf', mode: 0o600 }),", ''));
    expect(changes(make('/').stdout)).toEqual([]);
    expect(fs.existsSync(r.root + '/etc/b.conf')).toBe(true);
    expect(changes(make('-n').stdout)).toEqual(['would remove /etc/b.conf (file): no longer declared']);
  });

  it('builds a path named as the jail sees it, through declared symlinks, at its real place', () => {
    // /lib -> usr/lib is declared: the jail sees /usr/lib/app/a.conf at /lib/app/a.conf too.
    r.jailfile(JAILFILE(`copy(SRC + '/a.conf', { to: '/lib/app/a.conf' }), link('/bin/app.conf', '/lib/app/a.conf'),`));
    let res = make('/lib/app/a.conf', '-n');
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual([
      'would create /lib (symlink): output missing',
      'would create /usr (dir): output missing',
      'would create /usr/lib (dir): output missing',
      'would create /usr/lib/app (dir): output missing',
      'would create /usr/lib/app/a.conf (file): output missing',
    ]);
    // A symlink named itself brings what it leads to, through every link on the way.
    res = make('/bin/app.conf');
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual([
      'create /bin (dir): output missing',
      'create /bin/app.conf (symlink): output missing',
      'create /lib (symlink): output missing',
      'create /usr (dir): output missing',
      'create /usr/lib (dir): output missing',
      'create /usr/lib/app (dir): output missing',
      'create /usr/lib/app/a.conf (file): output missing',
    ]);
    expect(fs.readlinkSync(r.root + '/bin/app.conf')).toBe('/lib/app/a.conf');
    expect(fs.readFileSync(r.root + '/usr/lib/app/a.conf', 'utf8')).toBe('alpha\n');
    expect(make('/lib/nothing').stderr).toMatch(/No target \/lib\/nothing \(\/usr\/lib\/nothing in the jail's declared links\)/);
  });

  it('clean removes everything jail created and nothing else', () => {
    make();
    fs.writeFileSync(r.root + '/var/log/access.log', 'GET /\n');
    const planned = make('clean', '-n');
    expect(changes(planned.stdout).filter((l) => /^would remove \/var(\/log)? /.test(l))).toEqual([]); // kept, as clean keeps them
    expect(planned.stderr).toMatch(/^jail: warning: kept \/var\/log: clean removes what jail built, but it holds files jail did not create/m);
    expect(planned.stderr).not.toMatch(/no longer declared/);
    const res = make('clean');
    expect(changes(res.stdout)).toEqual(changes(planned.stdout).map((l) => l.replace(/^would /, '')));
    expect(res.code).toBe(0);
    expect(fingerprint(r.root).size).toBe(3); // /var, /var/log, /var/log/access.log
    expect(fs.readFileSync(r.root + '/var/log/access.log', 'utf8')).toBe('GET /\n');
    expect(res.stderr).toMatch(/kept \/var\/log/);
    const again = make();
    expect(again.code).toBe(0);
    expect(make('-q').code).toBe(0);
  });
});

describe('the installed command', () => {
  it('starts through its #! line without parsing NODE_EXTRA_CA_CERTS', () => {
    // npm ci marks the bin executable; a bundle that does not exist makes node warn if it tries to read it.
    const bin = path.join(REPO, 'dist', 'tasks', 'cli.js');
    expect(fs.statSync(bin).mode & 0o111).not.toBe(0);
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: path.join(r.dir, 'no-such-bundle.pem') };
    const direct = spawnSync(process.execPath, ['-e', '0'], { env, encoding: 'utf8' });
    expect(direct.stderr).toMatch(/extra certs/);
    const res = spawnSync(bin, ['--version'], { env, encoding: 'utf8' });
    expect(res.status).toBe(0);
    expect(res.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(res.stderr).toBe('');
  });
});

describe('exit status and errors', () => {
  it('is 2 for a bad ROOT, before anything is touched', () => {
    expect(r.jail('make').stderr).toMatch(/ROOT is required/);
    expect(r.jail('make').code).toBe(2);
    expect(r.jail('make', 'ROOT=relative/dir').code).toBe(2);
    expect(r.jail('make', 'ROOT=/').stderr).toMatch(/host's own root/);
    expect(r.jail('make', 'ROOT=/etc').code).toBe(2);
    fs.symlinkSync(r.outside, r.root);
    const res = r.jail('make', `ROOT=${r.root}`, `SRC=${r.src}`);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/is a symlink/);
    expect(fs.readdirSync(r.outside)).toEqual([]);
    expect(r.jail('make', `ROOT=${r.dir}`).stderr).toMatch(/holds the jailfile's own directory/);
    // The tool's own state: the records of running jails, the build locks, the install directory's .jail; by any spelling.
    fs.symlinkSync(r.dir, path.join(r.outside, 'inst'));
    const state = [
      ['/run/jail', /ROOT=\/run\/jail is \/run\/jail, where jail keeps the record of every running jail/],
      ['/run/jail/x', /ROOT=\/run\/jail\/x lies inside \/run\/jail, where jail keeps the record/],
      ['/var/run/jail-build/x', /ROOT=\/var\/run\/jail-build\/x \(really \/run\/jail-build\/x\) lies inside \/run\/jail-build, where builds of one ROOT wait for each other/],
      [`${r.dir}/.jail/root`, /lies inside .*\/install\/\.jail, the install directory's state/],
      [`${r.outside}/inst/.jail`, /\(really .*\/install\/\.jail\) is .*\/install\/\.jail, the install directory's state/],
      [`${r.outside}/inst`, /\(really .*\/install\) holds the jailfile's own directory/],
    ] as const;
    for (const [root, msg] of state) {
      for (const cmd of ['make', 'status']) {
        const res = r.jail(cmd, `ROOT=${root}`, `SRC=${r.src}`);
        expect(res.code, `${cmd} ${root}`).toBe(2);
        expect(res.stderr).toMatch(msg);
      }
    }
    expect(fs.existsSync('/run/jail/x')).toBe(false);
    expect(fs.existsSync('/run/jail-build/x')).toBe(false);
    expect(fs.existsSync(`${r.dir}/.jail/root`)).toBe(false);
  });

  it('names the .ts line of an entry made in a module the jailfile imports, through a recipe too', () => {
    fs.writeFileSync(path.join(r.dir, 'parts.ts'), `import { text } from 'jail';\nimport { dns } from 'jail/recipes';\n\nexport const motd = (): ReturnType<typeof text>[] => [\n  text('/etc/motd', 'hi\\n'),\n];\nexport const resolver = () => dns();\n`);
    r.jailfile(`import { defineJail } from 'jail';\nimport { motd, resolver } from './parts.ts';\nexport default defineJail(() => [\n  ...motd(),\n  resolver(),\n]);\n`);
    const res = make('-n', '--explain');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/would create \/etc\/motd \(text\): .* \[parts\.ts:5 text\("\/etc\/motd"\)\]/);
    expect(res.stdout).toMatch(/would create \/etc\/resolv\.conf \(file\): .* \[parts\.ts:7 copy\("\/etc\/resolv\.conf"/);
    // Each cached module's line table is kept beside it; without them the source maps still tell.
    const cache = path.join(r.dir, '.jail', 'cache');
    const tables = fs.readdirSync(cache).filter((f) => f.endsWith('.lines.json'));
    expect(tables.length).toBe(2);
    for (const t of tables) fs.rmSync(path.join(cache, t));
    const untimed = (out: string) => out.replace(/ in [\d.]+s$/m, '');
    expect(untimed(make('-n', '--explain').stdout)).toBe(untimed(res.stdout));
  });

  it('names the file and line of a jailfile that does not load, and leaves ROOT untouched', () => {
    r.jailfile(`import { defineJail, dir } from 'jail';\nexport default defineJail(() => [\n  dir('/etc'),\n  dir('/x' +,\n]);\n`);
    let res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/jailfile\.ts:4:13: Unexpected ","/);
    r.jailfile(`import { defineJail, dir } from 'jail';\nexport default defineJail(() => {\n  throw new Error('no such thing');\n});\n`);
    res = make();
    expect(res.stderr).toMatch(/jailfile\.ts:3: no such thing/);
    // Types vanish in the transpiled module, so its lines no longer match; errors and entries still name the .ts line.
    r.jailfile(`import { defineJail, dir } from 'jail';\ninterface Site {\n  name: string;\n  port: number;\n}\ntype Port = number;\nconst p: Port = 1;\nexport default defineJail((): ReturnType<typeof dir>[] => {\n  throw new Error('typed ' + p);\n});\n`);
    res = make();
    expect(res.stderr).toMatch(/jailfile\.ts:9: typed 1/);
    r.jailfile(`import { defineJail, dir } from 'jail';\ninterface Site {\n  name: string;\n}\nexport default defineJail(() => [\n  dir('/etc'),\n  dir('/etc', { mode: 0o700 }),\n]);\n`);
    res = make();
    expect(res.stderr).toMatch(/jailfile\.ts:6[^]*jailfile\.ts:7/);
    // An entry written over several lines is named by the line its call starts on, though
    // the transpiled module prints it on one line that begins with the tail of the one before.
    r.jailfile(`import { defineJail, dir } from 'jail';\nexport default defineJail(() => [\n  dir('/etc'),\n  dir(\n    '/etc',\n    { mode: 0o700 },\n  ),\n]);\n`);
    res = make();
    expect(res.stderr).toMatch(/jailfile\.ts:3[^]*jailfile\.ts:4/);
    r.jailfile(`import { defineJail, dir } from 'jail';\nexport default defineJail(() => [\n  dir('etc'),\n]);\n`);
    res = make();
    expect(res.stderr).toMatch(/jailfile\.ts:3: dir\("etc"\) needs an absolute jail path/);
    r.jailfile(`import { defineJail, device } from 'jail';\nexport default defineJail(() => [\n  device('/dev/mem', { type: 'c', major: 1, minor: 1 }),\n]);\n`);
    res = make();
    expect(res.stderr).toMatch(/jailfile\.ts:3: device\("\/dev\/mem"\) asks for character device 1:1/);
    expect(fs.existsSync(r.root)).toBe(false);
  });

  it('refuses a jailfile that returns nothing or something that is not an entry, and keeps the jail it built', () => {
    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    const bad = [
      // the arrow body in braces without `return`: the list is computed and dropped
      [`defineJail(({ ROOT }) => {\n  [dir('/etc'), text('/etc/motd', 'hi')];\n})`, /returned undefined instead of a list of entries/],
      [`defineJail(() => null)`, /returned null instead of a list of entries/],
      [`42`, /returned number 42, which is not an entry/],
      [`{ entries: [] }`, /returned an object \(\{"entries":\[\]\}\), which is not an entry/],
      [`defineJail(() => [dir('/etc'), ['hello']])`, /returned a list that holds string "hello" at \[1\]\[0\], which is not an entry; it comes just after dir\("\/etc"\) at jailfile\.ts:2\./],
      [`defineJail(() => [dir('/etc'), users])`, /holds a function \(call it: recipes return entries\) at \[1\], which is not an entry; it comes just after dir\("\/etc"\) at jailfile\.ts:2/],
      // A value has no line of its own: the entry beside it names one, else the defineJail() call.
      [`defineJail(() => [\n  [true],\n  dir('/etc'),\n])`, /holds boolean true at \[0\]\[0\], which is not an entry; it comes just before dir\("\/etc"\) at jailfile\.ts:4\./],
      [`defineJail(() => ['/etc'])`, /holds string "\/etc" at \[0\], which is not an entry; the list is the one defineJail\(\) at jailfile\.ts:2 returns\./],
    ] as const;
    for (const [def, msg] of bad) {
      r.jailfile(`import { defineJail, dir, text, users } from 'jail';\nexport default ${def};\n`);
      for (const args of [[], ['-n'], ['-q']]) {
        const res = make(...args);
        expect(res.code, `${def} ${args}`).toBe(2);
        expect(res.stderr).toMatch(msg);
        expect(changes(res.stdout)).toEqual([]);
      }
    }
    r.jailfile(`import { defineJail, text } from 'jail';\nexport default defineJail(() => [\n  text('/', 'x'),\n]);\n`);
    const res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/jailfile\.ts:3: text\("\/"\) names '\/', the jail's root directory/);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    // The falsy holes of conditionals are still skipped, and an empty list is an empty jail.
    r.jailfile(`import { defineJail, dir } from 'jail';\nexport default defineJail(() => [false && dir('/x'), null, undefined, dir('/etc')]);\n`);
    expect(make().code).toBe(0);
    // A make variable given empty is a string: `VAR && entry` is '' (and a count of none, 0), skipped all the same.
    r.jailfile(`import { defineJail, dir, text } from 'jail';\nexport default defineJail(({ MOTD }) => [\n  dir('/etc'),\n  MOTD && text('/etc/motd', MOTD),\n  Number(MOTD) && dir('/x'),\n]);\n`);
    for (const args of [['-n'], ['-q'], []]) {
      const res = make('MOTD=', ...args);
      expect(res.code, `${args} ${res.stderr}`).toBe(0);
      expect(res.stderr).toBe('');
    }
    expect(fs.readdirSync(r.root + '/etc')).toEqual([]);
    expect(make('MOTD=hi').code).toBe(0);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe('hi');
    r.jailfile(`import { defineJail } from 'jail';\nexport default defineJail(() => []);\n`);
    expect(make().code).toBe(0);
    expect(fs.readdirSync(r.root)).toEqual([]);
  });

  it('refuses a host name that is not one, and a time zone region, with the entry', () => {
    const bad = [
      [`nss({ hostname: 'a b\\n1.2.3.4 evil' })`, /jailfile\.ts:4: nss\(\{ hostname \}\): "a b\\n1\.2\.3\.4 evil" is not a host name/],
      [`apache({ listen: '8080', serverName: 'x\\nLoadModule evil' })`, /jailfile\.ts:4: apache\(\{ serverName \}\): .* is not a host name/],
      [`timezone('Europe')`, /jailfile\.ts:4: timezone\("Europe"\): \/usr\/share\/zoneinfo\/Europe is a directory of zones, not a zone; name one of them, such as Europe\//],
    ] as const;
    for (const [entry, msg] of bad) {
      r.jailfile(`import { defineJail } from 'jail';\nimport { nss, apache, timezone } from 'jail/recipes';\nexport default defineJail(() => [\n  ${entry},\n]);\n`);
      const res = make();
      expect(res.code, entry).toBe(2);
      expect(res.stderr).toMatch(msg);
    }
    r.jailfile(`import { defineJail } from 'jail';\nimport { nss, timezone } from 'jail/recipes';\nexport default defineJail(() => [\n  nss({ hostname: 'www.jail.test' }), timezone('Europe/Paris'),\n]);\n`);
    expect(make().code).toBe(0);
    expect(fs.readFileSync(r.root + '/etc/hosts', 'utf8')).toContain('127.0.0.1\tlocalhost www.jail.test\n');
  });

  it('refuses bad accounts with the entry', () => {
    const bad = [
      [`users({ 'a:b': { uid: 5, gid: 5 } })`, /user name "a:b" holds ':'/],
      [`users({ 'a\\nb': { uid: 5, gid: 5 } })`, /user name "a\\nb"/],
      [`users({ a: { uid: 5, gid: 5 }, b: { uid: 5, gid: 6 } })`, /user b has uid 5, which a already has/],
      [`users({ toor: { uid: 0, gid: 0 } })`, /user toor has uid 0: only root may/],
      [`users({ a: { uid: 5, gid: 5, shell: '/bin/sh\\nroot::0:0::/:/bin/sh' } })`, /has a shell with ':' or a newline/],
    ] as const;
    for (const [entry, msg] of bad) {
      r.jailfile(`import { defineJail, users } from 'jail';\nexport default defineJail(() => [\n  ${entry},\n]);\n`);
      const res = make();
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(msg);
      expect(res.stderr).toMatch(/jailfile\.ts:3: users/);
    }
    expect(fs.existsSync(r.root)).toBe(false);
    r.jailfile(`import { defineJail, users, groups } from 'jail';\nexport default defineJail(() => [\n  groups({ staff: { gid: 50, members: ['www', 'ghost'] } }),\n  users({ www: { uid: 80, gid: 80 } }),\n]);\n`);
    const res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('jailfile.ts:3: group staff lists member ghost, which no users() entry declares');
    expect(res.stderr).not.toContain('member www');
    // One mistake, one error: an owner naming the user declared twice is not reported as unknown.
    r.jailfile(`import { defineJail, users, text } from 'jail';\nexport default defineJail(() => [\n  users({ 'www-data': { uid: 33, gid: 33 } }),\n  users({ 'www-data': { uid: 34, gid: 33 } }),\n  text('/etc/x', 'x', { owner: 'www-data' }),\n]);\n`);
    const twice = make();
    expect(twice.code).toBe(2);
    expect(twice.stderr.match(/jail: error: /g)).toHaveLength(1);
    expect(twice.stderr).toContain('jailfile.ts:4: users({ www-data }): user www-data is declared twice, differently (also at jailfile.ts:3). They differ in uid: 33 vs 34. Remove one of the two entries, or make them agree.');
    r.jailfile(`import { defineJail, users } from 'jail';\nexport default defineJail(() => [\n  users({ a: { uid: 1001, gid: 1001 } }),\n  users({ a: { uid: 1001, gid: 1001, shell: '/bin/sh', groups: [] } }),\n]);\n`);
    expect(make().stderr).toContain('user a is declared twice, differently (also at jailfile.ts:3). They differ in shell: "/usr/sbin/nologin" vs "/bin/sh". Remove one');
    r.jailfile(`import { defineJail, groups } from 'jail';\nexport default defineJail(() => [\n  groups({ staff: { gid: 50 } }),\n  groups({ staff: { gid: 51 }, root: { gid: 0 } }),\n]);\n`);
    const g = make().stderr;
    expect(g).toContain('jailfile.ts:4: groups({ staff, root }): group staff is declared twice with different gids (also at jailfile.ts:3): 50 vs 51. Remove one of the two entries, or make them agree.');
    expect(g).toContain('jailfile.ts:4: groups({ staff, root }): group root is always present (gid 0); do not declare it');
  });

  /** Each entry alone in a jailfile: make, -n and -q refuse it with exit 2 and the message, and write nothing. */
  const refuses = (bad: readonly (readonly [string, RegExp])[]) => {
    for (const [entry, msg] of bad) {
      r.jailfile(`import { defineJail, copy, elf, dir, text, users, groups, runtime, allow } from 'jail';\nimport * as R from 'jail/recipes';\nexport default defineJail(() => [\n  ${entry},\n]);\n`);
      for (const args of [[], ['-n'], ['-q']]) {
        const res = make(...args);
        expect(res.code, `${entry} ${args}`).toBe(2);
        expect(res.stderr, entry).toMatch(msg);
        expect(res.stderr, entry).toMatch(/jailfile\.ts:4: /);
      }
      expect(fs.existsSync(r.root), entry).toBe(false);
    }
  };

  it('refuses an unknown option of a recipe or an account, and devices() given a list', () => {
    refuses([
      [`R.service('apache', { start: ['/bin/true'], stop: ['/bin/true'], limit: { cpu: 5 } })`, /service\("apache"\) has an unknown option 'limit' \(known: start, stop, limits, order\)/],
      [`R.service('apache', { start: ['/bin/true'], stop: ['/bin/true'], limits: { cpus: 5 } })`, /service\("apache", \{ limits \}\) has an unknown option 'cpus' \(known: cpu, files, core\)/],
      [`R.apache({ listen: '19081', servername: 'x' })`, /apache\(\{ \.\.\. \}\) has an unknown option 'servername' \(known: listen, serverName, documentRoot, modules, index\)/],
      [`R.nss({ host: 'x' })`, /nss\(\{ \.\.\. \}\) has an unknown option 'host' \(known: hostname\)/],
      [`users({ bob: { uid: 1000, gid: 1000, homedir: '/home/bob' } })`, /users\(\{ bob \}\) has an unknown option 'homedir' \(known: uid, gid, home, shell, gecos, groups\)/],
      [`groups({ staff: { gid: 50, member: ['root'] } })`, /groups\(\{ staff \}\) has an unknown option 'member' \(known: gid, members\)/],
      [`R.layout('/x')`, /layout\(\) takes no arguments, got 1 argument \("\/x"\)/],
      [`R.devices(['null', 'zero'])`, /devices\(\["null","zero"\]\) takes the device names as separate arguments, not a list: devices\("null", "zero"\)/],
      [`R.devices('null', { dangerus: true })`, /devices\("null"\) has an unknown option 'dangerus' \(known: dangerous\)/],
    ]);
  });

  it('refuses a boolean option that is not true or false, and an unknown finding kind', () => {
    refuses([
      [`copy('/etc/hostname', { setuid: 'yes' })`, /copy\("\/etc\/hostname"\) needs true or false for setuid, got "yes"/],
      [`copy('/etc/hostname', { follow: 'no' })`, /copy\("\/etc\/hostname"\) needs true or false for follow, got "no"/],
      [`elf('/bin/true', { setuid: 'yes' })`, /elf\("\/bin\/true"\) needs true or false for setuid, got "yes"/],
      [`runtime({ proc: 'no' })`, /runtime\(\): proc needs true or false, got "no"/],
      [`runtime({ namespaces: 'false' })`, /runtime\(\): namespaces needs true or false, got "false"/],
      [`allow('suid', '/x')`, /allow\("suid", "\/x"\) needs a finding kind of jail check, one of missing-library, .*setuid, world-writable.*; got "suid"/],
    ]);
  });

  it('refuses a bad runtime() at make, not first at boot', () => {
    refuses([
      [`runtime({ cpu: '10' })`, /runtime\(\): cpu must be a whole number of seconds or 'unlimited', got "10"/],
      [`runtime({ pids: -1 })`, /runtime\(\): pids must be a whole number, at least 4, or false, got -1/],
      [`runtime({ network: { adress: '10.213.7.2/24' } })`, /runtime\(\): network has an unknown option 'adress' \(known: address, hostAddress\)/],
      [`runtime({ memory: 'lots' })`, /runtime\(\): memory "lots" is not a size/],
    ]);
    // A good one still builds.
    r.jailfile(`import { defineJail, dir, runtime } from 'jail';\nexport default defineJail(() => [dir('/etc'), runtime({ cpu: 10, pids: false, proc: true })]);\n`);
    expect(make().code).toBe(0);
    expect(make('-q').code).toBe(0);
  });

  it('says which call got a wrong type, what it was given and what it takes', () => {
    refuses([
      [`R.apache({ listen: '19081', modules: 'mime' })`, /apache\(\{ modules: "mime" \}\): modules must be a list of module names, such as \['mpm_event'/],
      [`R.apache({ listen: '19081', index: { sites: '/tmp' } })`, /apache\(\{ index \}\) has an unknown option 'sites' \(known: site\)/],
      [`R.apache({ listen: '19081', index: { site: 'tmp' } })`, /apache\(\{ index: \{"site":"tmp"\} \}\): index must be the page's content as a string, or \{ site: '\/abs\/host\/dir' \}/],
      [`R.shell('/bin/bash')`, /shell\("\/bin\/bash"\) takes a list of extra programs, such as shell\(\['\/bin\/bash'\]\); got "\/bin\/bash"/],
      [`users({ bob: { uid: 1000, gid: 1000, groups: 'staff' } })`, /users\(\{ bob \}\) needs groups as a list of group names such as \['staff'\], got "staff"/],
      [`users({ bob: { uid: '1000', gid: 1000 } })`, /users\(\{ bob \}\) needs uid as a whole number such as 1000, got "1000"/],
      [`groups({ staff: { gid: 50, members: 'bob' } })`, /groups\(\{ staff \}\) needs members as a list of user names such as \['www-data'\], got "bob"/],
      [`dir(42)`, /dir\(42\) takes an absolute jail path such as '\/etc' or a list of them, got 42/],
    ]);
    // One paragraph, once: not one error per letter.
    r.jailfile(`import { defineJail, users } from 'jail';\nexport default defineJail(() => [\n  users({ bob: { uid: 1000, gid: 1000, groups: 'staff' } }),\n]);\n`);
    expect(make().stderr.match(/jail: error: /g)).toHaveLength(1);
  });

  it('refuses a file destination that ends in a slash', () => {
    refuses([
      [`text('/etc/', 'hi')`, /text\("\/etc\/"\) names a directory \(the path ends in '\/'\), but text\(\) makes a file; write the file's path, such as '\/etc\/motd'/],
      [`copy('/etc/passwd', { to: '/etc/' })`, /copy\("\/etc\/passwd"\): to ends in '\/', which names a directory, but \/etc\/passwd is not one; give the file's path in the jail, such as '\/etc\/passwd'/],
    ]);
    // A tree or a glob still lands in a directory written with its slash.
    fs.mkdirSync(path.join(r.src, 'conf'));
    fs.writeFileSync(path.join(r.src, 'conf', 'x.conf'), 'x\n');
    r.jailfile(`import { defineJail, copy } from 'jail';\nexport default defineJail(({ SRC }) => [\n  copy(SRC + '/conf', { to: '/etc/' }),\n  copy(SRC + '/conf/*.conf', { to: '/opt/' }),\n]);\n`);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readFileSync(r.root + '/etc/x.conf', 'utf8')).toBe('x\n');
    expect(fs.readFileSync(r.root + '/opt/x.conf', 'utf8')).toBe('x\n');
  });

  it('names both entries of a conflicting declaration', () => {
    r.jailfile(JAILFILE(`text('/etc/a.conf', 'other'),`));
    const res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/\/etc\/a\.conf is declared twice, differently: as a copy of .*a\.conf .* at jailfile\.ts:\d+, and as a generated file .* at jailfile\.ts:\d+/);
  });

  it('says what differs between two declarations of one generated file', () => {
    r.jailfile(JAILFILE(`text('/etc/motd', 'a'),`));
    let res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/\/etc\/motd is declared twice, differently: .* They differ in content: \d+ bytes \(sha256 [0-9a-f]{8}\) vs 1 byte \(sha256 ca978112\)\./);
    r.jailfile(JAILFILE(`text('/etc/issue', 'a'), text('/etc/issue', 'a', { mode: 0o600, owner: 'www' }),`));
    res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/\/etc\/issue is declared twice, differently: .* They differ in mode: 0644 vs 0600; owner: 0:0 vs 80:80\./);
  });

  it('a usage error is one paragraph that points at --help', () => {
    for (const bad of [['--bogus'], ['-j', '0'], ['--json=1']]) {
      const res = make(...bad);
      expect(res.code, bad.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n'), bad.join(' ')).toHaveLength(1);
      expect(res.stderr).toMatch(/^jail: error: .*; see `jail make --help`\.\n$/);
    }
    expect(make('--bogus').stderr).toMatch(/unknown option --bogus/);
    expect(fs.existsSync(r.root)).toBe(false);
  });

  it('names the jailfile line and what jail exports when an import names nothing', () => {
    r.jailfile(`import { defineJail, dir } from 'jail';\nimport { nosuch } from 'jail';\nexport default defineJail(() => [dir('/etc'), nosuch()]);\n`);
    const res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${r.dir}/jailfile.ts:2: 'jail' has no export named 'nosuch'; it exports `);
    const exported = /it exports ([^.]*)\./.exec(res.stderr)![1]!.split(', ');
    for (const name of ['defineJail', 'dir', 'link', 'copy', 'text', 'elf', 'users']) expect(exported).toContain(name);
    expect(res.stderr).not.toMatch(/module_job|file:\/\//);
    // A package that is not there: named as imported from the jailfile, not from its cached module.
    r.jailfile(`import { defineJail, dir } from 'jail';\nimport { x } from 'nosuchpkg';\nexport default defineJail(() => [dir('/etc'), x]);\n`);
    const missing = make();
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`jail: error: The jailfile did not load: ${r.dir}/jailfile.ts: Cannot find package 'nosuchpkg' imported from ${r.dir}/jailfile.ts.`);
    expect(missing.stderr).not.toMatch(/\.jail\/cache|\/modules\/esm/);
    expect(fs.existsSync(r.root)).toBe(false);
  });

  it('says what a failed write means and what to do, with the jail path and no internal path', () => {
    expect(make().code).toBe(0);
    fs.writeFileSync(path.join(r.src, 'a.conf'), 'changed\n');
    execFileSync('chattr', ['+i', r.root + '/etc']);
    try {
      const res = make();
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(`jail: error: Could not update /etc/a.conf (copy("${r.src}/a.conf") at jailfile.ts:8): operation not permitted (EPERM) writing in ${r.root}/etc; check its attributes (lsattr -d), permissions and mount options, then run make again.`);
      expect(res.stderr).not.toMatch(/\/proc\/self\/fd|EPERM: EPERM/);
    } finally {
      execFileSync('chattr', ['-i', r.root + '/etc']);
    }
    expect(fs.readFileSync(r.root + '/etc/a.conf', 'utf8')).toBe('alpha\n');
    expect(changes(make().stdout)).toEqual(['update /etc/a.conf (file): source changed: content']);
  });

  it('a refused write names the path that refused; -k skips what lies beneath a directory that failed, with one count', () => {
    for (const n of ['a', 'b', 'c']) fs.writeFileSync(path.join(r.src, 'site', 'img', `${n}.svg`), `<svg id="${n}"/>\n`);
    expect(make().code).toBe(0);
    const img = r.root + '/var/www/site/img';
    execFileSync('chattr', ['+i', img]);
    try {
      const before = fingerprint(r.root);
      const res = make('-B', '-k', '/var/www/site');
      expect(res.code).toBe(2);
      expect(res.stderr.match(/jail: error: /g)).toHaveLength(1);
      expect(res.stderr).toContain(`jail: error: Could not update /var/www/site/img (copy("${r.src}/site") at jailfile.ts:10): operation not permitted (EPERM) setting the owner and mode of ${img}; check its attributes (lsattr -d), permissions and mount options, then run make again.`);
      expect(res.stderr).toContain('jail: warning: 4 targets beneath /var/www/site/img skipped: /var/www/site/img could not be written (its error says why)');
      // The rest beneath /var/www/site is built all the same.
      expect(changes(res.stdout)).toEqual(['/var', '/var/www', '/var/www/site', '/var/www/site/home.html', '/var/www/site/index.html'].map((p) => `update ${p} (${p.endsWith('.html') ? (p.includes('home') ? 'symlink' : 'file') : 'dir'}): -B: rebuilding everything`));
      expect(touched(before, fingerprint(r.root))).toEqual(['/var/www/site/home.html', '/var/www/site/index.html']);
    } finally {
      execFileSync('chattr', ['-i', img]);
    }
    // An immutable file refuses the rename over it: it is named, with its directory.
    fs.writeFileSync(path.join(r.src, 'a.conf'), 'changed\n');
    execFileSync('chattr', ['+i', r.root + '/etc/a.conf']);
    try {
      const res = make();
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(`operation not permitted (EPERM) replacing ${r.root}/etc/a.conf (the file or its directory ${r.root}/etc refused); check the attributes of both (lsattr -d)`);
    } finally {
      execFileSync('chattr', ['-i', r.root + '/etc/a.conf']);
    }
    expect(changes(make().stdout)).toEqual(['update /etc/a.conf (file): source changed: content']);
  });

  it('names every path put beneath a file, not only the first of a directory', () => {
    // Parents are climbed once per directory: a climb that ends in a conflict must not let the next entry pass.
    r.jailfile(JAILFILE(`text('/etc/motd/a', 'x'), text('/etc/motd/b', 'y'), text('/etc/motd/sub/c', 'z'),`));
    const res = make();
    expect(res.code).toBe(2);
    for (const p of ['/etc/motd/a', '/etc/motd/b']) expect(res.stderr).toContain(`puts ${p} beneath /etc/motd, but`);
    expect(res.stderr).toContain('puts /etc/motd/sub/c beneath /etc/motd, but');
  });
});

describe('the path of an entry, and of a record', () => {
  it('a copied host tree holding a name that is not UTF-8 is an error naming it escaped, not a missing file', () => {
    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    fs.writeFileSync(Buffer.concat([Buffer.from(path.join(r.src, 'site', 'bad')), Buffer.of(0xfe), Buffer.from('name')]), 'x');
    for (const [to, via] of [[`SRC + '/site'`, ` \\(found while copying ${r.src}/site\\)`], [`SRC + '/site/*'`, '']]) {
      r.jailfile(JAILFILE().replace(`SRC + '/site'`, to));
      const res = make();
      expect(res.code).toBe(2);
      expect(res.stderr).not.toMatch(/does not exist/);
      expect(res.stderr).toMatch(new RegExp(`: the host name ${r.src}/site/bad\\\\xfename is not valid UTF-8 \\(shown escaped\\)${via}; jail's paths are UTF-8 text, so it cannot copy it\\. Rename it on the host, or narrow the copy`));
    }
    expect(touched(before, fingerprint(r.root))).toEqual([]);
  });

  it('refuses a jail path that ROOT takes past PATH_MAX, or a name past NAME_MAX, before writing anything', () => {
    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    // 19 levels of 200-byte names: the host tree is fine, ROOT plus its jail path is not.
    const deep = path.join(r.src, 'deep', ...Array(19).fill('d'.repeat(200)));
    fs.mkdirSync(deep, { recursive: true });
    fs.writeFileSync(path.join(deep, 'f'), 'x');
    const e = 'e'.repeat(200);
    r.jailfile(JAILFILE(`copy(SRC + '/deep', { to: '/srv/${e}/${e}' }),`));
    for (const args of [[], ['-n'], ['-q']]) {
      const res = make(...args);
      expect(res.code).toBe(2);
      expect(res.stderr).not.toMatch(/internal error|ENAMETOOLONG/);
      expect(res.stderr).toMatch(new RegExp(`jailfile\\.ts:\\d+: copy\\("${r.src}/deep"\\): the jail path /srv/${e}/${e}/d{200}/\\S+ is too long: in ROOT it is ${r.root}/srv/\\S+, \\d{4} bytes, past Linux's PATH_MAX of 4096 bytes \\(ROOT included\\) \\(and \\d+ more of this entry's paths\\)\\. Shorten the jail path`));
    }
    r.jailfile(JAILFILE(`text('/etc/${'n'.repeat(256)}', 'x'),`));
    const res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/the jail path \/etc\/n{256} is too long: its name n{256} is 256 bytes, past Linux's NAME_MAX of 255 bytes\. /);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
  });

  it("takes a path of slashes alone as '/', the jail's root, which dir() leaves as it is", () => {
    const rootDir = () => { const st = fs.statSync(r.root); return `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`; };
    r.jailfile(JAILFILE(`dir('//', { mode: 0o777, owner: 1234 }), dir('/etc//'),`));
    let res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(rootDir()).toBe('755 0:0');
    expect(res.stdout).not.toMatch(/^\w+  \(dir\)/m);
    r.jailfile(JAILFILE());
    res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual([]);
    res = make('clean');
    expect(res.code, res.stderr).toBe(0);
  });

  it('drops records of paths that are not clean jail paths, which an older build may have left', () => {
    fs.writeFileSync(path.join(r.outside, 'victim'), 'keep\n');
    make();
    const dir = path.join(r.dir, '.jail');
    const file = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.json'))!);
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    const before = fingerprint(r.root);
    const rec = { k: 'dir', m: 0o755, u: 0, g: 0 };
    for (const bad of ['', '/', 'etc', '/etc/', '/etc//motd', '/etc/./motd', '/../outside/victim', '/etc/a\0b']) m.records[bad] = { ...rec, k: bad === '/../outside/victim' ? 'text' : 'dir' };
    fs.writeFileSync(file, JSON.stringify(m));
    let res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual([]);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    expect(fs.readFileSync(path.join(r.outside, 'victim'), 'utf8')).toBe('keep\n');
    expect(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')).records).filter((k) => !k.startsWith('/') || k === '/' || /\/\/|\/$|\/\.\.?(\/|$)|\0/.test(k))).toEqual([]);
    res = make('clean');
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readFileSync(path.join(r.outside, 'victim'), 'utf8')).toBe('keep\n');
  });
});

describe('make() from code', () => {
  it('returns the same report as --json', async () => {
    const { make: makeApi } = await import('../dist/tasks/index.js');
    const rep = await makeApi({ cwd: r.dir, vars: { ROOT: r.root, SRC: r.src } });
    expect(rep.errors).toEqual([]);
    expect(rep.created.length).toBeGreaterThan(10);
    const again = await makeApi({ cwd: r.dir, vars: { ROOT: r.root, SRC: r.src } });
    expect(again.created).toEqual([]);
    expect(again.upToDate).toBe(rep.created.length);
    fs.writeFileSync(path.join(r.src, 'a.conf'), 'x\n');
    const cli = JSON.parse(make('-n', '--json').stdout);
    const api = await makeApi({ cwd: r.dir, vars: { ROOT: r.root, SRC: r.src }, dryRun: true });
    expect(api.updated.map(({ path, kind, reason }) => ({ path, kind, reason }))).toEqual(cli.updated);
    expect(api.upToDate).toBe(cli.upToDate);
  });

  it('refuses jobs that are not a whole number, 1 or more, with the error -j gives, and touches nothing', async () => {
    const { make: makeApi } = await import('../dist/tasks/index.js');
    for (const jobs of [0, -2, 2.5, Number.NaN]) {
      const rep = await makeApi({ cwd: r.dir, vars: { ROOT: r.root, SRC: r.src }, jobs });
      expect(rep.errors.map((e) => e.code), String(jobs)).toEqual(['bad-jobs']);
      expect(rep.errors[0]!.message).toBe(`jobs: ${jobs} is not a number of files to write at once: give a whole number, 1 or more (-j N on the command line), or leave it out for the default (4 when ROOT is on tmpfs or ramfs, else 1). Nothing was touched.`);
      expect(rep.created).toEqual([]);
      expect(fs.existsSync(r.root)).toBe(false);
    }
    for (const j of ['0', '-1', '1.5', 'x']) {
      const res = make('-j', j);
      expect(res.code, j).toBe(2);
      expect(res.stderr, j).toBe('jail: error: -j needs a whole number of parallel jobs, 1 or more; see `jail make --help`.\n');
    }
    expect(fs.existsSync(r.root)).toBe(false);
    expect((await makeApi({ cwd: r.dir, vars: { ROOT: r.root, SRC: r.src }, jobs: 2 })).errors).toEqual([]);
  });

  it('two make() calls on one ROOT in one process build one at a time, and the jail converges', async () => {
    const { make: makeApi } = await import('../dist/tasks/index.js');
    // Enough files that two unlocked builds would overlap.
    for (let i = 0; i < 40; i++) {
      fs.mkdirSync(path.join(r.src, 'many', `d${i}`), { recursive: true });
      for (let j = 0; j < 30; j++) fs.writeFileSync(path.join(r.src, 'many', `d${i}`, `f${j}`), `${i}.${j}\n`);
    }
    r.jailfile(`
import { defineJail, copy, text } from 'jail';
export default defineJail(({ SRC, V = '1' }) => [ copy(SRC + '/many', { to: '/many' }), text('/v', V + '\\n') ]);
`);
    const seen: string[] = [];
    const waited: number[] = [];
    const run = (V: string) => makeApi({
      cwd: r.dir, vars: { ROOT: r.root, SRC: r.src, V },
      onEvent: (e) => { if (e.type === 'waiting') waited.push(e.pid); else seen.push(V); },
    });
    const [a, b] = await Promise.all([run('1'), run('2')]);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
    // One waited for the other, in this process, and their events never interleave;
    // which one takes the lock first is up to how fast each expands the jailfile.
    expect(waited).toEqual([process.pid]);
    const order = seen.filter((v, i) => v !== seen[i - 1]);
    expect([...order].sort()).toEqual(['1', '2']);
    const [first, second] = order[0] === '1' ? [a, b] : [b, a];
    expect(first.created.length).toBe(40 * 30 + 40 + 2);
    expect(second.created).toEqual([]);
    expect(second.updated.map((u) => u.path)).toEqual(['/v']);
    const last = order[1]!;
    expect(fs.readFileSync(path.join(r.root, 'v'), 'utf8')).toBe(`${last}\n`);
    expect(make(`V=${last}`, '-q').code).toBe(0);
    // Both released: a third call neither waits nor writes.
    const c = await run(last);
    expect(c.errors).toEqual([]);
    expect(c.created.length + c.updated.length).toBe(0);
    expect(waited).toEqual([process.pid]);
  });

  it('takes over a lock holding its own pid that it does not hold: an earlier process with that pid left it', async () => {
    const { make: makeApi } = await import('../dist/tasks/index.js');
    // Pids are reused (after a reboot, the install directory's locks are still there).
    const file = path.join(stateDir(r.dir), `${rootKey(r.root)}.lock`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, String(process.pid));
    const waited: number[] = [];
    const t0 = Date.now();
    const rep = await makeApi({ cwd: r.dir, vars: { ROOT: r.root, SRC: r.src }, lockWaitMs: 5000, onEvent: (e) => { if (e.type === 'waiting') waited.push(e.pid); } });
    expect(rep.errors).toEqual([]);
    expect(waited).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(fs.existsSync(file)).toBe(false);
    expect(make('-q').code).toBe(0);
  });
});

describe('paths, directory by directory', () => {
  it('isEntryOf names the entries of a directory itself and nothing deeper or beside it', () => {
    expect(isEntryOf('/etc/motd', '/etc')).toBe(true);
    expect(isEntryOf('/etc', '/')).toBe(true);
    expect(isEntryOf('/etc/ssl/certs', '/etc')).toBe(false);
    expect(isEntryOf('/etcetera/x', '/etc')).toBe(false);
    expect(isEntryOf('/etc', '/etc')).toBe(false);
    expect(isEntryOf('/etc/', '/etc')).toBe(false);
    expect(isEntryOf('/', '/')).toBe(false);
    expect(isEntryOf('/usr/lib/x', '/usr/lib')).toBe(true);
    expect(isEntryOf('/usr/libx/y', '/usr/lib')).toBe(false);
    expect(isEntryOf('/etc/motd', '')).toBe(false);
  });
});

describe('after a build that was killed', () => {
  const INTERRUPTED = `
import { defineJail, copy, text } from 'jail';
export default defineJail(({ SRC, B = 'yes' }) => [
  copy(SRC + '/tree', { to: '/srv/a' }),
  B !== 'no' && copy(SRC + '/tree', { to: '/srv/b' }),
  B !== 'no' && text('/srv/b/note', 'note ' + SRC + '\\n'),
]);
`;
  /** Builds, changes every source, and kills the next build once it has rewritten a file of /srv/b: the record it never saved still has the first build's stamps. */
  function killMidway(): void {
    r.jailfile(INTERRUPTED);
    fs.mkdirSync(path.join(r.src, 'tree'));
    for (let i = 1000; i < 3000; i++) fs.writeFileSync(path.join(r.src, 'tree', `f${i}`), `v1 ${i}\n`);
    expect(make().code).toBe(0);
    for (let i = 1000; i < 3000; i++) fs.appendFileSync(path.join(r.src, 'tree', `f${i}`), 'v2\n');
    const child = spawnSync('/bin/sh', ['-c', `node "$0" make ROOT="$1" SRC="$2" -j1 >/dev/null & p=$!; until grep -qs v2 "$1/srv/b/f1500"; do :; done; kill -KILL $p; wait $p; exit 0`,
      path.join(REPO, 'dist', 'tasks', 'cli.js'), r.root, r.src], { cwd: r.dir, encoding: 'utf8' });
    expect(child.status).toBe(0);
    expect(fs.readFileSync(r.root + '/srv/b/f1500', 'utf8')).toBe('v1 1500\nv2\n');
    expect(fs.readFileSync(r.root + '/srv/b/f2999', 'utf8')).toBe('v1 2999\n');
    // What the killed build was writing when it died.
    fs.writeFileSync(r.root + '/srv/b/.jail-tmp.99999.1', 'v1 2000\nv2\n');
  }

  it('removes what it wrote once it is no longer declared, with no warning', () => {
    killMidway();
    const res = make('B=no');
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(fs.existsSync(r.root + '/srv/b')).toBe(false);
    expect(changes(res.stdout).filter((l) => !l.startsWith('remove /srv/b') && !l.startsWith('update /srv/a/'))).toEqual([]);
    expect(make('B=no', '-q').code).toBe(0);
  });

  it('rewrites only what it had not yet rewritten', () => {
    killMidway();
    const stale = [...fingerprint(r.root).keys()].filter((p) => /\/f\d+$/.test(p) && fs.readFileSync(r.root + p, 'utf8').split('\n').length === 2);
    expect(stale.length).toBeGreaterThan(0);
    const before = fingerprint(r.root);
    // The planted one, and any the kill left mid-write: each is swept.
    const temps = [...before.keys()].filter((p) => /\/\.jail-tmp\.[^/]*$/.test(p));
    expect(temps).toContain('/srv/b/.jail-tmp.99999.1');
    const res = make();
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(touched(before, fingerprint(r.root))).toEqual([...stale, ...temps].sort());
    expect(changes(res.stdout)).toEqual(stale.map((p) => `update ${p} (file): source changed: content`).sort());
    expect(make('-q').code).toBe(0);
  });
});

describe('a state directory that cannot be written', () => {
  it('says so in one paragraph naming .jail, leaves no temporary record, and the next build records what was written', () => {
    // The install directory on a small tmpfs of its own.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', r.dir]);
    try {
      r.jailfile(`
import { defineJail, copy } from 'jail';
export default defineJail(({ SRC }) => [copy(SRC + '/tree', { to: '/srv/a' })]);
`);
      fs.mkdirSync(path.join(r.src, 'tree'));
      for (let i = 1000; i < 1600; i++) fs.writeFileSync(path.join(r.src, 'tree', `file-with-a-longer-name-${i}`), `v1 ${i}\n`);
      expect(make().code).toBe(0);
      const state = path.join(r.dir, '.jail');
      const record = fs.readdirSync(state).find((n) => n.endsWith('.json') && n !== 'elf-facts.json')!;
      const st = fs.statfsSync(r.dir);
      // Room for the building mark, not for a second copy of the record.
      fs.writeFileSync(path.join(r.dir, 'filler'), Buffer.alloc(st.bavail * st.bsize - 16384));
      fs.appendFileSync(path.join(r.src, 'tree', 'file-with-a-longer-name-1200'), 'v2\n');
      const full = make();
      expect(full.code).toBe(2);
      expect(full.stderr).not.toMatch(/internal error|\n\s+at /);
      expect(full.stderr.trim().split('\n')).toEqual([`jail: error: Cannot write ${path.join(state, record)} in ${state}, the state directory where jail keeps the record of what it built in ROOT (ENOSPC): its filesystem is full: free some space (df, and df -i for inodes), then run make again. ROOT was written but the record of it was not saved: the next make finds what this one wrote and records it.`]);
      expect(fs.readdirSync(state).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      fs.rmSync(path.join(r.dir, 'filler'));
      const again = make();
      expect(again.code).toBe(0);
      expect(changes(again.stdout)).toEqual([]);
      execFileSync('mount', ['-o', 'remount,ro', r.dir]);
      fs.appendFileSync(path.join(r.src, 'tree', 'file-with-a-longer-name-1300'), 'v2\n');
      const ro = make();
      expect(ro.code).toBe(2);
      expect(ro.stderr).not.toMatch(/internal error|\n\s+at /);
      expect(ro.stderr).toMatch(/^jail: error: Cannot write \S+\.lock in \S+\/\.jail, the state directory .* \(EROFS\): its filesystem is mounted read-only: remount it read-write, or build from a jailfile in a writable directory, then run make again\. Nothing was touched\.\n$/);
    } finally {
      spawnSync('umount', [r.dir]);
    }
  });
});

describe('a ROOT out of inodes', () => {
  it('says no inode is left, not that the filesystem is full', () => {
    fs.mkdirSync(r.root);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'nr_inodes=200', 'tmpfs', r.root]);
    fs.mkdirSync(path.join(r.src, 'tree'));
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(r.src, 'tree', `f${i}`), 'x\n');
    r.jailfile(`
import { defineJail, copy } from 'jail';
export default defineJail(({ SRC }) => [copy(SRC + '/tree', { to: '/srv/a' })]);
`);
    const res = make('-j1');
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^jail: error: Could not create \/srv\/a\/f\d+ \(copy\(.*\) at jailfile\.ts:3\): no space left on device \(ENOSPC\) writing in \S+\/srv\/a; its filesystem has no free inodes left, though it may have space: remove some files, or give it more inodes \(df -i\), then run make again\.$/m);
    expect(res.stderr).not.toMatch(/free some space \(df\)/);
  });
});

describe('a build record lost, damaged or of another ROOT', () => {
  it('warns that what is no longer declared cannot be removed, and is silent on a first build', () => {
    const first = make();
    expect(first.stderr).toBe('');
    const state = path.join(r.dir, '.jail');
    const record = manifestPath(r.dir, r.root);
    const warning = (why: string) => `jail: warning: the build record ${record} ${why}, so jail does not know what it built in ${r.root}: files no longer declared stay there and cannot be removed (clean cannot remove them either). If ROOT may hold such files, remove it (rm -rf ${r.root}) and build again, or check it with \`jail check ROOT=${r.root}\`\n`;
    fs.truncateSync(record, 1000);
    let res = make();
    expect(res.code).toBe(0);
    expect(res.stderr).toBe(warning('is damaged (not a build record jail can read)'));
    expect(make().stderr).toBe('');
    const text = JSON.parse(fs.readFileSync(record, 'utf8')) as { root: string };
    fs.writeFileSync(record, JSON.stringify({ ...text, root: '/elsewhere' }));
    res = make();
    expect(res.stderr).toBe(warning('is the record of another ROOT (/elsewhere)'));
    fs.rmSync(state, { recursive: true });
    res = make();
    expect(res.stderr).toBe(warning('is missing'));
    expect(make().stderr).toBe('');
  });
});
