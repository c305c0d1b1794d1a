// The jail is hostile territory: whatever an attacker plants in ROOT, a build run as
// root never writes or deletes outside ROOT, and a killed or concurrent build converges.

import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO, CLI, changes, fingerprint, rig, touched, treeBytes, type Rig } from './helpers.js';
import { rootKey } from '../tasks/manifest.js';

const hasStrace = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;

let r: Rig;

const JAILFILE = `
import { defineJail, dir, copy, text } from 'jail';
export default defineJail(({ SRC }) => [
  dir(['/etc', '/var/log']),
  text('/etc/motd', 'welcome\\n'),
  text('/etc/hostname', 'jail\\n'),
  copy(SRC + '/a.conf', { to: '/etc/a.conf' }),
]);
`;

beforeEach(() => {
  r = rig();
  fs.writeFileSync(path.join(r.src, 'a.conf'), 'alpha\n');
  r.jailfile(JAILFILE);
  // What an attacker would love to overwrite or delete.
  fs.mkdirSync(path.join(r.outside, 'etc'));
  fs.writeFileSync(path.join(r.outside, 'etc', 'motd'), 'host motd\n');
  fs.writeFileSync(path.join(r.outside, 'etc', 'shadow'), 'root:$6$secret:::\n');
  fs.writeFileSync(path.join(r.outside, 'victim'), 'do not touch\n');
});
afterEach(() => r.cleanup());

const make = (...args: string[]) => r.jail('make', `ROOT=${r.root}`, `SRC=${r.src}`, ...args);

describe('planted links and files in ROOT', () => {
  it('replaces ROOT/etc -> a directory outside, and writes nothing there', () => {
    make();
    const outside = treeBytes(r.outside);
    fs.rmSync(r.root + '/etc', { recursive: true });
    fs.symlinkSync(path.join(r.outside, 'etc'), r.root + '/etc');
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/update \/etc \(dir\): output is a symlink, declared a directory/);
    expect(changes(res.stdout)).toContain('create /etc/motd (text): parent /etc is being replaced (it was a symlink)');
    expect(treeBytes(r.outside)).toEqual(outside);
    expect(fs.lstatSync(r.root + '/etc').isDirectory()).toBe(true);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe('welcome\n');
    expect(make('-q').code).toBe(0);
  });

  it('replaces ROOT/etc/motd -> a file outside, and the outside file keeps its bytes', () => {
    make();
    const outside = treeBytes(r.outside);
    fs.unlinkSync(r.root + '/etc/motd');
    fs.symlinkSync(path.join(r.outside, 'etc', 'shadow'), r.root + '/etc/motd');
    const res = make();
    expect(res.stdout).toMatch(/update \/etc\/motd \(text\): output is a symlink, declared a regular file/);
    expect(treeBytes(r.outside)).toEqual(outside);
    expect(fs.lstatSync(r.root + '/etc/motd').isFile()).toBe(true);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe('welcome\n');
  });

  it('a dangling planted link on a first build does not create a file outside', () => {
    fs.mkdirSync(r.root + '/etc', { recursive: true });
    fs.symlinkSync(path.join(r.outside, 'created-by-jail'), r.root + '/etc/hostname');
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(fs.existsSync(path.join(r.outside, 'created-by-jail'))).toBe(false);
    expect(fs.readFileSync(r.root + '/etc/hostname', 'utf8')).toBe('jail\n');
  });

  it('breaks a hard link between an output and a file outside', () => {
    make();
    fs.unlinkSync(r.root + '/etc/a.conf');
    fs.linkSync(path.join(r.outside, 'victim'), r.root + '/etc/a.conf');
    const outside = treeBytes(r.outside);
    expect(make('-q').code).toBe(1);
    const res = make();
    expect(res.stdout).toMatch(/update \/etc\/a\.conf \(file\): output is hard-linked \(2 names share its inode\)/);
    expect(treeBytes(r.outside)).toEqual(outside);
    expect(fs.statSync(path.join(r.outside, 'victim')).nlink).toBe(1);
    expect(fs.readFileSync(r.root + '/etc/a.conf', 'utf8')).toBe('alpha\n');
  });

  it('replaces a FIFO where a file should be, without hanging', () => {
    make();
    fs.unlinkSync(r.root + '/etc/a.conf');
    expect(spawnSync('mkfifo', [r.root + '/etc/a.conf']).status).toBe(0);
    fs.unlinkSync(r.root + '/etc/motd');
    expect(spawnSync('mkfifo', [r.root + '/etc/motd']).status).toBe(0);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/update \/etc\/a\.conf \(file\): output is a FIFO, declared a regular file/);
    expect(fs.lstatSync(r.root + '/etc/a.conf').isFile()).toBe(true);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe('welcome\n');
  });

  it('prunes through a planted directory link without deleting what it points to', () => {
    r.jailfile(JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log']), copy(SRC + '/tree', { to: '/srv/tree' }),"));
    fs.mkdirSync(path.join(r.src, 'tree'));
    fs.writeFileSync(path.join(r.src, 'tree', 'victim'), 'x');
    make();
    // The attacker swaps the built directory for a link to a host directory holding a same-named file.
    fs.rmSync(r.root + '/srv/tree', { recursive: true });
    fs.symlinkSync(r.outside, r.root + '/srv/tree');
    const outside = treeBytes(r.outside);
    r.jailfile(JAILFILE);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(treeBytes(r.outside)).toEqual(outside);
    expect(fs.existsSync(path.join(r.outside, 'victim'))).toBe(true);
  });

  it('entries planted under names that are not UTF-8 are removed with a directory jail replaces, and kept with a warning by clean', () => {
    expect(make().code).toBe(0);
    // Names as bytes: a string path would be encoded as UTF-8 and never make these.
    const at = (p: string, ...bytes: number[]) => Buffer.concat([Buffer.from(r.root + p), Buffer.from(bytes)]);
    fs.unlinkSync(r.root + '/etc/motd');
    fs.mkdirSync(at('/etc/motd/d', 0xfe), { recursive: true });
    fs.writeFileSync(at('/etc/motd/f', 0xff), 'planted\n');
    fs.writeFileSync(Buffer.concat([at('/etc/motd/d', 0xfe), Buffer.from('/g')]), 'planted\n');
    let res = make();
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(changes(res.stdout)).toEqual(['update /etc/motd (text): output is a directory, declared a regular file']);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe('welcome\n');

    fs.writeFileSync(at('/var/log/x', 0xff), 'a service\'s\n');
    res = make('clean');
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/warning: kept \/var\/log: clean removes what jail built, but it holds files jail did not create/);
    expect(fs.readdirSync(Buffer.from(r.root + '/var/log'), { encoding: 'buffer' })).toEqual([Buffer.from([0x78, 0xff])]);
    expect(fs.readFileSync(at('/var/log/x', 0xff), 'utf8')).toBe('a service\'s\n');
    expect(fs.existsSync(r.root + '/etc/motd')).toBe(false);
  });

  it('keeps the manifest outside ROOT, and leaves nothing of its own inside', () => {
    make();
    const stateFiles = fs.readdirSync(path.join(r.dir, '.jail'));
    expect(stateFiles.some((f) => f.endsWith('.json'))).toBe(true);
    expect([...fingerprint(r.root).keys()].sort()).toEqual(['/etc', '/etc/a.conf', '/etc/hostname', '/etc/motd', '/var', '/var/log']);
  });
});

describe('sources and ROOT', () => {
  const secret = () => path.join(r.outside, 'etc', 'shadow');

  it('refuses a ROOT inside a copied tree, however either is spelled, before reading or writing anything', () => {
    // The QA's case: the site is copied with follow, and the jail was put inside the site.
    fs.mkdirSync(path.join(r.src, 'site'));
    fs.writeFileSync(path.join(r.src, 'site', 'index.html'), 'hi\n');
    r.jailfile(`import { defineJail, copy } from 'jail';\nexport default defineJail(({ SRC }) => [\n  copy(SRC + '/site', { to: '/var/www', follow: true, mode: 0o644 }),\n]);\n`);
    const inside = path.join(r.src, 'site', 'jail');
    const alias = path.join(r.outside, 'alias');
    fs.symlinkSync(r.src, alias);
    for (const [root, src] of [[inside, r.src], [path.join(alias, 'site', 'jail'), r.src], [inside, alias]] as const) {
      const res = r.jail('make', `ROOT=${root}`, `SRC=${src}`);
      expect(res.code, root).toBe(2);
      expect(res.stderr).toMatch(/jail: error: jailfile\.ts:3: copy\(.*\): the source .*\/site .*holds ROOT \(ROOT=.*\/jail\): a build would read back what it wrote into the jail/);
      expect(changes(res.stdout)).toEqual([]);
      expect(fs.existsSync(inside)).toBe(false);
    }
    // Without follow the jail copied itself into itself on every run; the source as ROOT itself, or inside it, too.
    r.jailfile(`import { defineJail, copy } from 'jail';\nexport default defineJail(({ SRC }) => [\n  copy(SRC, { to: '/srv' }),\n]);\n`);
    for (const [root, src] of [[r.src, r.src], [r.src, path.join(r.src, 'site')], [path.join(r.src, 'site'), r.src]]) {
      for (const args of [[], ['-n'], ['-q'], ['-k']]) {
        const res = r.jail('make', `ROOT=${root}`, `SRC=${src}`, ...args);
        expect(res.code, `${root} ${src} ${args}`).toBe(2);
        expect(res.stderr).toMatch(/(is ROOT itself|lies inside ROOT|holds ROOT)/);
      }
    }
    expect(fs.readdirSync(path.join(r.src, 'site'))).toEqual(['index.html']);
  });

  it('never follows a link of a copied tree into the jail, where a planted link leads to a host secret', () => {
    fs.mkdirSync(path.join(r.src, 'site'));
    fs.writeFileSync(path.join(r.src, 'site', 'index.html'), 'hi\n');
    r.jailfile(`import { defineJail, copy, dir } from 'jail';\nexport default defineJail(({ SRC }) => [\n  dir('/var/www/uploads', { mode: 0o777 }),\n  copy(SRC + '/site', { to: '/srv/site', follow: true, mode: 0o644 }),\n]);\n`);
    expect(make().code).toBe(0);
    // The site's author links the jail's uploads into the site; the jail plants a link to the host's shadow there.
    fs.symlinkSync(r.root + '/var/www/uploads', path.join(r.src, 'site', 'uploads'));
    fs.symlinkSync(secret(), r.root + '/var/www/uploads/avatar.png');
    const before = fingerprint(r.root);
    for (const args of [[], ['-k']]) {
      const res = make(...args);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/jailfile\.ts:4: copy\(.*\): .*\/site\/uploads is a symlink to .*\/root\/var\/www\/uploads, which lies inside ROOT .*with follow: true the copy would read from the jail/);
    }
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    expect(fs.existsSync(r.root + '/srv/site/uploads')).toBe(false);
  });

  it('refuses an install input, a jailfile module and a FROM= pack inside ROOT, and runs nothing from there', () => {
    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    // An input that holds ROOT would change with every build, and one inside it is the jail's to change.
    for (const input of [path.dirname(r.root), r.root + '/etc']) {
      r.jailfile(`import { defineJail, install, dir } from 'jail';\nexport default defineJail(() => [\n  dir('/etc'),\n  install('app', { inputs: [${JSON.stringify(input)}], run: ['/bin/true'] }),\n]);\n`);
      const res = make();
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/jailfile\.ts:4: install\("app"\): the input .* (holds|lies inside) ROOT/);
    }
    // A module planted in the jail would run as root when the jailfile is loaded.
    fs.writeFileSync(r.root + '/etc/evil.ts', `import fs from 'node:fs';\nfs.writeFileSync(${JSON.stringify(path.join(r.outside, 'ran'))}, 'ran');\nexport const x = 1;\n`);
    r.jailfile(`import { defineJail, dir } from 'jail';\nimport { x } from '../root/etc/evil.ts';\nexport default defineJail(() => [dir('/etc'), x && dir('/var')]);\n`);
    let res = make();
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/imports the module .*\/root\/etc\/evil\.ts lies inside ROOT/);
    expect(fs.existsSync(path.join(r.outside, 'ran'))).toBe(false);
    fs.rmSync(r.root + '/etc/evil.ts');
    r.jailfile(JAILFILE);
    fs.writeFileSync(r.root + '/etc/jail.tar', 'planted');
    res = make('rebuild', `FROM=${r.root}/etc/jail.tar`);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/The pack FROM= .*\/etc\/jail\.tar lies inside ROOT/);
    fs.rmSync(r.root + '/etc/jail.tar');
    expect(touched(before, fingerprint(r.root))).toEqual([]);
  });
});

describe('crashes and concurrency', () => {
  // -j 4: the copies run on copy threads beside the main thread; default here (a disk): on the main thread.
  for (const jobs of [[], ['-j', '4']]) it(`a first build killed with SIGKILL leaves no half file under a final name, and converges${jobs.length ? ' (copy threads)' : ''}`, async () => {
    const many = path.join(r.src, 'many');
    fs.mkdirSync(many);
    const big = Buffer.alloc(256 * 1024, 7);
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(many, `f${i}`), i % 50 === 0 ? big : `file ${i}\n`);
    r.jailfile(JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log']), copy(SRC + '/many', { to: '/data' }),"));

    const child = r.jailAsync('make', `ROOT=${r.root}`, `SRC=${r.src}`, ...jobs);
    // Kill it once it is well into the copies.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        const n = fs.existsSync(r.root + '/data') ? fs.readdirSync(r.root + '/data').length : 0;
        if (n > 300) { clearInterval(poll); child.kill('SIGKILL'); resolve(); }
      }, 5);
    });
    await new Promise((resolve) => child.on('exit', resolve));

    // Whatever has a final name holds the whole source.
    let finals = 0;
    for (const name of fs.readdirSync(r.root + '/data')) {
      if (name.startsWith('.jail-tmp')) continue;
      finals++;
      expect(fs.readFileSync(path.join(r.root, 'data', name)).equals(fs.readFileSync(path.join(many, name)))).toBe(true);
    }
    expect(finals).toBeGreaterThan(0);
    expect(finals).toBeLessThan(3000);
    // The killed build left its mark beside the record: check says so.
    const checked = r.jail('check', `ROOT=${r.root}`, `SRC=${r.src}`);
    expect(checked.stdout + checked.stderr).toMatch(/the last build of this ROOT did not finish/);

    const res = make(...jobs);
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readdirSync(r.root + '/data').filter((n) => n.startsWith('.jail-tmp'))).toEqual([]);
    expect(fs.readdirSync(r.root + '/data').length).toBe(3000);
    // Files the killed build finished were adopted, not copied again.
    expect(changes(res.stdout).filter((l) => l.startsWith('create /data/')).length).toBeLessThanOrEqual(3000 - finals + 2);
    const again = make();
    expect(changes(again.stdout)).toEqual([]);
    expect(make('-q').code).toBe(0);
    expect(r.jail('check', `ROOT=${r.root}`, `SRC=${r.src}`).stdout).not.toMatch(/did not finish/);
    expect(fs.readdirSync(path.join(r.dir, '.jail')).filter((f) => f.endsWith('.building'))).toEqual([]);
  });

  it('a build killed while updating an existing jail leaves the record whole, and the next build sweeps', async () => {
    const many = path.join(r.src, 'many');
    fs.mkdirSync(many);
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(many, `f${i}`), `file ${i}\n`);
    r.jailfile(JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log']), copy(SRC + '/many', { to: '/data' }),"));
    expect(make().code).toBe(0);
    const record = fs.readdirSync(path.join(r.dir, '.jail')).find((f) => f.endsWith('.json'))!;
    const before = fs.readFileSync(path.join(r.dir, '.jail', record), 'utf8');
    const big = Buffer.alloc(16 * 1024, 9);
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(many, `f${i}`), big);

    const child = r.jailAsync('make', `ROOT=${r.root}`, `SRC=${r.src}`);
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        const n = fs.readdirSync(r.root + '/data').filter((f) => fs.statSync(path.join(r.root, 'data', f), { throwIfNoEntry: false })?.size === big.length).length;
        if (n > 300) { clearInterval(poll); child.kill('SIGKILL'); resolve(); }
      }, 5);
    });
    await new Promise((resolve) => child.on('exit', resolve));

    // The record is the last finished build's, byte for byte; the mark says this one did not finish.
    expect(fs.readFileSync(path.join(r.dir, '.jail', record), 'utf8')).toBe(before);
    expect(fs.readdirSync(path.join(r.dir, '.jail')).filter((f) => f.endsWith('.building'))).toHaveLength(1);
    const checked = r.jail('check', `ROOT=${r.root}`, `SRC=${r.src}`);
    expect(checked.stdout + checked.stderr).toMatch(/the last build of this ROOT did not finish/);

    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readdirSync(r.root + '/data').filter((n) => n.startsWith('.jail-tmp'))).toEqual([]);
    for (const name of ['f0', 'f1499', 'f2999']) expect(fs.readFileSync(path.join(r.root, 'data', name)).equals(big)).toBe(true);
    expect(fs.readdirSync(path.join(r.dir, '.jail')).filter((f) => f.endsWith('.building'))).toEqual([]);
    expect(changes(make().stdout)).toEqual([]);
  });

  it('two makes at once: the second waits, and the jail ends consistent', async () => {
    const many = path.join(r.src, 'many');
    fs.mkdirSync(many);
    for (let i = 0; i < 1500; i++) fs.writeFileSync(path.join(many, `f${i}`), `file ${i}\n`);
    r.jailfile(JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log']), copy(SRC + '/many', { to: '/data' }),"));
    const run = () => new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const c = r.jailAsync('make', `ROOT=${r.root}`, `SRC=${r.src}`);
      let out = '', err = '';
      c.stdout!.on('data', (d) => (out += d));
      c.stderr!.on('data', (d) => (err += d));
      c.on('exit', (code) => resolve({ code, out, err }));
    });
    const [a, b] = await Promise.all([run(), run()]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(a.err + b.err).toMatch(/waiting for another build of this ROOT/);
    const createdTwice = changes(a.out).filter((l) => l.startsWith('create')).length + changes(b.out).filter((l) => l.startsWith('create')).length;
    expect(createdTwice).toBe(1500 + 7); // one build created everything (1500 files, 6 declared paths, /data), the other found it done
    expect(make('-q').code).toBe(0);
  });
});

describe('one ROOT, two install directories', () => {
  const other = () => path.join(path.dirname(r.dir), 'install2');
  const makeIn = (cwd: string, ...args: string[]) => {
    const p = spawnSync(process.execPath, [CLI, 'make', `ROOT=${r.root}`, `SRC=${r.src}`, ...args], { cwd, encoding: 'utf8' });
    return { code: p.status, stdout: p.stdout, stderr: p.stderr };
  };

  it('a build of the same ROOT from another jailfile directory waits for the first, then is refused: ROOT is the first one\'s', async () => {
    const many = path.join(r.src, 'many');
    fs.mkdirSync(many);
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(many, `f${i}`), `file ${i}\n`);
    const jailfile = JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log']), copy(SRC + '/many', { to: '/data' }),");
    r.jailfile(jailfile);
    const second = other();
    fs.mkdirSync(second);
    fs.writeFileSync(path.join(second, 'jailfile.ts'), jailfile);
    const run = (cwd: string) => {
      const c = spawn(process.execPath, [CLI, 'make', `ROOT=${r.root}`, `SRC=${r.src}`, '-j', '1'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      c.stdout!.on('data', (d) => (out += d));
      c.stderr!.on('data', (d) => (err += d));
      return new Promise<{ code: number | null; out: string; err: string }>((resolve) => c.on('exit', (code) => resolve({ code, out, err })));
    };
    const first = run(r.dir);
    // The second starts once the first is writing into ROOT.
    const t0 = Date.now();
    while (!fs.existsSync(path.join(r.root, 'data')) && Date.now() - t0 < 20_000) await new Promise((res) => setTimeout(res, 5));
    expect(fs.existsSync(path.join(r.root, 'data'))).toBe(true);
    const [a, b] = await Promise.all([first, run(second)]);
    expect(a.code, a.err).toBe(0);
    expect(b.err).toMatch(/waiting for another build of this ROOT \(pid \d+\) to finish/);
    expect(b.code, b.err).toBe(2);
    expect(b.err).toContain(`jail: error: ROOT=${r.root} is built from another jailfile directory, ${r.dir} (its build record ${r.dir}/.jail/`);
    expect(changes(b.out)).toEqual([]);
    expect(changes(a.out).filter((l) => l.startsWith('create')).length).toBe(3000 + 7);
    const names = fs.readdirSync(path.join(r.root, 'data'));
    expect(names.length).toBe(3000);
    for (const n of names) expect(fs.readFileSync(path.join(r.root, 'data', n), 'utf8')).toBe(`file ${n.slice(1)}\n`);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe('welcome\n');
    expect(makeIn(r.dir, '-q').code).toBe(0);
    expect(makeIn(second, '-q').code).toBe(2);
    // The host-wide lock is gone with the builds, and was never put in ROOT.
    expect(fs.readdirSync('/run/jail-build').filter((f) => f.includes(rootKey(r.root)) && f.endsWith('.lock'))).toEqual([]);
    expect(fs.readdirSync(r.root).sort()).toEqual(['data', 'etc', 'var']);
  });

  it('one directory hands ROOT to another by clean, and a directory moved away leaves it to the next', () => {
    const second = other();
    fs.mkdirSync(second);
    // The QA's case: the first directory built /srv/old; the second does not declare it.
    r.jailfile(JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log']), text('/srv/old', 'old\\n'),"));
    fs.writeFileSync(path.join(second, 'jailfile.ts'), JAILFILE.replace("text('/etc/motd', 'welcome\\n')", "text('/etc/motd', 'second\\n')"));
    expect(makeIn(r.dir).code).toBe(0);
    const before = fingerprint(r.root);
    for (const args of [[], ['-n'], ['-q'], ['clean']]) {
      const res = makeIn(second, ...args);
      expect(res.code, `${args}`).toBe(2);
      expect(res.stderr).toMatch(/is built from another jailfile directory, .*\/install \(its build record .*\)\. Each directory records what it put in ROOT and removes only that/);
      expect(res.stderr).toContain(`\`jail make -C ${r.dir} ROOT=${r.root} clean\``);
    }
    expect(touched(before, fingerprint(r.root))).toEqual([]);
    // Emptied from the first, ROOT is the second's; a service's log, kept by clean, does not hold it back.
    fs.writeFileSync(r.root + '/var/log/access.log', 'GET /\n');
    expect(makeIn(r.dir, 'clean').code).toBe(0);
    let res = makeIn(second);
    expect(res.code, res.stderr).toBe(0);
    expect(fs.existsSync(r.root + '/srv/old')).toBe(false);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe('second\n');
    res = makeIn(r.dir);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`is built from another jailfile directory, ${second} `);
    // The second directory moved away with its record: ROOT is nobody's, and the first may build it again.
    fs.renameSync(second, second + '-moved');
    res = makeIn(r.dir);
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe('welcome\n');
    expect(makeIn(second + '-moved', '-q').code).toBe(2);
  });
});

describe('mounts inside ROOT', () => {
  it('a directory planted where a file is declared, 25,000 levels deep, is removed and the file restored', () => {
    make();
    fs.unlinkSync(r.root + '/etc/motd');
    fs.mkdirSync(r.root + '/etc/motd');
    fs.writeFileSync(r.root + '/etc/motd/top', 'x');
    let fd = fs.openSync(r.root + '/etc/motd', 'r');
    for (let i = 0; i < 25_000; i++) {
      fs.mkdirSync(`/proc/self/fd/${fd}/d`);
      if (i % 5000 === 0) fs.writeFileSync(`/proc/self/fd/${fd}/f`, 'x');
      const next = fs.openSync(`/proc/self/fd/${fd}/d`, 'r');
      fs.closeSync(fd);
      fd = next;
    }
    fs.closeSync(fd);
    // A branch deeper than the descriptors removal keeps open, off the long one.
    fs.mkdirSync(r.root + '/etc/motd' + '/d'.repeat(100) + '/e'.repeat(100), { recursive: true });
    fs.symlinkSync(r.outside, r.root + '/etc/motd' + '/d'.repeat(100) + '/e'.repeat(100) + '/out');
    const outside = treeBytes(r.outside);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toEqual(['update /etc/motd (text): output is a directory, declared a regular file']);
    expect(fs.readFileSync(r.root + '/etc/motd', 'utf8')).toBe('welcome\n');
    expect(treeBytes(r.outside)).toEqual(outside);
    expect(make('-q').code).toBe(0);
  }, 180_000);

  it('never deletes through a bind mount beneath a ROOT whose path goes through a symlink', () => {
    const base = path.dirname(r.root);
    fs.mkdirSync(path.join(base, 'real', 'jail'), { recursive: true });
    fs.symlinkSync('real', path.join(base, 'lnk'));
    const root = path.join(base, 'lnk', 'jail');
    const mnt = path.join(base, 'real', 'jail', 'etc', 'motd', 'x');
    expect(r.jail('make', `ROOT=${root}`, `SRC=${r.src}`).code).toBe(0);
    fs.unlinkSync(path.join(root, 'etc', 'motd'));
    fs.mkdirSync(mnt, { recursive: true });
    expect(spawnSync('mount', ['--bind', r.outside, mnt]).status).toBe(0);
    try {
      const outside = treeBytes(r.outside);
      const res = r.jail('make', `ROOT=${root}`, `SRC=${r.src}`);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/\/etc\/motd\/x in ROOT is a mount point .* Unmount/);
      expect(treeBytes(r.outside)).toEqual(outside);
      expect(fs.existsSync(path.join(r.outside, 'victim'))).toBe(true);
    } finally {
      spawnSync('umount', [mnt]);
    }
    const res = r.jail('make', `ROOT=${root}`, `SRC=${r.src}`);
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readFileSync(path.join(root, 'etc', 'motd'), 'utf8')).toBe('welcome\n');
  });

  it('clean and pruning never delete inside a filesystem mounted in ROOT', () => {
    r.jailfile(JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log', '/mnt/data']),"));
    make();
    expect(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', r.root + '/mnt/data']).status).toBe(0);
    try {
      fs.writeFileSync(r.root + '/mnt/data/precious', 'keep me');
      r.jailfile(JAILFILE);
      let res = make();
      expect(fs.readFileSync(r.root + '/mnt/data/precious', 'utf8')).toBe('keep me');
      expect(res.stderr).toMatch(/\/mnt\/data in ROOT is a mount point/);
      res = make('clean');
      expect(fs.readFileSync(r.root + '/mnt/data/precious', 'utf8')).toBe('keep me');
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/mount point .* Unmount/);
    } finally {
      spawnSync('umount', [r.root + '/mnt/data']);
    }
  });

  it('removes what jail made inside a filesystem mounted in ROOT, holding it on that filesystem', () => {
    fs.mkdirSync(r.root + '/mnt/data', { recursive: true });
    expect(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', r.root + '/mnt/data']).status).toBe(0);
    try {
      r.jailfile(JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log', '/mnt/data', '/mnt/data/d']), text('/mnt/data/x', 'x\\n'), link('/mnt/data/l', 'x'),").replace('copy, text }', 'copy, text, link }'));
      expect(make().code).toBe(0);
      fs.writeFileSync(r.root + '/mnt/data/precious', 'keep me');
      const before = fingerprint(r.root);
      r.jailfile(JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log', '/mnt/data']),"));
      const res = make();
      expect(res.code, res.stderr).toBe(0);
      expect(changes(res.stdout)).toEqual(['remove /mnt/data/d (dir): no longer declared', 'remove /mnt/data/l (symlink): no longer declared', 'remove /mnt/data/x (text): no longer declared']);
      expect(touched(before, fingerprint(r.root))).toEqual(['/mnt/data/d', '/mnt/data/l', '/mnt/data/x']);
      expect(fs.readFileSync(r.root + '/mnt/data/precious', 'utf8')).toBe('keep me');
      expect(make('-q').code).toBe(0);
    } finally {
      spawnSync('umount', [r.root + '/mnt/data']);
    }
  });

  it('refuses to replace a mount point that a target now names as a file', () => {
    r.jailfile(JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log', '/mnt/data']),"));
    make();
    expect(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', r.root + '/mnt/data']).status).toBe(0);
    try {
      fs.writeFileSync(r.root + '/mnt/data/precious', 'keep me');
      r.jailfile(JAILFILE.replace("dir(['/etc', '/var/log']),", "dir(['/etc', '/var/log']), text('/mnt/data', 'x'),"));
      const res = make();
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/mount point/);
      expect(fs.readFileSync(r.root + '/mnt/data/precious', 'utf8')).toBe('keep me');
    } finally {
      spawnSync('umount', [r.root + '/mnt/data']);
    }
  });
});

describe('the build lock', () => {
  // A build killed with -9 leaves its lock behind; the next builds take it over. Waiting
  // builds that looked at the dead lock at the same moment used to unlink each other's
  // fresh lock by name, and two ran at once.
  it('a dead build\'s lock is taken over by one waiting build at a time, never two', async () => {
    const locker = path.join(r.dir, 'locker.mjs');
    const log = path.join(r.dir, 'log');
    fs.writeFileSync(locker, `
import fs from 'node:fs';
const { acquireLock } = await import(${JSON.stringify(path.join(REPO, 'dist', 'tasks', 'manifest.js'))});
const { lock: runLock } = await import(${JSON.stringify(path.join(REPO, 'dist', 'tasks', 'run', 'state.js'))});
const [dir, root, log, which] = process.argv.slice(2);
const lock = which === 'run' ? await runLock(root) : await acquireLock(dir, root, { waitMs: 60000, onWait: () => {} });
if ('code' in lock) process.exit(3);
fs.appendFileSync(log, 'in ' + process.pid + '\\n');
await new Promise((r) => setTimeout(r, 60));
fs.appendFileSync(log, 'out ' + process.pid + '\\n');
lock.release();
`);
    const { rootKey, stateDir } = await import('../tasks/manifest.js');
    const { jailDir } = await import('../tasks/run/state.js');
    const { spawn } = await import('node:child_process');
    // The build's lock, and the one boot, stop and run take per ROOT (the network's is the same code).
    for (const [which, file] of [['build', path.join(stateDir(r.dir), `${rootKey(r.root)}.lock`)], ['run', path.join(jailDir(r.root), 'lock')]] as const) for (let round = 0; round < 4; round++) {
      // A dead owner: a pid no process has (above the kernel's pid_max).
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, '4194305');
      fs.rmSync(log, { force: true });
      const runs = Array.from({ length: 6 }, () => spawn(process.execPath, [locker, r.dir, r.root, log, which], { stdio: 'ignore' }));
      const codes = await Promise.all(runs.map((c) => new Promise<number | null>((resolve) => c.on('exit', resolve))));
      expect(codes).toEqual([0, 0, 0, 0, 0, 0]);
      const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(12);
      for (let i = 0; i < lines.length; i += 2) expect([lines[i]!.split(' ')[0], lines[i + 1]]).toEqual(['in', lines[i]!.replace('in', 'out')]);
    }
  });
});

describe('a process in the jail racing the build', () => {
  // The attacker: on each new temporary name in DIR, renames a planted hard link of a file
  // outside ROOT over it, hoping the build sets owner or mode by that name. Says "swap" per hit.
  const RACER = `
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
int main(int c, char **v) {
  int n = 0, fd = inotify_init();
  inotify_add_watch(fd, v[1], IN_CREATE);
  printf("ready\\n"); fflush(stdout);
  char buf[65536];
  for (;;) {
    int len = read(fd, buf, sizeof buf);
    if (len <= 0) return 0;
    for (char *p = buf; p < buf + len;) {
      struct inotify_event *e = (void *)p; p += sizeof(*e) + e->len;
      if (!e->len || strncmp(e->name, ".jail-tmp.", 10)) continue;
      char a[4096], b[4096];
      snprintf(a, sizeof a, "%s/hl%d", v[2], n); snprintf(b, sizeof b, "%s/%s", v[1], e->name);
      if (rename(a, b) == 0) { n++; printf("swap\\n"); fflush(stdout); }
    }
  }
}`;

  const racer = (watch: string, links: string) => {
    const bin = path.join(r.dir, 'racer');
    if (!fs.existsSync(bin)) {
      fs.writeFileSync(bin + '.c', RACER);
      expect(spawnSync('gcc', ['-O2', '-o', bin, bin + '.c'], { encoding: 'utf8' }).status).toBe(0);
    }
    const child = spawn(bin, [watch, links], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const ready = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    return { ready, swaps: () => out.split('\n').filter((l) => l === 'swap').length, stop: () => child.kill() };
  };

  const outsideState = (f: string) => { const st = fs.statSync(f); return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${fs.readFileSync(f, 'utf8')}`; };

  // Builds until the racer has swapped a few temporary names (bounded), asserting after each that the outside file is untouched.
  const race = async (watch: string, remake: () => void) => {
    const secret = path.join(r.outside, 'secret');
    fs.writeFileSync(secret, 'secret\n');
    fs.chownSync(secret, 1234, 1234);
    fs.chmodSync(secret, 0o600);
    const before = outsideState(secret);
    const links = path.join(r.root, 'hls');
    fs.mkdirSync(links);
    const rc = racer(watch, links);
    try {
      await rc.ready;
      for (let build = 0; build < 30 && rc.swaps() < 3; build++) {
        for (let i = 0; i < 400; i++) if (!fs.existsSync(`${links}/hl${i}`)) fs.linkSync(secret, `${links}/hl${i}`);
        remake();
        const res = make();
        await new Promise((resolve) => setTimeout(resolve, 20)); // the racer's output
        expect(outsideState(secret)).toBe(before);
        if (res.code !== 0) expect(res.stderr).toMatch(/was swapped while jail was writing it/);
      }
      expect(rc.swaps()).toBeGreaterThanOrEqual(3);
    } finally {
      rc.stop();
    }
    expect(outsideState(secret)).toBe(before);
    fs.rmSync(links, { recursive: true });
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    return res;
  };

  it('a hard link to a file outside renamed over a new device node is never chowned or chmodded', async () => {
    r.jailfile(`
import { defineJail, dir, device } from 'jail';
export default defineJail(() => [
  dir('/dev'),
  device('/dev/null', { type: 'c', major: 1, minor: 3, mode: 0o666, owner: '33:33' }),
  device('/dev/zero', { type: 'c', major: 1, minor: 5, mode: 0o640, owner: '33:0' }),
]);
`);
    expect(make().code).toBe(0);
    await race(r.root + '/dev', () => { fs.rmSync(r.root + '/dev/null', { force: true }); fs.rmSync(r.root + '/dev/zero', { force: true }); });
    const st = fs.lstatSync(r.root + '/dev/null');
    expect([st.isCharacterDevice(), st.rdev, st.nlink, st.uid, st.gid, st.mode & 0o7777]).toEqual([true, 259, 1, 33, 33, 0o666]);
    const z = fs.lstatSync(r.root + '/dev/zero');
    expect([z.isCharacterDevice(), z.rdev, z.uid, z.gid, z.mode & 0o7777]).toEqual([true, 261, 33, 0, 0o640]);
  });

  it('a file of its own renamed over a big copy\'s temporary name is never made root\'s or setuid', async () => {
    // Above 256 KiB a copy is not read whole: one file copied on the main thread, one on libuv's pool.
    fs.writeFileSync(path.join(r.src, 'mid'), Buffer.alloc(600 * 1024, 7));
    fs.writeFileSync(path.join(r.src, 'big'), Buffer.alloc(3 * 1024 * 1024, 9));
    r.jailfile(`
import { defineJail, dir, copy } from 'jail';
export default defineJail(({ SRC }) => [
  dir('/opt/svc', { owner: '1234:1234' }),
  copy(SRC + '/mid', { to: '/opt/svc/mid', mode: 0o4755, setuid: true }),
  copy(SRC + '/big', { to: '/opt/svc/big', mode: 0o4755, setuid: true }),
]);
`);
    expect(make().code).toBe(0);
    const svc = r.root + '/opt/svc';
    const hls = path.join(svc, 'own');
    fs.mkdirSync(hls);
    fs.chownSync(hls, 1234, 1234);
    const rc = racer(svc, hls);
    const judge = () => {
      for (const n of ['mid', 'big']) {
        const f = `${svc}/${n}`;
        if (!fs.existsSync(f)) continue;
        const st = fs.lstatSync(f);
        // The declared file as declared, or the jail's own file left as the jail made it.
        if (fs.readFileSync(f).equals(fs.readFileSync(path.join(r.src, n)))) expect([st.uid, st.mode & 0o7777]).toEqual([0, 0o4755]);
        else expect([st.uid, st.mode & 0o6000], n).toEqual([1234, 0]);
      }
    };
    try {
      await rc.ready;
      for (let build = 0; build < 30 && rc.swaps() < 3; build++) {
        // The jail's own files: fresh, one name each, its user's.
        for (let i = 0; i < 400; i++) {
          const f = `${hls}/hl${i}`;
          if (!fs.existsSync(f)) { fs.writeFileSync(f, 'the jail\'s own program\n', { mode: 0o755 }); fs.chownSync(f, 1234, 1234); }
        }
        fs.rmSync(`${svc}/mid`, { force: true });
        fs.rmSync(`${svc}/big`, { force: true });
        const res = make();
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (res.code !== 0) expect(res.stderr).toMatch(/was swapped while jail was writing it/);
        judge();
      }
      expect(rc.swaps()).toBeGreaterThanOrEqual(3);
    } finally {
      rc.stop();
    }
    fs.rmSync(hls, { recursive: true });
    expect(make().code).toBe(0);
    judge();
    expect(fs.readFileSync(`${svc}/big`).equals(fs.readFileSync(path.join(r.src, 'big')))).toBe(true);
  });

  it('a hard link to a file outside renamed over a new symlink is never chowned', async () => {
    const names = Array.from({ length: 200 }, (_, i) => `l${i}`);
    r.jailfile(`
import { defineJail, dir, link } from 'jail';
export default defineJail(() => [
  dir('/links'),
  ...${JSON.stringify(names)}.map((n) => link('/links/' + n, '../target', { owner: '33:33' })),
]);
`);
    expect(make().code).toBe(0);
    await race(r.root + '/links', () => { for (const n of names) fs.rmSync(`${r.root}/links/${n}`, { force: true }); });
    for (const n of names) {
      const st = fs.lstatSync(`${r.root}/links/${n}`);
      expect([st.isSymbolicLink(), fs.readlinkSync(`${r.root}/links/${n}`), st.nlink, st.uid, st.gid]).toEqual([true, '../target', 1, 33, 33]);
    }
  });
});

describe('a process in the jail racing a removal', () => {
  // The service: once the build starts removing in DIR (a name unlinked, or moved out), renames
  // each of its own files and empty directories in OWN over the same name in DIR, last name
  // first as the build removes, as fast as it can. Says "swap NAME" per rename. With
  // "retake", it then makes a new file at each name the build moves one of its own away
  // from ("retake NAME"), as a service that recreates a file it finds missing.
  const RACER = `
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
static int desc(const struct dirent **a, const struct dirent **b) { return strcmp((*b)->d_name, (*a)->d_name); }
int main(int c, char **v) {
  int fd = inotify_init();
  inotify_add_watch(fd, v[1], IN_DELETE | IN_MOVED_FROM);
  printf("ready\\n"); fflush(stdout);
  char buf[65536];
  if (read(fd, buf, sizeof buf) <= 0) return 1;
  struct dirent **names;
  int n = scandir(v[2], &names, NULL, desc);
  for (int i = 0; i < n; i++) {
    if (names[i]->d_name[0] == '.') continue;
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/%s", v[2], names[i]->d_name); snprintf(b, sizeof b, "%s/%s", v[1], names[i]->d_name);
    if (rename(a, b) == 0) printf("swap %s\\n", names[i]->d_name);
  }
  fflush(stdout);
  if (c < 4) return 0;
  for (;;) {
    int len = read(fd, buf, sizeof buf);
    if (len <= 0) return 0;
    for (char *p = buf; p < buf + len;) {
      struct inotify_event *e = (void *)p; p += sizeof(*e) + e->len;
      if (!e->len || !(e->mask & IN_MOVED_FROM) || e->name[0] == '.') continue;
      char b[4096];
      snprintf(b, sizeof b, "%s/%s", v[1], e->name);
      int f = open(b, O_WRONLY | O_CREAT | O_EXCL, 0644);
      if (f < 0) continue;
      dprintf(f, "retaken %s\\n", e->name); close(f);
      printf("retake %s\\n", e->name); fflush(stdout);
    }
  }
}`;

  const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
  const JAILFILE_Q = (files: string[], dirs: string[] = []) => `
import { defineJail, dir, text } from 'jail';
export default defineJail(() => [
  dir(['/srv', '/srv/q']),
  ...${JSON.stringify(files)}.map((n) => text('/srv/q/' + n, 'jail\\n')),
  ...${JSON.stringify(dirs)}.map((n) => dir('/srv/q/' + n)),
]);
`;
  const q = () => r.root + '/srv/q';
  const own = () => r.root + '/srv/own';

  /** Every inode beneath `dir`, with its kind and a file's bytes. */
  const inodes = (dir: string) => {
    const out = new Map<bigint, string>();
    const walk = (p: string) => {
      for (const name of fs.readdirSync(p)) {
        const st = fs.lstatSync(path.join(p, name), { bigint: true });
        out.set(st.ino, st.isDirectory() ? 'dir' : fs.readFileSync(path.join(p, name), 'utf8'));
        if (st.isDirectory()) walk(path.join(p, name));
      }
    };
    walk(dir);
    return out;
  };

  /** Builds `files` and `dirs` in /srv/q afresh, and gives the service one of its own for each name, in /srv/own. */
  const setUp = (files: string[], dirs: string[] = []) => {
    r.jailfile(JAILFILE_Q(files, dirs));
    for (const d of [q(), own()]) if (fs.existsSync(d)) for (const n of fs.readdirSync(d)) fs.rmSync(path.join(d, n), { recursive: true });
    const built = make();
    expect(built.code, built.stderr).toBe(0);
    fs.mkdirSync(own(), { recursive: true });
    for (const n of files) fs.writeFileSync(`${own()}/${n}`, `service ${n}\n`);
    for (const n of dirs) fs.mkdirSync(`${own()}/${n}`);
    return inodes(own());
  };

  const racer = async (...mode: string[]) => {
    const bin = path.join(r.dir, 'remove-racer');
    if (!fs.existsSync(bin)) {
      fs.writeFileSync(bin + '.c', RACER);
      expect(spawnSync('gcc', ['-O2', '-o', bin, bin + '.c'], { encoding: 'utf8' }).status).toBe(0);
    }
    const child = spawn(bin, [q(), own(), ...mode], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const lines = (word: string) => out.split('\n').filter((l) => l.startsWith(word + ' ')).map((l) => l.slice(word.length + 1));
    return {
      // Its burst is over once the build is (it printed as it went); a retaking racer is stopped.
      done: async () => {
        if (child.exitCode === null) await new Promise((resolve) => { child.on('exit', resolve); setTimeout(resolve, 1000); });
        child.kill();
        return { swapped: lines('swap'), retaken: lines('retake') };
      },
    };
  };

  for (const how of ['prune', 'clean']) it(`never deletes a service's file or directory renamed over a jail file as ${how} removes it`, async () => {
    const files = names('f', 200), dirs = names('d', 40);
    let swapped = 0, left = 0;
    for (let round = 0; round < 5; round++) {
      const theirs = setUp(files, dirs);
      const rc = await racer();
      if (how === 'prune') r.jailfile(JAILFILE_Q([]));
      const res = how === 'prune' ? make() : make('clean');
      const { swapped: swaps } = await rc.done();
      expect(res.code, res.stderr).toBe(0);
      swapped += swaps.length;
      // Every file and directory of the service's is still there, with its bytes; nothing of jail's is left in /srv/q.
      const now = inodes(r.root + '/srv');
      const lost = [...theirs].filter(([ino, what]) => now.get(ino) !== what);
      expect(lost.length, `round ${round}: ${lost.length} of the service's ${theirs.size} removed (${swaps.length} renamed in)`).toBe(0);
      for (const n of fs.readdirSync(q())) expect(theirs.has(fs.lstatSync(`${q()}/${n}`, { bigint: true }).ino), n).toBe(true);
      // What was left is said, as the plan says what it leaves, and is not jail's any more.
      const warned = res.stderr.split('\n').filter((l) => /warning: left \/srv\/q\//.test(l));
      for (const l of warned) expect(l).toMatch(new RegExp(`left /srv/q/[fd]\\d{3}: ${how === 'clean' ? 'clean removes it' : 'no longer declared'}, but it was replaced while jail was removing it \\(a service's file\\?\\)`));
      left += warned.length;
      const again = how === 'prune' ? make('-q') : make('clean', '-q');
      expect(again.code, again.stdout + again.stderr).toBe(0);
    }
    // The race was run: the service renamed its own over names the build had judged jail's.
    expect(swapped).toBeGreaterThan(500);
    expect(left).toBeGreaterThan(100);
  }, 180_000);

  // strace holds the build for 50 ms after each rename(2), so the racer has renamed its own
  // over every name before the build moves the next one into its holding directory, and for
  // 200 ms before each link(2), a put-back, so the racer has taken the name again by then.
  const slowed = ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename,link', '-e', 'inject=rename:delay_exit=50000', '-e', 'inject=link:delay_enter=200000'];

  it.skipIf(!hasStrace)('puts a service\'s file it moved beside its name when the name was taken again meanwhile, and deletes neither', async () => {
    const files = names('f', 12);
    const theirs = setUp(files);
    const rc = await racer('retake');
    r.jailfile(JAILFILE_Q([]));
    const res = spawnSync('strace', [...slowed, '--', process.execPath, CLI, 'make', `ROOT=${r.root}`], { cwd: r.dir, encoding: 'utf8' });
    const { swapped, retaken } = await rc.done();
    expect(res.status, res.stderr).toBe(0);
    expect(swapped.length).toBe(files.length);
    const now = inodes(r.root + '/srv');
    expect([...theirs].filter(([ino, what]) => now.get(ino) !== what)).toEqual([]);
    // Where the build had moved the service's file when the racer took the name again: the
    // name holds what the service made there last, its moved file is beside it, and the warning says where.
    const beside = [...res.stderr.matchAll(/left \/srv\/q\/(f\d{3}): no longer declared, but it was replaced while jail was removing it; its name was taken again meanwhile, so it was put beside it as (\/srv\/q\/\.jail-left\.\d+\.\d+) /g)];
    expect(beside.length).toBe(files.length - 1); // all but the first, which was jail's
    for (const [, n, at] of beside) {
      expect(retaken).toContain(n);
      expect(fs.readFileSync(`${q()}/${n}`, 'utf8')).toBe(`retaken ${n}\n`);
      expect(fs.readFileSync(r.root + at, 'utf8')).toBe(`service ${n}\n`);
    }
    // /srv, /srv/q, /srv/own, the service's files and what it made again: no holding directory is left.
    expect(fingerprint(r.root).size).toBe(3 + files.length + retaken.length);
    expect(make('-q').code).toBe(0);
  });

  it.skipIf(!hasStrace)('a build killed while it removes leaves its holding directory, which the next build sweeps', async () => {
    const files = names('f', 20);
    r.jailfile(JAILFILE_Q(files));
    expect(make().code).toBe(0);
    r.jailfile(JAILFILE_Q([]));
    // strace holds every unlink(2) for a second: the first file removed waits in the holding directory, and the build is killed there.
    const tracer = spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=unlink', '-e', 'inject=unlink:delay_enter=1000000', '--', process.execPath, CLI, 'make', `ROOT=${r.root}`], { cwd: r.dir, stdio: 'ignore' });
    const exited = new Promise((resolve) => tracer.on('exit', resolve));
    const held = await new Promise<string>((resolve, reject) => {
      const poll = setInterval(() => {
        const hold = fs.readdirSync(r.root).find((n) => n.startsWith('.jail-tmp.'));
        if (!hold || fs.readdirSync(`${r.root}/${hold}`).length === 0) return;
        clearInterval(poll);
        process.kill(Number(fs.readFileSync(`/proc/${tracer.pid}/task/${tracer.pid}/children`, 'utf8').trim()), 'SIGKILL');
        resolve(hold);
      }, 5);
      tracer.on('exit', () => { clearInterval(poll); reject(new Error('the build ended before it was killed')); });
    });
    await exited;
    // It held the one file it was removing, jail's own.
    expect(fs.readdirSync(`${r.root}/${held}`).map((n) => fs.readFileSync(`${r.root}/${held}/${n}`, 'utf8'))).toEqual(['jail\n']);
    expect(fs.readdirSync(q())).toHaveLength(files.length - 1);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(changes(res.stdout)).toHaveLength(files.length - 1);
    expect([...fingerprint(r.root).keys()].sort()).toEqual(['/srv', '/srv/q']);
    expect(make('-q').code).toBe(0);
  });
});

describe('a host source swapped during the build', () => {
  // Whoever owns a source directory acts the instant the build starts writing the copy
  // (its first temporary name in ROOT/srv/a), long before the last files are reached:
  // exchanges each pair of names (renameat2 RENAME_EXCHANGE: one step), or with `rm`
  // removes one. Says "swapped" when done.
  const SWAPPER = `
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/inotify.h>
int main(int c, char **v) {
  int fd = inotify_init();
  inotify_add_watch(fd, v[1], IN_CREATE);
  printf("ready\\n"); fflush(stdout);
  char buf[65536];
  for (;;) {
    if (read(fd, buf, sizeof buf) <= 0) return 1;
    struct inotify_event *e = (void *)buf;
    if (!e->len || strncmp(e->name, ".jail-tmp.", 10)) continue;
    int bad = 0;
    if (!strcmp(v[2], "rm")) bad |= unlink(v[3]);
    else for (int i = 2; i + 1 < c; i += 2) bad |= renameat2(AT_FDCWD, v[i], AT_FDCWD, v[i + 1], RENAME_EXCHANGE);
    printf(bad ? "failed\\n" : "swapped\\n"); fflush(stdout);
    return 0;
  }
}`;

  const SECRET = 'root:$6$secret:::\n';
  const shadow = () => path.join(r.outside, 'etc', 'shadow');
  let a: string;

  beforeEach(() => {
    a = path.join(r.src, 'a');
    fs.mkdirSync(a);
    for (let i = 1000; i < 3000; i++) fs.writeFileSync(`${a}/f${i}`, `v1 ${i}\n`);
    r.jailfile(`
import { defineJail, copy } from 'jail';
export default defineJail(({ SRC }) => [copy(SRC + '/a', { to: '/srv/a' })]);
`);
  });

  /** Builds with `args` while the swapper does `swap` to the sources; its output is returned with the build's. */
  const buildSwapping = async (swap: string[], ...args: string[]) => {
    const bin = path.join(r.dir, 'swapper');
    fs.writeFileSync(bin + '.c', SWAPPER);
    expect(spawnSync('gcc', ['-O2', '-o', bin, bin + '.c'], { encoding: 'utf8' }).status).toBe(0);
    // Made before the build (which keeps a real directory) so that it can be watched.
    fs.mkdirSync(r.root + '/srv/a', { recursive: true });
    const child = spawn(bin, [r.root + '/srv/a', ...swap], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const res = make(...args);
    await new Promise<void>((resolve) => (child.exitCode === null ? child.once('exit', () => resolve()) : resolve()));
    expect(out).toBe('ready\nswapped\n');
    return res;
  };

  /** Nothing of the host secret anywhere in ROOT, by bytes. */
  const noSecretInRoot = () => {
    for (const [p, v] of treeBytes(r.root)) expect(Buffer.from(v, 'base64').includes('$6$secret'), p).toBe(false);
  };

  for (const [how, args] of [['on the main thread', ['-j1']], ['on copy threads', ['-j4']]] as const) {
    it(`a small source swapped for a link to a host secret is refused, ${how}, and nothing is written for it`, async () => {
      fs.symlinkSync(shadow(), `${a}/.swap`);
      const res = await buildSwapping([`${a}/f2999`, `${a}/.swap`], ...args);
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toContain(`Could not create /srv/a/f2999 (copy("${r.src}/a") at jailfile.ts:3): `);
      expect(res.stderr).toContain(`the source ${a}/f2999 changed during the build (it is now a symlink); nothing was written at /srv/a/f2999. Run make again.`);
      expect(res.stderr).not.toMatch(/writing in|internal error/);
      expect(fs.existsSync(r.root + '/srv/a/f2999')).toBe(false);
      noSecretInRoot();
      // The owner puts the file back: the next build copies it.
      fs.renameSync(`${a}/.swap`, `${a}/f2999`);
      const again = make(...args);
      expect(again.code, again.stderr).toBe(0);
      expect(fs.readFileSync(r.root + '/srv/a/f2999', 'utf8')).toBe('v1 2999\n');
      noSecretInRoot();
    });
  }

  it('big sources swapped for links to a host secret are refused, on the main thread and on the pool', async () => {
    // Above 256 KiB a copy is not read whole; above 1 MiB it runs on libuv's pool.
    fs.writeFileSync(`${a}/f2998`, Buffer.alloc(600 * 1024, 7));
    fs.writeFileSync(`${a}/f2999`, Buffer.alloc(3 * 1024 * 1024, 9));
    fs.symlinkSync(shadow(), `${a}/.s1`);
    fs.symlinkSync(shadow(), `${a}/.s2`);
    const res = await buildSwapping([`${a}/f2998`, `${a}/.s1`, `${a}/f2999`, `${a}/.s2`], '-k', '-j1');
    expect(res.code, res.stderr).toBe(2);
    for (const n of ['f2998', 'f2999']) {
      expect(res.stderr).toContain(`the source ${a}/${n} changed during the build (it is now a symlink); nothing was written at /srv/a/${n}.`);
      expect(fs.existsSync(`${r.root}/srv/a/${n}`)).toBe(false);
    }
    noSecretInRoot();
  });

  it('a directory of a source path swapped for a link is refused by the file\'s identity', async () => {
    // O_NOFOLLOW covers the last name only: here the last name is a regular file, found
    // through a directory link to where the owner keeps a copy of the secret.
    fs.mkdirSync(`${a}/zz`);
    fs.writeFileSync(`${a}/zz/last`, 'mine\n');
    fs.mkdirSync(path.join(r.outside, 'evil'));
    fs.writeFileSync(path.join(r.outside, 'evil', 'last'), SECRET);
    fs.symlinkSync(path.join(r.outside, 'evil'), `${a}/.zz`);
    const res = await buildSwapping([`${a}/zz`, `${a}/.zz`], '-j1');
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain(`the source ${a}/zz/last changed during the build (it is now another file); nothing was written at /srv/a/zz/last.`);
    noSecretInRoot();
  });

  it('a source removed or replaced by a FIFO is blamed on the source, not on ROOT', async () => {
    const res = await buildSwapping(['rm', `${a}/f2999`], '-j1');
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain(`the source ${a}/f2999 changed during the build (it is gone); nothing was written at /srv/a/f2999. Run make again.`);
    expect(res.stderr).not.toMatch(/writing in|ENOENT/);
    fs.writeFileSync(`${a}/f2999`, 'back\n');
    fs.rmSync(r.root, { recursive: true });
    expect(spawnSync('mkfifo', [`${a}/.fifo`]).status).toBe(0);
    const fifo = await buildSwapping([`${a}/f2999`, `${a}/.fifo`], '-j1');
    expect(fifo.code, fifo.stderr).toBe(2);
    expect(fifo.stderr).toContain(`the source ${a}/f2999 changed during the build (it is now a FIFO); nothing was written at /srv/a/f2999.`);
    expect(fifo.stderr).not.toMatch(/writing in|ESPIPE/);
  });
});

describe('one cause, many writes', () => {
  it('a full filesystem under copy threads stops the build with one error and a count of the writes already under way', () => {
    const a = path.join(r.src, 'a');
    fs.mkdirSync(a);
    for (let i = 1000; i < 3000; i++) fs.writeFileSync(`${a}/f${i}`, `v1 ${i}\n`);
    r.jailfile(`
import { defineJail, copy } from 'jail';
export default defineJail(({ SRC }) => [copy(SRC + '/a', { to: '/srv/a' })]);
`);
    fs.mkdirSync(r.root);
    // Room for the directories and a few hundred files, not two thousand (cleanup unmounts it).
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,nr_inodes=300', 'tmpfs', r.root]).status).toBe(0);
    const res = make('-j4');
    expect(res.code).toBe(2);
    const lines = res.stderr.trim().split('\n');
    expect(lines, res.stderr).toHaveLength(2);
    expect(lines[0]).toMatch(/^jail: error: Could not create \/srv\/a\/f\d+ .*\(ENOSPC\)/);
    expect(lines[1]).toMatch(/^jail: error: \d+ more writes? failed the same way\.$/);
  });
});
