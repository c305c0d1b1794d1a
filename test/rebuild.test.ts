// Disaster recovery: after `rm -rf /` run inside the jail by the jail's own shell, the
// `rebuild` target gives back the same tree, copying only what was lost.

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { changes, fingerprint, rig, touched, tree, type Rig } from './helpers.js';

let r: Rig;

const SHELL_JAIL = `
import { defineJail, dir, text, copy, device, users } from 'jail';
import { layout, devices, shell, nss } from 'jail/recipes';
export default defineJail(({ SRC }) => [
  layout(),
  devices('null', 'zero', 'urandom'),
  users({ www: { uid: 80, gid: 80, home: '/var/www' } }),
  nss(),
  shell(),
  dir('/var/www', { owner: 'www' }),
  copy(SRC + '/site', { to: '/var/www/site' }),
  text('/etc/motd', 'welcome\\n', { mode: 0o640, owner: 'root:www' }),
]);
`;

beforeEach(() => {
  r = rig();
  fs.mkdirSync(path.join(r.src, 'site', 'img'), { recursive: true });
  fs.writeFileSync(path.join(r.src, 'site', 'index.html'), '<h1>hi</h1>\n');
  fs.writeFileSync(path.join(r.src, 'site', 'img', 'a.png'), Buffer.alloc(3000, 1));
  r.jailfile(SHELL_JAIL);
});
afterEach(() => r.cleanup());

const make = (...args: string[]) => r.jail('make', `ROOT=${r.root}`, `SRC=${r.src}`, ...args);

describe('rebuild', () => {
  it('restores the jail after rm -rf / run inside it, and the next make is a no-op', () => {
    expect(make().code).toBe(0);
    const good = tree(r.root);
    fs.writeFileSync(r.root + '/var/www/upload.txt', 'a visitor\'s upload'); // the service's own
    const rm = spawnSync('chroot', [r.root, '/bin/sh', '-c', 'rm -rf --no-preserve-root / 2>/dev/null; exit 0']);
    expect(rm.status).toBe(0);
    expect(fs.readdirSync(r.root).length).toBeLessThan(3); // the jail is gone, whatever rm could not remove aside
    expect(make('-q').code).toBe(1);
    const res = make('rebuild');
    expect(res.code, res.stderr).toBe(0);
    expect(tree(r.root)).toEqual(good);
    expect(changes(make().stdout)).toEqual([]);
    expect(make('-q').code).toBe(0);
  });

  it('copies only what was lost, and keeps files that survived', () => {
    expect(make().code).toBe(0);
    const before = fingerprint(r.root);
    fs.rmSync(r.root + '/var/www/site/img', { recursive: true });
    fs.unlinkSync(r.root + '/etc/passwd');
    const res = make('rebuild');
    expect(changes(res.stdout)).toEqual([
      'create /etc/passwd (text): output missing (deleted since the last build)',
      'create /var/www/site/img (dir): output missing (deleted since the last build)',
      'create /var/www/site/img/a.png (file): output missing (deleted since the last build)',
    ]);
    // (a recreated directory may get its old inode number back, so it need not show)
    expect(touched(before, fingerprint(r.root)).filter((p) => p !== '/var/www/site/img')).toEqual(['/etc/passwd', '/var/www/site/img/a.png']);
  });

  it('trusts no stamp: a file changed behind a forged record is found and replaced', () => {
    expect(make().code).toBe(0);
    // Forge the record: claim the edited file's new stamp is what was built.
    fs.writeFileSync(r.root + '/var/www/site/index.html', '<h1>defaced</h1>\n');
    const mfile = fs.readdirSync(path.join(r.dir, '.jail')).find((f) => f.endsWith('.json') && f !== 'elf-facts.json')!;
    const m = JSON.parse(fs.readFileSync(path.join(r.dir, '.jail', mfile), 'utf8'));
    const st = fs.lstatSync(r.root + '/var/www/site/index.html', { bigint: true });
    m.records['/var/www/site/index.html'].o = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    fs.writeFileSync(path.join(r.dir, '.jail', mfile), JSON.stringify(m));
    expect(changes(make().stdout)).toEqual([]); // stamps say all is well...
    const res = make('rebuild');
    expect(changes(res.stdout)).toEqual(['update /var/www/site/index.html (file): output content differs from what was built (found by verifying)']);
    expect(fs.readFileSync(r.root + '/var/www/site/index.html', 'utf8')).toBe('<h1>hi</h1>\n');
  });

  it('never deletes across a mount point inside ROOT', () => {
    r.jailfile(SHELL_JAIL.replace("dir('/var/www', { owner: 'www' }),", "dir('/var/www', { owner: 'www' }), dir('/mnt/data'),"));
    expect(make().code).toBe(0);
    expect(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', r.root + '/mnt/data']).status).toBe(0);
    try {
      fs.writeFileSync(r.root + '/mnt/data/precious', 'keep me');
      fs.rmSync(r.root + '/etc', { recursive: true });
      fs.symlinkSync('/etc', r.root + '/etc'); // and an attacker's link for good measure
      const res = make('rebuild');
      expect(res.code, res.stderr).toBe(0);
      expect(fs.readFileSync(r.root + '/mnt/data/precious', 'utf8')).toBe('keep me');
      expect(fs.lstatSync(r.root + '/etc').isDirectory()).toBe(true);
      expect(fs.readFileSync('/etc/hostname', 'utf8').length).toBeGreaterThan(0);
    } finally {
      spawnSync('umount', [r.root + '/mnt/data']);
    }
  });
});
