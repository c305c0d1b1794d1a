// `jail pack` and `rebuild FROM=`: a jail moved through an archive comes back identical,
// /dev/null and the service's data included; hostile archives are refused whole.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Header } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { changes, fingerprint, rig, touched, tree, treeBytes, type Rig } from './helpers.js';

let r: Rig;
let other: string;

const JAILFILE = `
import { defineJail, text, data, copy } from 'jail';
import { layout, devices, shell, users } from 'jail/recipes';
export default defineJail(({ SRC }) => [
  layout(), devices('null', 'zero', 'urandom'), shell(),
  users({ www: { uid: 80, gid: 80, home: '/var/www' } }),
  text('/etc/motd', 'welcome\\n', { mode: 0o640, owner: 'root:www' }),
  copy(SRC + '/site', { to: '/var/www/html' }),
  data('/var/www/uploads', { owner: 'www' }),
]);
`;

beforeEach(() => {
  r = rig();
  other = path.join(path.dirname(r.root), 'other-root');
  fs.mkdirSync(path.join(r.src, 'site'));
  fs.writeFileSync(path.join(r.src, 'site', 'index.html'), '<h1>hi</h1>\n');
  r.jailfile(JAILFILE);
});
afterEach(() => r.cleanup());

const make = (...args: string[]) => r.jail('make', `ROOT=${r.root}`, `SRC=${r.src}`, ...args);

describe('pack, then rebuild FROM= elsewhere', () => {
  it('gives an identical tree, /dev/null and data() included, with no host source needed', () => {
    expect(make().code).toBe(0);
    fs.writeFileSync(r.root + '/var/www/uploads/photo.jpg', Buffer.alloc(5000, 9));
    fs.chownSync(r.root + '/var/www/uploads/photo.jpg', 80, 80);
    const pack = path.join(r.outside, 'jail.tar.gz');
    const res = r.jail('pack', `ROOT=${r.root}`, `SRC=${r.src}`, '-o', pack);
    expect(res.code, res.stderr).toBe(0);
    // The host source goes away: the pack alone must be enough.
    fs.rmSync(path.join(r.src, 'site'), { recursive: true });
    const reb = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(reb.code, reb.stderr).toBe(0);
    expect(tree(other)).toEqual(tree(r.root));
    expect(fs.statSync(other + '/dev/null').rdev).toBe(fs.statSync('/dev/null').rdev);
    expect(execFileSync('chroot', ['--userspec=80:80', other, '/bin/sh', '-c', 'cat /var/www/html/index.html; id'], { encoding: 'utf8' }))
      .toBe('<h1>hi</h1>\nuid=80(www) gid=80(www) groups=80(www)\n');
    expect(changes(r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`).stdout)).toEqual([]);
  });

  it('-o NAME.tar.gz writes gzip that tar reads, -o NAME.tar plain tar; rebuild FROM= reads either by its bytes, not its name', () => {
    expect(make().code).toBe(0);
    const gz = path.join(r.outside, 'jail.tar.gz'), plain = path.join(r.outside, 'jail.tar');
    for (const out of [gz, plain]) {
      const res = r.jail('pack', `ROOT=${r.root}`, `SRC=${r.src}`, '-o', out);
      expect(res.code, res.stderr).toBe(0);
    }
    expect([...fs.readFileSync(gz).subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    expect(execFileSync('tar', ['tzf', gz], { encoding: 'utf8' }).split('\n')).toContain('jail-pack.json');
    expect(fs.readFileSync(plain).subarray(257, 262).toString()).toBe('ustar');
    expect(execFileSync('tar', ['tf', plain], { encoding: 'utf8' }).split('\n')).toContain('jail-pack.json');
    // Renamed packs: gzip under a plain name, plain tar under a .tgz name.
    const gzAsTar = path.join(r.src, 'gz-named.tar'), tarAsTgz = path.join(r.src, 'plain-named.tgz');
    fs.copyFileSync(gz, gzAsTar);
    fs.copyFileSync(plain, tarAsTgz);
    for (const [i, from] of [gz, plain, gzAsTar, tarAsTgz].entries()) {
      const to = `${other}-${i}`;
      const reb = r.jail('make', `ROOT=${to}`, 'rebuild', `FROM=${from}`);
      expect(reb.code, `${from}: ${reb.stderr}`).toBe(0);
      expect(tree(to)).toEqual(tree(r.root));
    }
  });

  it('carries hard links as hard links', () => {
    expect(make().code).toBe(0);
    fs.writeFileSync(r.root + '/var/www/uploads/a.bin', Buffer.alloc(3000, 5));
    fs.linkSync(r.root + '/var/www/uploads/a.bin', r.root + '/var/www/uploads/b.bin');
    const pack = path.join(r.outside, 'links.tar');
    expect(r.jail('pack', `ROOT=${r.root}`, `SRC=${r.src}`, '-o', pack).code).toBe(0);
    const reb = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(reb.code, reb.stderr).toBe(0);
    const a = fs.statSync(other + '/var/www/uploads/a.bin'), b = fs.statSync(other + '/var/www/uploads/b.bin');
    expect(a.ino).toBe(b.ino);
    expect(a.nlink).toBe(2);
    expect(fs.readFileSync(other + '/var/www/uploads/b.bin')).toEqual(Buffer.alloc(3000, 5));
    expect(changes(r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`).stdout)).toEqual([]);
  });

  it('packs the jail make built with its variables when pack is not given them; one given wins', () => {
    expect(make().code).toBe(0);
    const pack = path.join(r.outside, 'jail.tar');
    // SRC is not given: the one the last make recorded is.
    const res = r.jail('pack', `ROOT=${r.root}`, '-o', pack);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const index = JSON.parse(execFileSync('tar', ['xOf', pack, 'jail-pack.json'], { encoding: 'utf8' }));
    expect(index.vars).toEqual({ SRC: r.src, ROOT: r.root });
    const reb = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(reb.code, reb.stderr).toBe(0);
    expect(tree(other)).toEqual(tree(r.root));

    // Another SRC describes another jail, which this one is not: refused, with the make that would build it.
    const src2 = path.join(r.outside, 'src2');
    fs.mkdirSync(path.join(src2, 'site'), { recursive: true });
    fs.writeFileSync(path.join(src2, 'site', 'index.html'), '<h1>other</h1>\n');
    const again = r.jail('pack', `ROOT=${r.root}`, `SRC=${src2}`, '-o', path.join(r.outside, 'x.tar'));
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`/var/www/html/index.html: source is now ${src2}/site/index.html (was ${r.src}/site/index.html)). Run \`jail make ROOT=${r.root} SRC=${src2}\` first, then pack.`);
    expect(fs.existsSync(path.join(r.outside, 'x.tar'))).toBe(false);
  });

  it('refuses to pack a jail that is not up to date', () => {
    expect(make().code).toBe(0);
    fs.writeFileSync(r.root + '/etc/motd', 'defaced\n');
    const res = r.jail('pack', `ROOT=${r.root}`, `SRC=${r.src}`, '-o', path.join(r.outside, 'x.tar'));
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/is not what the jailfile declares .* \/etc\/motd: output edited .* Run `jail make ROOT=/);
    expect(fs.existsSync(path.join(r.outside, 'x.tar'))).toBe(false);
  });

  it('a rebuild killed halfway converges on the next run', async () => {
    fs.mkdirSync(path.join(r.src, 'site', 'many'));
    for (let i = 0; i < 2000; i++) fs.writeFileSync(path.join(r.src, 'site', 'many', `f${i}`), Buffer.alloc(20000, i % 251));
    expect(make().code).toBe(0);
    const good = tree(r.root);
    execFileSync('chroot', [r.root, '/bin/sh', '-c', 'rm -rf --no-preserve-root / 2>/dev/null; exit 0']);
    const child = r.jailAsync('make', `ROOT=${r.root}`, `SRC=${r.src}`, 'rebuild');
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        const d = r.root + '/var/www/html/many';
        if (fs.existsSync(d) && fs.readdirSync(d).length > 200) { clearInterval(poll); child.kill('SIGKILL'); resolve(); }
      }, 5);
    });
    await new Promise((resolve) => child.on('exit', resolve));
    expect(make('rebuild').code).toBe(0);
    expect(tree(r.root)).toEqual(good);
    expect(changes(make().stdout)).toEqual([]);
  });
});

/** A tar archive written entry by entry, so each trick can be planted exactly. */
function hostileTar(file: string, entries: { name: string; type?: string; body?: Buffer; linkpath?: string }[], gzip = false) {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? Buffer.alloc(0);
    const h = new Header({ path: e.name, mode: 0o644, uid: 0, gid: 0, size: e.type && e.type !== 'File' ? 0 : body.length, mtime: new Date(0), type: (e.type ?? 'File') as 'File', linkpath: e.linkpath });
    h.encode();
    blocks.push(h.block!);
    if (!e.type || e.type === 'File') {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  const tar = Buffer.concat(blocks);
  fs.writeFileSync(file, gzip ? zlib.gzipSync(tar) : tar);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const index = (entries: object[]) => Buffer.from(JSON.stringify({ format: 'jail-pack/1', created: '', root: '/x', vars: {}, entries }));
const fileEntry = (p: string, body: Buffer, mode = 0o644) => ({ path: p, kind: 'file', mode, uid: 0, gid: 0, size: body.length, sha256: sha(body) });

describe('a hostile jail while it is packed', () => {
  // The jail swaps a data() directory with a link to the host (renameat2 RENAME_EXCHANGE)
  // as fast as it can while pack walks and reads: a pack reading `ROOT + path` follows the
  // link at some point and carries the host file; one reading through directory
  // descriptors never does. A race, so bounded tries: the old code leaked within a few.
  it('never carries a host file through a directory swapped for a link, and leaves no temporary file', async () => {
    r.jailfile(`import { defineJail, text, data } from 'jail';\nexport default defineJail(() => [text('/etc/motd', 'hello\\n'), data('/srv/data')]);\n`);
    expect(make().code).toBe(0);
    fs.writeFileSync(path.join(r.outside, 'secret'), 'host secret\n', { mode: 0o600 });
    fs.mkdirSync(r.root + '/srv/data/sub');
    fs.writeFileSync(r.root + '/srv/data/sub/secret', 'decoy\n');
    fs.symlinkSync(r.outside, r.root + '/srv/data/sublink');
    const swap = path.join(r.dir, 'swap');
    fs.writeFileSync(swap + '.c', `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/fs.h>
int main(int c, char **v) { for (;;) { syscall(SYS_renameat2, AT_FDCWD, v[1], AT_FDCWD, v[2], RENAME_EXCHANGE); usleep(500); } }
`);
    execFileSync('gcc', ['-O2', '-o', swap, swap + '.c']);
    const { spawn } = await import('node:child_process');
    const swapper = spawn(swap, [r.root + '/srv/data/sub', r.root + '/srv/data/sublink'], { stdio: 'ignore' });
    try {
      for (let k = 0; k < 20; k++) {
        const pack = path.join(r.dir, `p${k}.tar`);
        r.jail('pack', `ROOT=${r.root}`, '-o', pack);
        if (!fs.existsSync(pack)) continue; // a pack may fail on the race; it must not leak
        expect(fs.readFileSync(pack).includes('host secret'), `pack ${k}`).toBe(false);
      }
    } finally {
      swapper.kill('SIGKILL');
    }
    expect(fs.readdirSync(r.dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(fs.readFileSync(path.join(r.outside, 'secret'), 'utf8')).toBe('host secret\n');
  });
});

describe('hostile packs are refused whole', () => {
  const body = Buffer.from('payload\n');
  const cases: [string, (file: string) => void, RegExp][] = [
    ['a member with ..', (f) => hostileTar(f, [{ name: 'files/../../outside/evil', body }, { name: 'jail-pack.json', body: index([]) }]), /entry "files\/\.\.\/\.\.\/outside\/evil" is not a file of the jail/],
    ['an absolute member', (f) => hostileTar(f, [{ name: '/etc/evil', body }, { name: 'jail-pack.json', body: index([]) }]), /is not a file of the jail/],
    ['a symlink member', (f) => hostileTar(f, [{ name: 'files/etc', type: 'SymbolicLink', linkpath: '/etc' }, { name: 'jail-pack.json', body: index([]) }]), /entry "files\/etc" is a SymbolicLink entry/],
    ['a hard link to outside', (f) => hostileTar(f, [{ name: 'files/passwd', type: 'Link', linkpath: '/etc/passwd' }, { name: 'jail-pack.json', body: index([]) }]), /entry "files\/passwd" is a Link entry/],
    ['a file through a symlink', (f) => hostileTar(f, [
      { name: 'files/a/x', body },
      { name: 'jail-pack.json', body: index([{ path: '/a', kind: 'symlink', mode: 0o777, uid: 0, gid: 0, target: '/tmp' }, fileEntry('/a/x', body)]) },
    ]), /entry "\/a\/x" lies beneath \/a, which the pack makes a symlink/],
    ['a device outside the allowed set', (f) => hostileTar(f, [{ name: 'jail-pack.json', body: index([{ path: '/dev/mem', kind: 'device', type: 'c', major: 1, minor: 1, mode: 0o666, uid: 0, gid: 0 }]) }]), /entry "\/dev\/mem" is a device c 1:1, outside the allowed set/],
    ['a device tar entry', (f) => hostileTar(f, [{ name: 'files/dev/sda', type: 'BlockDevice' }, { name: 'jail-pack.json', body: index([]) }]), /is a BlockDevice entry/],
    ['setuid bits', (f) => hostileTar(f, [{ name: 'files/bin/su', body }, { name: 'jail-pack.json', body: index([fileEntry('/bin/su', body, 0o4755)]) }]), /entry "\/bin\/su" is setuid or setgid/],
    ['absurd nesting', (f) => { const p = '/' + Array.from({ length: 100 }, () => 'd').join('/'); hostileTar(f, [{ name: 'files' + p, body }, { name: 'jail-pack.json', body: index([fileEntry(p, body)]) }]); }, /nested deeper than 64 levels/],
    ['a decompression bomb', (f) => hostileTar(f, [{ name: 'files/bomb', body: Buffer.alloc(60 * 1024 * 1024) }, { name: 'jail-pack.json', body: index([fileEntry('/bomb', Buffer.alloc(60 * 1024 * 1024))]) }], true), /decompression|ratio|bomb/i],
    ['a hard link to nothing in the pack', (f) => hostileTar(f, [{ name: 'jail-pack.json', body: index([{ path: '/etc/x', kind: 'file', mode: 0o644, uid: 0, gid: 0, linkTo: '/etc/shadow' }]) }]), /entry "\/etc\/x" is a hard link to "\/etc\/shadow", which is not a file of the pack/],
    ['bytes that do not match the index', (f) => hostileTar(f, [{ name: 'files/etc/motd', body }, { name: 'jail-pack.json', body: index([fileEntry('/etc/motd', Buffer.from('other'))]) }]), /does not match the size or sha256/],
    ['no index', (f) => hostileTar(f, [{ name: 'files/etc/motd', body }]), /has no jail-pack\.json/],
  ];
  for (const [name, build, msg] of cases) {
    it(`${name}: clear error, sentinel outside and the previous jail unchanged`, () => {
      expect(make().code).toBe(0);
      fs.writeFileSync(path.join(r.outside, 'sentinel'), 'keep\n');
      const outsideBefore = treeBytes(r.outside);
      const jailBefore = tree(r.root);
      const file = path.join(r.src, name.replace(/\W+/g, '-') + '.tar');
      build(file);
      const res = r.jail('make', `ROOT=${r.root}`, 'rebuild', `FROM=${file}`);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(msg);
      expect(res.stderr).toMatch(/Nothing was changed|refused/);
      expect(treeBytes(r.outside)).toEqual(outsideBefore);
      expect(tree(r.root)).toEqual(jailBefore);
      expect(fs.existsSync('/outside/evil')).toBe(false);
    });
  }
});

/** The pack's index, read with the host's tar. */
const packIndex = (pack: string) => JSON.parse(execFileSync('tar', ['xOf', pack, 'jail-pack.json'], { encoding: 'utf8', maxBuffer: 1 << 30 }));
const packMembers = (pack: string) => execFileSync('tar', ['tf', pack], { encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').filter(Boolean);

describe('where pack writes, and what it takes', () => {
  it('refuses -o inside ROOT, and never writes through a link planted at its temporary name', () => {
    expect(make().code).toBe(0);
    const victim = path.join(r.outside, 'victim');
    fs.writeFileSync(victim, 'keep\n');
    const before = fingerprint(r.root);
    const inside = r.jail('pack', `ROOT=${r.root}`, '-o', r.root + '/tmp/backup.tar');
    expect(inside.code).toBe(2);
    expect(inside.stderr).toContain(`-o ${r.root}/tmp/backup.tar is inside ROOT ${r.root}`);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    // Through a link to ROOT's directory: the same place by another name.
    fs.symlinkSync(r.root + '/tmp', path.join(r.outside, 'via'));
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', path.join(r.outside, 'via', 'backup.tar')).code).toBe(2);
    expect(touched(before, fingerprint(r.root))).toEqual([]);

    // A shared directory where someone planted links at every temporary name pack may pick.
    const shared = path.join(r.outside, 'shared');
    fs.mkdirSync(shared, { mode: 0o1777 });
    const last = Number(fs.readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    for (let pid = last + 1; pid <= last + 3000; pid++) fs.symlinkSync(victim, path.join(shared, `backup.tar.${pid}.tmp`));
    const res = r.jail('pack', `ROOT=${r.root}`, '-o', path.join(shared, 'backup.tar'));
    expect(fs.readFileSync(victim, 'utf8')).toBe('keep\n');
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/backup\.tar\.\d+\.tmp is in the way/);
    expect(fs.existsSync(path.join(shared, 'backup.tar'))).toBe(false);
  });

  it('-o in a directory that does not exist: one paragraph, exit 2', () => {
    expect(make().code).toBe(0);
    const res = r.jail('pack', `ROOT=${r.root}`, '-o', '/nonexistent-dir/x.tar');
    expect(res.code).toBe(2);
    expect(res.stderr).toBe('jail: error: Cannot write the pack /nonexistent-dir/x.tar: its directory /nonexistent-dir does not exist (ENOENT). Create it, or name another place with -o. Nothing was written.\n');
  });

  it('names a format it cannot write: refused, naming the ones it can', () => {
    expect(make().code).toBe(0);
    for (const name of ['j.tar.zst', 'j.tar.bz2', 'j.zip', 'j.tar.xz', 'j']) {
      const res = r.jail('pack', `ROOT=${r.root}`, '-o', path.join(r.outside, name));
      expect(res.code, name).toBe(2);
      expect(res.stderr, name).toContain(`-o ${path.join(r.outside, name)}: jail pack writes FILE.tar, or FILE.tar.gz (FILE.tgz) compressed with gzip`);
      expect(fs.existsSync(path.join(r.outside, name)), name).toBe(false);
    }
  });

  it("refuses make's flags and targets it has no use for, writing nothing", () => {
    expect(make().code).toBe(0);
    const out = path.join(r.outside, 'n.tar');
    const cases: [string[], string][] = [
      [['-n'], '-n'], [['-q'], '-q'], [['-B'], '-B'], [['-k'], '-k'], [['-j', '2'], '-j'], [['--explain'], '--explain'], [['--json'], '--json'],
      [['--user', 'www'], '--user'], [['clean'], 'targets (got clean)'], [['/etc/motd'], 'targets (got /etc/motd)'],
    ];
    for (const [extra, named] of cases) {
      const res = r.jail('pack', `ROOT=${r.root}`, '-o', out, ...extra);
      expect(res.code, extra.join(' ')).toBe(2);
      expect(res.stderr, extra.join(' ')).toContain(named);
      expect(res.stderr.split('\n').filter(Boolean).length, extra.join(' ')).toBe(1);
      expect(fs.existsSync(out), extra.join(' ')).toBe(false);
    }
  });

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} while packing removes the temporary file`, async () => {
      r.jailfile(`import { defineJail, text, data } from 'jail';\nexport default defineJail(() => [text('/etc/motd', 'hello\\n'), data('/srv/db')]);\n`);
      expect(make().code).toBe(0);
      // Big enough to be read for a while (sparse: cheap to make).
      fs.writeFileSync(r.root + '/srv/db/big.img', '');
      fs.truncateSync(r.root + '/srv/db/big.img', 1536 * 1024 * 1024);
      const out = path.join(r.outside, 'big.tar');
      const child = r.jailAsync('pack', `ROOT=${r.root}`, '-o', out);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ? 128 : code)));
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (fs.readdirSync(r.outside).some((n) => n.endsWith('.tmp'))) { clearInterval(poll); child.kill(sig); resolve(); }
        }, 5);
      });
      expect(await exited).not.toBe(0);
      expect(fs.readdirSync(r.outside)).toEqual([]);
    });
  }
});

describe('what pack writes, rebuild reads', () => {
  it('declared paths inside data() and data() inside data(): each carried once; data nested too deep is left out with a warning', () => {
    r.jailfile(`import { defineJail, text, data } from 'jail';
export default defineJail(() => [
  data('/srv/www'), text('/srv/www/index.html', '<h1>hi</h1>\\n'),
  data('/srv/a'), data('/srv/a/logs'),
]);
`);
    expect(make().code).toBe(0);
    fs.writeFileSync(r.root + '/srv/www/upload.jpg', 'jpeg\n');
    fs.writeFileSync(r.root + '/srv/a/logs/access.log', 'GET /\n');
    fs.writeFileSync(r.root + '/srv/a/state', 'up\n');
    // A service can nest directories as deep as it likes; a pack carries 64 levels.
    let deep = r.root + '/srv/a/deep';
    for (let i = 0; i < 70; i++) deep += '/d';
    fs.mkdirSync(deep, { recursive: true });
    fs.writeFileSync(deep + '/bottom', 'x\n');
    const pack = path.join(r.outside, 'j.tar');
    const res = r.jail('pack', `ROOT=${r.root}`, '-o', pack);
    expect(res.code, res.stderr).toBe(0);
    const tooDeep = '/srv/a/deep' + '/d'.repeat(62);
    expect(res.stderr).toBe(`jail: warning: pack: ${tooDeep} is nested deeper than 64 levels; it and what lies beneath it are not packed (a pack carries 64 levels)\n`);
    const reb = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(reb.code, reb.stderr).toBe(0);
    const want = new Map([...tree(r.root)].filter(([p]) => p !== tooDeep && !p.startsWith(tooDeep + '/')));
    expect(tree(other)).toEqual(want);
    expect(fs.readFileSync(other + '/srv/a/logs/access.log', 'utf8')).toBe('GET /\n');
  });

  it('a data() directory keeps its setgid bit', () => {
    r.jailfile(`import { defineJail, data } from 'jail';\nexport default defineJail(() => [data('/srv/shared')]);\n`);
    expect(make().code).toBe(0);
    fs.mkdirSync(r.root + '/srv/shared/team');
    fs.chmodSync(r.root + '/srv/shared/team', 0o2775);
    const pack = path.join(r.outside, 'j.tar');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', pack).code).toBe(0);
    const reb = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(reb.code, reb.stderr).toBe(0);
    expect(fs.statSync(other + '/srv/shared/team').mode & 0o7777).toBe(0o2775);
  });

  it('a jail with a setuid program or a device outside the allowed set cannot be packed: refused up front, naming the entry', () => {
    fs.writeFileSync(path.join(r.src, 'tool'), '#!/bin/sh\n', { mode: 0o4755 });
    r.jailfile(`import { defineJail, copy, device } from 'jail';
export default defineJail(({ SRC }) => [
  copy(SRC + '/tool', { to: '/usr/bin/tool', setuid: true }),
  device('/dev/kmsg', { type: 'c', major: 1, minor: 11, dangerous: true }),
]);
`);
    expect(make().code).toBe(0);
    const pack = path.join(r.outside, 'j.tar');
    const res = r.jail('pack', `ROOT=${r.root}`, '-o', pack);
    expect(res.code).toBe(2);
    const errors = res.stderr.split('\n').filter((l) => l.startsWith('jail: error: '));
    expect(errors.length).toBe(2);
    expect(errors[0]).toMatch(/^jail: error: \/dev\/kmsg \(device\("\/dev\/kmsg"\) at jailfile\.ts:4\) cannot be packed: `rebuild FROM=` refuses it \(it is a device c 1:11, outside the allowed set/);
    expect(errors[1]).toMatch(/^jail: error: \/usr\/bin\/tool \(copy\(".*\/tool"\) at jailfile\.ts:3\) cannot be packed: `rebuild FROM=` refuses it \(it is setuid or setgid \(mode 4755\)/);
    expect(fs.readdirSync(r.outside)).toEqual([]);
  });

  it('pack FROM= a pack carries no copy of the old archive, and the service\'s files stay its own', () => {
    expect(make().code).toBe(0);
    fs.writeFileSync(r.root + '/var/www/uploads/photo.jpg', 'jpeg\n');
    const first = path.join(r.outside, 'one.tar');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', first).code).toBe(0);
    expect(r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${first}`).code).toBe(0);
    const second = path.join(r.outside, 'two.tar');
    const res = r.jail('pack', `ROOT=${other}`, `FROM=${first}`, '-o', second);
    expect(res.code, res.stderr).toBe(0);
    expect(packIndex(first).jailfile).toBe(fs.readFileSync(path.join(r.dir, 'jailfile.ts'), 'utf8'));
    expect(packIndex(second).jailfile).toBeUndefined();
    expect(Math.abs(fs.statSync(second).size - fs.statSync(first).size)).toBeLessThan(4096);
    // Restored only where missing by a rebuild from either pack, never put back over the service's newer copy.
    for (const pack of [first, second]) expect(packIndex(pack).entries.find((e: { path: string }) => e.path === '/var/www/uploads/photo.jpg')).toMatchObject({ data: true });
  });
});

describe('a busy or hostile jail while it is packed', () => {
  /** Calls `then` once pack has made its temporary file (it has listed the jail and checked it is up to date). */
  const onceWriting = (dir: string, then: () => void) => new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (fs.readdirSync(dir).some((n) => n.endsWith('.tmp'))) { clearInterval(poll); then(); resolve(); }
    }, 1);
  });
  const manyFiles = (n: number) => {
    fs.mkdirSync(path.join(r.src, 'site', 'many'));
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(r.src, 'site', 'many', `f${i}`), Buffer.alloc(4000, i % 251));
  };

  it('refuses a declared file the jail replaced after the up-to-date check', async () => {
    r.jailfile(`import { defineJail, copy, dir, text } from 'jail';
export default defineJail(({ SRC }) => [
  copy(SRC + '/site', { to: '/srv/a-site' }),
  dir('/srv/app', { owner: '80:80' }),
  text('/srv/app/zz-config', 'safe = yes\\n'),
]);
`);
    manyFiles(5000);
    expect(make().code).toBe(0);
    fs.writeFileSync(r.root + '/srv/app/.new', 'safe = no\n');
    fs.chownSync(r.root + '/srv/app/.new', 80, 80);
    const pack = path.join(r.outside, 'j.tar');
    const child = r.jailAsync('pack', `ROOT=${r.root}`, '-o', pack);
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // What a process of the jail (uid 80, owner of /srv/app) can do: rename another file in.
    await onceWriting(r.outside, () => fs.renameSync(r.root + '/srv/app/.new', r.root + '/srv/app/zz-config'));
    expect(await exited, stderr).toBe(2);
    expect(stderr).toContain('/srv/app/zz-config in ROOT changed while it was being packed');
    expect(fs.readdirSync(r.outside)).toEqual([]);
  }, 120_000);

  it('a data file the service deletes during the pack is left out with a note', async () => {
    r.jailfile(`import { defineJail, copy, data } from 'jail';\nexport default defineJail(({ SRC }) => [copy(SRC + '/site', { to: '/srv/a-site' }), data('/srv/db')]);\n`);
    manyFiles(2000);
    expect(make().code).toBe(0);
    fs.writeFileSync(r.root + '/srv/db/job.8', 'queued\n');
    fs.writeFileSync(r.root + '/srv/db/keep', 'kept\n');
    fs.linkSync(r.root + '/srv/db/job.8', r.root + '/srv/db/job.8.link');
    const pack = path.join(r.outside, 'j.tar');
    const child = r.jailAsync('pack', `ROOT=${r.root}`, '-o', pack);
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await onceWriting(r.outside, () => fs.rmSync(r.root + '/srv/db/job.8'));
    expect(await exited, stderr).toBe(0);
    expect(stderr).toBe('jail pack: note: /srv/db/job.8 was removed while the jail was packed; not packed\n');
    const idx = packIndex(pack);
    expect(idx.entries.find((e: { path: string }) => e.path === '/srv/db/job.8')).toBeUndefined();
    // Its other name carries the bytes now.
    expect(idx.entries.find((e: { path: string }) => e.path === '/srv/db/job.8.link')).toMatchObject({ kind: 'file', size: 7 });
    const reb = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(reb.code, reb.stderr).toBe(0);
    expect(tree(other)).toEqual(tree(r.root));
  }, 120_000);

  it("a name the service chose is printed with its control characters escaped", () => {
    r.jailfile(`import { defineJail, data } from 'jail';\nexport default defineJail(() => [data('/srv/db')]);\n`);
    expect(make().code).toBe(0);
    execFileSync('mkfifo', [r.root + '/srv/db/x\x1b[2J\njail: packed 0 paths OK']);
    const res = r.jail('pack', `ROOT=${r.root}`, '-o', path.join(r.outside, 'j.tar'));
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe('jail: warning: pack: /srv/db/x\\x1b[2J\\x0ajail: packed 0 paths OK is a device, FIFO or socket; not packed\n');
  });

  it('a file over 2 GiB is packed, read in bounded pieces', async () => {
    r.jailfile(`import { defineJail, data } from 'jail';\nexport default defineJail(() => [data('/srv/db')]);\n`);
    expect(make().code).toBe(0);
    const size = 2 * 1024 ** 3 + 4096;
    fs.writeFileSync(r.root + '/srv/db/sparse.img', 'head');
    fs.truncateSync(r.root + '/srv/db/sparse.img', size);
    const pack = path.join(r.outside, 'big.tar');
    const child = r.jailAsync('pack', `ROOT=${r.root}`, '-o', pack);
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    let peak = 0;
    const poll = setInterval(() => {
      try { peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1])); } catch { /* gone */ }
    }, 20);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearInterval(poll);
    expect(code, stderr).toBe(0);
    expect(peak).toBeGreaterThan(0);
    expect(peak * 1024).toBeLessThan(400 * 1024 ** 2);
    const entry = packIndex(pack).entries.find((e: { path: string }) => e.path === '/srv/db/sparse.img');
    expect(entry.size).toBe(size);
    const zeros = createHash('sha256').update('head');
    const block = Buffer.alloc(1 << 20);
    for (let left = size - 4; left > 0; left -= Math.min(left, block.length)) zeros.update(block.subarray(0, Math.min(left, block.length)));
    expect(entry.sha256).toBe(zeros.digest('hex'));
    expect(packMembers(pack)).toContain('files/srv/db/sparse.img');
  }, 120_000);
});
