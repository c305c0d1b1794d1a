// `jail pack` and `rebuild FROM=`: a jail moved through an archive comes back identical,
// /dev/null and the service's data included; hostile archives are refused whole.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Header } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { changes, CLI, fingerprint, rig, touched, tree, treeBytes, type Rig } from './helpers.js';

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
    // 200 MiB of zeros in 200 KiB: over 200 times its size, and past the 64 MiB of slack a small pack of zeros gets.
    ['a decompression bomb', (f) => hostileTar(f, [{ name: 'files/bomb', body: Buffer.alloc(200 * 1024 * 1024) }, { name: 'jail-pack.json', body: index([fileEntry('/bomb', Buffer.alloc(200 * 1024 * 1024))]) }], true), /expands to more than 200 times its size \(a decompression bomb\?\)/],
    // What would fail only once ROOT is being written: refused with the rest, before anything is.
    ['an owner past 2^32-2', (f) => hostileTar(f, [{ name: 'files/etc/motd', body }, { name: 'jail-pack.json', body: index([{ ...fileEntry('/etc/motd', body), uid: 2 ** 40 }]) }]), /entry "\/etc\/motd" has a bad mode or owner/],
    ['a name of 300 bytes', (f) => { const p = `/srv/${'n'.repeat(300)}`; hostileTar(f, [{ name: 'jail-pack.json', body: index([{ path: p, kind: 'dir', mode: 0o755, uid: 0, gid: 0 }]) }]); }, /has a name longer than 255 bytes/],
    ['a link target of 5000 bytes', (f) => hostileTar(f, [{ name: 'jail-pack.json', body: index([{ path: '/srv/l', kind: 'symlink', mode: 0o777, uid: 0, gid: 0, target: 't'.repeat(5000) }]) }]), /entry "\/srv\/l" is a symlink whose target is longer than 4095 bytes/],
    ['a path of 4200 bytes', (f) => { const p = '/' + Array.from({ length: 21 }, () => 'd'.repeat(199)).join('/'); hostileTar(f, [{ name: 'jail-pack.json', body: index([{ path: p, kind: 'dir', mode: 0o755, uid: 0, gid: 0 }]) }]); }, /is longer than 4095 bytes/],
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
      // One paragraph, naming the pack.
      expect(res.stderr.match(/^jail: error: /gm)).toHaveLength(1);
      expect(res.stderr).toMatch(new RegExp(`^jail: error: The pack ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is refused: .*Nothing was changed`, 'm'));
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

  it("a service's file whose name is not UTF-8 is left out with a warning naming it, never dropped in silence", () => {
    r.jailfile(`import { defineJail, data } from 'jail';\nexport default defineJail(() => [data('/srv/db')]);\n`);
    expect(make().code).toBe(0);
    fs.writeFileSync(Buffer.from(`${r.root}/srv/db/ok`), 'kept\n');
    fs.writeFileSync(Buffer.concat([Buffer.from(`${r.root}/srv/db/bad`), Buffer.of(0xff)]), 'lost?\n');
    const res = r.jail('pack', `ROOT=${r.root}`, '-o', path.join(r.outside, 'j.tar'));
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe("jail: warning: pack: /srv/db/bad\\xff: its name is not valid UTF-8 (shown escaped), and a pack's names are UTF-8 text; not packed (rename it in the jail, then pack again)\n");
    const listed = execFileSync('tar', ['-tf', path.join(r.outside, 'j.tar')], { encoding: 'utf8' });
    expect(listed).toContain('files/srv/db/ok');
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

/** The staging directories a FROM= build left in the state directory. */
const staging = (dir: string) => (fs.existsSync(path.join(dir, '.jail')) ? fs.readdirSync(path.join(dir, '.jail')).filter((n) => n.startsWith('unpack-')) : []);

describe('the state directory and the files rebuild copies out of a pack', () => {
  it('refuses a .jail another user made or can write, FROM= or not, and touches nothing', () => {
    expect(make().code).toBe(0);
    const pack = path.join(r.outside, 'p.tar');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', pack).code).toBe(0);
    // FROM= where an admin downloaded the pack: a shared scratch directory, .jail made first by another user.
    fs.chmodSync(path.dirname(r.outside), 0o755);
    const pub = path.join(r.outside, 'pub');
    fs.mkdirSync(pub);
    fs.chmodSync(pub, 0o1777);
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'mkdir', path.join(pub, '.jail')]);
    let res = r.jail('make', '-C', pub, `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`The state directory ${pub}/.jail is owned by uid 65534, not by you or root`);
    expect(fs.existsSync(other)).toBe(false);
    expect(fs.readdirSync(path.join(pub, '.jail'))).toEqual([]);
    // Removed, it is made again as root's, and the rebuild goes on.
    fs.rmdirSync(path.join(pub, '.jail'));
    res = r.jail('make', '-C', pub, `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(res.code, res.stderr).toBe(0);
    expect(tree(other)).toEqual(tree(r.root));
    expect(fs.lstatSync(path.join(pub, '.jail')).uid).toBe(0);

    // With FROM=, a directory above owned by another user: they could rename .jail away and put theirs in its place.
    const theirs = path.join(r.outside, 'theirs');
    fs.mkdirSync(theirs);
    fs.chownSync(theirs, 65534, 65534);
    res = r.jail('make', '-C', theirs, `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`The state directory ${theirs}/.jail lies in ${theirs}, owned by uid 65534`);

    // Beside a jailfile: the same for every command that reads the state directory.
    const state = path.join(r.dir, '.jail');
    const jailBefore = fingerprint(r.root);
    for (const [why, plant] of [
      ['is owned by uid 65534', () => fs.chownSync(state, 65534, 65534)],
      ['can be written by anyone (mode 777)', () => { fs.chownSync(state, 0, 0); fs.chmodSync(state, 0o777); }],
      ['is a symlink', () => { fs.renameSync(state, state + '.real'); fs.chmodSync(state + '.real', 0o755); fs.symlinkSync(state + '.real', state); }],
    ] as const) {
      plant();
      for (const cmd of [['make'], ['make', '-n'], ['check'], ['pack', '-o', path.join(r.outside, 'q.tar')]]) {
        res = r.jail(cmd[0]!, `ROOT=${r.root}`, `SRC=${r.src}`, ...cmd.slice(1));
        expect(res.code, `${why}: ${cmd.join(' ')}`).toBe(2);
        expect(res.stderr).toContain(`The state directory ${state} ${why}`);
      }
    }
    expect(fingerprint(r.root)).toEqual(jailBefore);
    expect(fs.existsSync(path.join(r.outside, 'q.tar'))).toBe(false);
  });

  // Another user used to be able to swap the staging directory for one of their own full of
  // links to host files, which the build then copied into the jail. Now they cannot make or
  // write .jail (above); and the copy reads the staged files through the directory the build
  // made and holds open, so even a swap by root (this test) redirects nothing.
  it('copies the files it staged, whatever is renamed over their directory meanwhile', async () => {
    // Files enough for the copy to take a while: the swap below lands in it.
    fs.mkdirSync(path.join(r.src, 'site', 'many'));
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(r.src, 'site', 'many', `f${i}`), `file ${i}\n`);
    expect(make().code).toBe(0);
    const pack = path.join(r.outside, 'p.tar');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', pack).code).toBe(0);
    const idx = JSON.parse(execFileSync('tar', ['xOf', pack, 'jail-pack.json'], { encoding: 'utf8' })) as { entries: { kind: string; linkTo?: string }[] };
    const files = idx.entries.filter((e) => e.kind === 'file' && !e.linkTo).length;
    const secret = path.join(r.outside, 'secret');
    fs.writeFileSync(secret, 'host secret\n', { mode: 0o600 });
    const swap = path.join(r.outside, 'swap');
    fs.writeFileSync(swap + '.c', `#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/fs.h>
/* A directory of links to the secret made ready beside each staging directory, and exchanged with it once that holds all its files. */
int main(int c, char **v) {
  int n = atoi(v[2]), done = 0; char p[4096], q[4200], s[4300], swapped[64][256];
  for (;;) {
    DIR *d = opendir(v[1]); struct dirent *e;
    if (!d) { usleep(100); continue; }
    while ((e = readdir(d))) {
      if (strncmp(e->d_name, "unpack-", 7) || strstr(e->d_name, ".evil")) continue;
      int seen = 0;
      for (int i = 0; i < done; i++) seen |= !strcmp(swapped[i], e->d_name);
      if (seen) continue;
      snprintf(p, sizeof p, "%s/%s", v[1], e->d_name);
      snprintf(q, sizeof q, "%s.evil", p);
      if (mkdir(q, 0700) == 0) for (int i = 0; i < n; i++) { snprintf(s, sizeof s, "%s/%d", q, i); symlink(v[3], s); }
      DIR *u = opendir(p); struct dirent *f; int k = 0;
      if (!u) continue;
      while ((f = readdir(u))) if (f->d_name[0] != '.') k++;
      closedir(u);
      if (k >= n && syscall(SYS_renameat2, AT_FDCWD, p, AT_FDCWD, q, RENAME_EXCHANGE) == 0 && done < 64) snprintf(swapped[done++], 256, "%s", e->d_name);
    }
    closedir(d);
    usleep(200);
  }
}
`);
    execFileSync('gcc', ['-O2', '-o', swap, swap + '.c']);
    const { spawn } = await import('node:child_process');
    const swapper = spawn(swap, [path.join(r.dir, '.jail'), String(files), secret], { stdio: 'ignore' });
    try {
      for (let k = 0; k < 2; k++) {
        const to = `${other}-${k}`;
        const res = r.jail('make', `ROOT=${to}`, 'rebuild', `FROM=${pack}`);
        const leaked = fs.existsSync(to) ? [...treeBytes(to)].filter(([, v]) => Buffer.from(v, 'base64').includes('host secret')).map(([p]) => p) : [];
        expect(leaked, `rebuild ${k}`).toEqual([]);
        expect(res.code, res.stderr).toBe(0);
        expect(tree(to)).toEqual(tree(r.root));
      }
    } finally {
      swapper.kill('SIGKILL');
    }
  });

  it('stages nothing for -n, -q, check or pack, one directory per build under its lock, and always removes it', async () => {
    fs.mkdirSync(path.join(r.src, 'site', 'many'));
    for (let i = 0; i < 800; i++) fs.writeFileSync(path.join(r.src, 'site', 'many', `f${i}`), Buffer.alloc(20000, i % 251));
    expect(make().code).toBe(0);
    const pack = path.join(r.outside, 'p.tar');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', pack).code).toBe(0);
    expect(r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`, '-n').code).toBe(0);
    expect(r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`, '-q').code).toBe(1);
    expect(staging(r.dir)).toEqual([]);
    expect(fs.existsSync(other)).toBe(false);

    // A rebuild in progress: a -n beside it stages nothing and removes nothing, a second rebuild waits for it.
    const first = r.jailAsync('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    let err = '';
    first.stderr!.on('data', (d) => { err += d; });
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => { if (staging(r.dir).length) { clearInterval(poll); resolve(); } }, 2);
    });
    const second = r.jailAsync('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    const dry = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`, '-n');
    expect(dry.code, dry.stderr).toBe(0);
    const [a, b] = await Promise.all([first, second].map((c) => new Promise<number | null>((resolve) => c.on('exit', resolve))));
    expect(a, err).toBe(0);
    expect(b).toBe(0);
    expect(tree(other)).toEqual(tree(r.root));
    expect(staging(r.dir)).toEqual([]);

    // check and pack of the jail rebuilt read the pack's hashes, not copies of its files.
    expect(r.jail('check', `ROOT=${other}`, `FROM=${pack}`).code).toBe(0);
    expect(staging(r.dir)).toEqual([]);

    // Stopped while it copies: the directory goes with it. Killed outright: the next build removes what was left.
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGKILL'] as const) {
      const to = `${other}-${sig}`;
      const child = r.jailAsync('make', `ROOT=${to}`, 'rebuild', `FROM=${pack}`);
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => { if (staging(r.dir).length) { clearInterval(poll); child.kill(sig); resolve(); } }, 2);
      });
      const code = await new Promise((resolve) => child.on('exit', (c, s) => resolve(s ?? c)));
      expect(code).toBe(sig);
      expect(staging(r.dir)).toEqual(sig === 'SIGKILL' ? [expect.stringMatching(/^unpack-/)] : []);
      const res = r.jail('make', `ROOT=${to}`, 'rebuild', `FROM=${pack}`);
      expect(res.code, res.stderr).toBe(0);
      expect(tree(to)).toEqual(tree(r.root));
      expect(staging(r.dir)).toEqual([]);
    }
  });

  it('a rebuild from a newer pack names the pack member it takes a file from, not a staging path', () => {
    expect(make().code).toBe(0);
    const p1 = path.join(r.outside, 'p1.tar'), p2 = path.join(r.outside, 'p2.tar.gz');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', p1).code).toBe(0);
    expect(r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${p1}`).code).toBe(0);
    fs.writeFileSync(path.join(r.src, 'site', 'index.html'), '<h1>new</h1>\n');
    expect(make().code).toBe(0);
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', p2).code).toBe(0);
    const res = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${p2}`);
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual([
      `update /var/www/html/index.html (file): source is now files/var/www/html/index.html in ${p2} (was files/var/www/html/index.html in ${p1})`,
    ]);
    expect(fs.readFileSync(other + '/var/www/html/index.html', 'utf8')).toBe('<h1>new</h1>\n');
  });
});

describe('packs rebuild reads, whatever is in them', () => {
  it('names of many multibyte characters survive an index longer than one read', () => {
    expect(make().code).toBe(0);
    // 240 bytes of 日 per name: some character of the 240 KiB index falls across a 64 KiB boundary.
    for (let i = 0; i < 1000; i++) fs.writeFileSync(`${r.root}/var/www/uploads/${'日'.repeat(80)}${i}`, `${i}\n`);
    const pack = path.join(r.outside, 'p.tar');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', pack).code).toBe(0);
    const res = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(res.code, res.stderr).toBe(0);
    expect(tree(other)).toEqual(tree(r.root));
  });

  it('a gzip pack of a service\'s preallocated (zero-filled) file rebuilds: compressible is not a bomb', () => {
    r.jailfile(`import { defineJail, text, data } from 'jail';\nexport default defineJail(() => [text('/etc/motd', 'hello\\n'), data('/srv/db', { mode: 0o700 })]);\n`);
    expect(make().code).toBe(0);
    // 50 MiB in some 50 KiB: a thousand times its size, but no more than a small pack may expand to.
    fs.writeFileSync(`${r.root}/srv/db/prealloc.db`, Buffer.alloc(50 * 1024 * 1024));
    const pack = path.join(r.outside, 'p.tar.gz');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', pack).code).toBe(0);
    const res = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(res.code, res.stderr).toBe(0);
    expect(tree(other)).toEqual(tree(r.root));
  });

  it('what is not a pack is refused in one paragraph: random bytes, xz, zstd this Node cannot read, a huge index, a device, a FIFO', () => {
    expect(make().code).toBe(0);
    const jailBefore = fingerprint(r.root);
    const pack = path.join(r.outside, 'p.tar');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', pack).code).toBe(0);
    const random = path.join(r.outside, 'random.tar');
    fs.writeFileSync(random, Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 7919 + (i >> 8) * 104729) & 0xff)));
    execFileSync('xz', ['-k', pack]);
    execFileSync('zstd', ['-q', pack, '-o', pack + '.zst']);
    // An index of 257 MiB, written without holding it.
    const huge = path.join(r.outside, 'huge.tar');
    const size = 257 * 1024 * 1024;
    const h = new Header({ path: 'jail-pack.json', mode: 0o644, uid: 0, gid: 0, size, mtime: new Date(0), type: 'File' });
    h.encode();
    const fd = fs.openSync(huge, 'w');
    fs.writeSync(fd, h.block!);
    const spaces = Buffer.alloc(1024 * 1024, 0x20);
    for (let i = 0; i < 257; i++) fs.writeSync(fd, spaces);
    fs.writeSync(fd, Buffer.alloc(1024));
    fs.closeSync(fd);
    const fifo = path.join(r.outside, 'fifo.tar');
    execFileSync('mkfifo', [fifo]);
    const zstd = typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';
    const cases: [string, RegExp][] = [
      [random, /is refused: archive could not be read/],
      [pack + '.xz', /is refused: archive could not be read/],
      [huge, /is refused: entry "jail-pack\.json" is too large/],
      ['/dev/zero', /is refused: it is not a regular file/],
      [fifo, /is refused: it is not a regular file/],
      [path.join(r.outside, 'p.tar.zst'), zstd ? /^$/ : /is zstd-compressed, which this Node \(v[\d.]+\) cannot read/],
    ];
    for (const [file, msg] of cases) {
      const p = spawnSync(process.execPath, [CLI, 'make', `ROOT=${r.root}`, 'rebuild', `FROM=${file}`], { cwd: r.dir, encoding: 'utf8', timeout: 60_000 });
      if (file.endsWith('.zst') && zstd) { expect(p.status, p.stderr).toBe(0); continue; }
      expect(p.status, `${file}: ${p.stderr}`).toBe(2);
      expect(p.stderr).toMatch(msg);
      expect(p.stderr.match(/^jail: error: /gm), file).toHaveLength(1);
      expect(p.stderr).toContain(file);
    }
    expect(fingerprint(r.root)).toEqual(jailBefore);
  });

  it('names from a pack are printed with their control characters escaped', () => {
    expect(make().code).toBe(0);
    // A service's file name, carried in the pack as it is.
    fs.writeFileSync(`${r.root}/var/www/uploads/y\x1b]0;pwned\x07\nfake: line`, 'x');
    const pack = path.join(r.outside, 'p.tar');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', pack).code).toBe(0);
    let res = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`, '--explain');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('create /var/www/uploads/y\\x1b]0;pwned\\x07\\x0afake: line (file): output missing [');
    expect(res.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]|^fake/m);
    // A hostile pack's entry, refused or not, is never printed as it is.
    const body = Buffer.from('x');
    const file = path.join(r.outside, 'evil.tar');
    const evil = '/evil\x1b[31mRED\x1b[0m\nfake line\r';
    hostileTar(file, [{ name: 'files' + evil, body }, { name: 'jail-pack.json', body: index([fileEntry(evil, body)]) }]);
    res = r.jail('make', `ROOT=${path.join(r.outside, 'evil-root')}`, 'rebuild', `FROM=${file}`);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('create /evil\\x1b[31mRED\\x1b[0m\\x0afake line\\x0d (file): output missing');
    hostileTar(file, [{ name: 'files' + evil, body }, { name: 'jail-pack.json', body: index([{ ...fileEntry(evil, body), mode: 0o4755 }]) }]);
    res = r.jail('make', `ROOT=${path.join(r.outside, 'evil-root')}`, 'rebuild', `FROM=${file}`);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('entry "/evil\\u001b[31mRED\\u001b[0m\\nfake line\\r" is setuid');
    expect(res.stdout + res.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]|^fake/m);
  });
});

describe('a service that put something else where its files were', () => {
  it('a data directory or a hard link\'s first name made a symlink: rebuild restores the rest, says what it left and how to bring it back', () => {
    expect(make().code).toBe(0);
    const up = `${r.root}/var/www/uploads`;
    fs.mkdirSync(`${up}/sub`);
    fs.writeFileSync(`${up}/sub/f`, 'f\n');
    fs.writeFileSync(`${up}/a.bin`, 'a\n');
    fs.linkSync(`${up}/a.bin`, `${up}/b.bin`);
    const pack = path.join(r.outside, 'p.tar');
    expect(r.jail('pack', `ROOT=${r.root}`, '-o', pack).code).toBe(0);
    expect(r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`).code).toBe(0);
    const good = tree(other);
    // The service's doing: its directory is a link now, its file's first name too; then something is lost.
    const o = `${other}/var/www/uploads`;
    fs.rmSync(`${o}/sub`, { recursive: true });
    fs.symlinkSync('/etc', `${o}/sub`);
    fs.rmSync(`${o}/a.bin`);
    fs.rmSync(`${o}/b.bin`);
    fs.symlinkSync('/etc/passwd', `${o}/a.bin`);
    fs.rmSync(`${other}/etc/motd`);
    let res = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual(['create /etc/motd (file): output missing (deleted since the last build)']);
    expect(res.stderr).toContain('jail: warning: not restored: 1 of the service\'s files and directories in the pack, at or beneath /var/www/uploads/sub: /var/www/uploads/sub in ROOT is now a symlink where the pack has a directory (the service\'s doing?), and jail never writes through what a service put there. To bring them back, remove /var/www/uploads/sub in ROOT by hand, then run the rebuild again');
    expect(res.stderr).toContain('jail: warning: not restored: 1 of the service\'s files and directories in the pack, at or beneath /var/www/uploads/a.bin: /var/www/uploads/a.bin in ROOT is now a symlink where the pack has the file that /var/www/uploads/b.bin is another name of');
    expect(fs.readlinkSync(`${o}/sub`)).toBe('/etc');
    expect(fs.readlinkSync(`${o}/a.bin`)).toBe('/etc/passwd');
    expect(fs.existsSync(`${o}/b.bin`)).toBe(false);
    expect(fs.existsSync('/etc/f')).toBe(false);
    // The advice works.
    fs.rmSync(`${o}/sub`);
    fs.rmSync(`${o}/a.bin`);
    res = r.jail('make', `ROOT=${other}`, 'rebuild', `FROM=${pack}`);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).not.toContain('not restored');
    expect(tree(other)).toEqual(good);
  });
});
