// The article's Apache jail, end to end with Debian's apache2: build the default
// jailfile, start the server the article's way (plain chroot), fetch the index page,
// and check where and as whom every apache process runs.

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changes, fingerprint, rig, touched, type Rig } from './helpers.js';

let r: Rig;
const PORT = String(20000 + (process.pid % 20000));
const ADDR = '127.0.0.1';
let site: string;

const make = (...args: string[]) =>
  r.jail('make', '-f', path.join(r.dir, 'jailfile.ts'), `ROOT=${r.root}`, `PORT=${PORT}`, `ADDR=${ADDR}`, 'HOSTNAME=www.example.test', `SITE=${site}`, ...args);
const inJail = (...argv: string[]) => execFileSync('chroot', [r.root, ...argv], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });

/** Processes whose root directory is ROOT. */
function jailProcesses(): { pid: number; uid: number; comm: string }[] {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readlinkSync(`/proc/${d}/root`) !== r.root) continue;
      const status = fs.readFileSync(`/proc/${d}/status`, 'utf8');
      out.push({ pid: Number(d), uid: Number(/^Uid:\s+(\d+)/m.exec(status)![1]), comm: fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() });
    } catch { /* gone */ }
  }
  return out;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(url);
      return { status: res.status, body: await res.text() };
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((ok) => setTimeout(ok, 100));
    }
  }
}

beforeAll(() => {
  r = rig();
  r.repoJailfile('jailfile.ts');
  site = path.join(r.src, 'site');
  fs.mkdirSync(site);
  fs.writeFileSync(path.join(site, 'index.html'), '<h1>served from the jail</h1>\n');
});
afterAll(() => {
  spawnSync('chroot', [r.root, '/usr/sbin/apache2', '-f', '/etc/apache2/apache2.conf', '-k', 'stop']);
  for (const p of jailProcesses()) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  r.cleanup();
});

describe('the default Apache jail', () => {
  it('builds, and a second make is a no-op', () => {
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/jail: \d+ created, 0 updated, 0 removed, 0 up to date/);
    const before = fingerprint(r.root);
    expect(changes(make().stdout)).toEqual([]);
    expect(touched(before, fingerprint(r.root))).toEqual([]);
  });

  it('serves its index page from a chrooted apache, workers as www-data', async () => {
    const start = spawnSync('chroot', [r.root, '/usr/sbin/apache2', '-f', '/etc/apache2/apache2.conf', '-k', 'start'], { encoding: 'utf8' });
    expect(start.status, start.stderr + start.stdout).toBe(0);
    const res = await get(`http://${ADDR}:${PORT}/`);
    expect(res.status).toBe(200);
    expect(res.body).toBe('<h1>served from the jail</h1>\n');
    const procs = jailProcesses().filter((p) => p.comm === 'apache2');
    expect(procs.length).toBeGreaterThanOrEqual(2);
    const pidfile = Number(fs.readFileSync(r.root + '/var/run/apache2/apache2.pid', 'utf8'));
    // Every apache process has ROOT as its root; the workers run as www-data (33).
    for (const p of procs) expect(fs.readlinkSync(`/proc/${p.pid}/root`)).toBe(r.root);
    const workers = procs.filter((p) => p.pid !== pidfile);
    expect(workers.length).toBeGreaterThan(0);
    for (const w of workers) expect(w.uid).toBe(33);
    expect(fs.readFileSync(r.root + '/var/log/apache2/access.log', 'utf8')).toMatch(/"GET \/ HTTP\/1\.1" 200/);

    const stop = spawnSync('chroot', [r.root, '/usr/sbin/apache2', '-f', '/etc/apache2/apache2.conf', '-k', 'stop'], { encoding: 'utf8' });
    expect(stop.status, stop.stderr).toBe(0);
    for (let i = 0; i < 50 && jailProcesses().length; i++) await new Promise((ok) => setTimeout(ok, 100));
    expect(jailProcesses()).toEqual([]);
  });

  it('answers id, getent and date inside the jail through its own files', () => {
    expect(inJail('/usr/bin/id', 'www-data')).toBe('uid=33(www-data) gid=33(www-data) groups=33(www-data)\n');
    expect(inJail('/usr/bin/getent', 'hosts', 'localhost')).toMatch(/^(127\.0\.0\.1|::1)\s+localhost/);
    expect(inJail('/usr/bin/getent', 'hosts', 'www.example.test')).toMatch(/^127\.0\.0\.1\s+localhost www\.example\.test/);
    expect(inJail('/usr/bin/date', '+%Z')).toBe('UTC\n');
    expect(inJail('/usr/bin/cat', '/etc/hostname')).toBe('www.example.test\n');
  });

  it('re-copies exactly the index page when it changes on the host', () => {
    const before = fingerprint(r.root);
    fs.writeFileSync(path.join(site, 'index.html'), '<h1>changed</h1>\n');
    const res = make();
    expect(changes(res.stdout)).toEqual(['update /var/www/html/index.html (file): source changed: content']);
    expect(touched(before, fingerprint(r.root))).toEqual(['/var/www/html/index.html']);
  });

  it('holds no setuid file, no world-writable directory but tmp, and only allowed devices', () => {
    const allowed = new Set(['1:3', '1:5', '1:7', '1:8', '1:9', '5:0', '5:1', '5:2']);
    for (const [p, f] of fingerprint(r.root)) {
      if (f.type === 'file') expect(f.mode & 0o6000, p).toBe(0);
      if (f.type === 'dir' && p !== '/tmp') expect(f.mode & 0o022, p).toBe(0);
      if (f.type === 'chr') {
        const major = Number((f.rdev >> 8n) & 0xfffn), minor = Number(f.rdev & 0xffn);
        expect(allowed.has(`${major}:${minor}`), p).toBe(true);
      }
      expect(f.type === 'other', p).toBe(false);
    }
    expect(fs.statSync(r.root + '/tmp').mode & 0o7777).toBe(0o1777);
  });
});

describe('disaster recovery of the Apache jail', () => {
  it('after rm -rf / inside the jail, rebuild brings it back and it serves its page again', async () => {
    const rm = spawnSync('chroot', [r.root, '/bin/sh', '-c', 'rm -rf --no-preserve-root / 2>/dev/null; exit 0']);
    expect(rm.status).toBe(0);
    expect(fs.existsSync(r.root + '/usr/sbin/apache2')).toBe(false);
    const res = make('rebuild');
    expect(res.code, res.stderr).toBe(0);
    expect(changes(make().stdout)).toEqual([]);
    const start = spawnSync('chroot', [r.root, '/usr/sbin/apache2', '-f', '/etc/apache2/apache2.conf', '-k', 'start'], { encoding: 'utf8' });
    expect(start.status, start.stderr).toBe(0);
    try {
      const page = await get(`http://${ADDR}:${PORT}/`);
      expect(page.status).toBe(200);
      expect(page.body).toBe('<h1>changed</h1>\n');
    } finally {
      spawnSync('chroot', [r.root, '/usr/sbin/apache2', '-f', '/etc/apache2/apache2.conf', '-k', 'stop']);
      for (let i = 0; i < 50 && jailProcesses().length; i++) await new Promise((ok) => setTimeout(ok, 100));
    }
  });
});

describe('recipes refuse what they must', () => {
  it('refuses devices("mem") with the reason, and a package that is not installed', () => {
    const t = rig();
    try {
      fs.writeFileSync(path.join(t.dir, 'jailfile.ts'), `import { defineJail } from 'jail';\nimport { devices } from 'jail/recipes';\nexport default defineJail(() => [\n  devices('null', 'mem'),\n]);\n`);
      let res = t.jail('make', `ROOT=${t.root}`);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/jailfile\.ts:4: devices\("mem"\) is refused: \/dev\/mem \(1:1\) gives a jailed process the host's memory/);
      fs.writeFileSync(path.join(t.dir, 'jailfile.ts'), `import { defineJail } from 'jail';\nimport { debianPackage } from 'jail/recipes';\nexport default defineJail(() => [\n  debianPackage('no-such-package-here'),\n]);\n`);
      res = t.jail('make', `ROOT=${t.root}`);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/the Debian package no-such-package-here is not installed on this host.*apt-get install no-such-package-here/);
      fs.writeFileSync(path.join(t.dir, 'jailfile.ts'), `import { defineJail } from 'jail';\nimport { devices } from 'jail/recipes';\nexport default defineJail(() => [\n  devices('mem', { dangerous: true }),\n]);\n`);
      res = t.jail('make', `ROOT=${t.root}`);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toMatch(/warning: .*dangerous device \(c 1:1\)/);
      expect(fs.statSync(t.root + '/dev/mem').rdev).toBe((1 << 8) | 1); // makedev(1, 1)
      expect(fs.existsSync(t.root)).toBe(true);
    } finally {
      t.cleanup();
    }
  });

  it('copies an installed Debian package with its ELF closures', () => {
    const t = rig();
    try {
      fs.writeFileSync(path.join(t.dir, 'jailfile.ts'), `import { defineJail } from 'jail';\nimport { debianPackage } from 'jail/recipes';\nexport default defineJail(() => [ debianPackage('apache2-utils') ]);\n`);
      const res = t.jail('make', `ROOT=${t.root}`);
      expect(res.code, res.stderr).toBe(0);
      for (const f of fs.readFileSync('/var/lib/dpkg/info/apache2-utils.list', 'utf8').split('\n')) {
        if (!f || f === '/.') continue;
        expect(fs.existsSync(t.root + f), f).toBe(true);
      }
      expect(execFileSync('chroot', [t.root, '/usr/bin/htpasswd', '-nbB', 'u', 'p'], { encoding: 'utf8' })).toMatch(/^u:\$2y\$/);
    } finally {
      t.cleanup();
    }
  });
});
