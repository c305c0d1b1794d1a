// `jail pack` and `rebuild FROM=`: a jail moved through an archive comes back identical,
// /dev/null and the service's data included; hostile archives are refused whole.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Header } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { changes, fingerprint, rig, tree, treeBytes, type Rig } from './helpers.js';

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
});
