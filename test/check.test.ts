// `jail check` (issue #8): build a small jail, plant each kind of trouble in it the way an
// attacker or a careless admin would, and assert that the audit names every one (kind and
// path), stays silent on an untouched jail, honours allow(), and survives hostile trees
// (symlink loops, FIFOs where files belong, mounts inside ROOT) without writing anything.

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO, CLI, changes, fingerprint, rig, type Rig } from './helpers.js';
import { manifestPath } from '../tasks/manifest.js';

let r: Rig;
beforeEach(() => { r = rig(); r.jailfile(JAILFILE); });
afterEach(() => r.cleanup());

const JAILFILE = `
import { defineJail, elf, dir, text, users, device, allow } from 'jail';
export default defineJail(({ ALLOW }) => [
  elf('/bin/sh', '/usr/bin/ls'),
  dir(['/etc', '/srv', '/var/log']),
  dir('/tmp', { mode: 0o1777 }),
  device('/dev/null', { type: 'c', major: 1, minor: 3, mode: 0o666 }),
  device('/dev/urandom', { type: 'c', major: 1, minor: 9, mode: 0o666 }),
  text('/etc/motd', 'hello\\n'),
  users({
    www: { uid: 80, gid: 80, home: '/srv', shell: '/usr/sbin/nologin' },
    ops: { uid: 81, gid: 81, home: '/srv', shell: '/bin/sh' },
  }),
  ALLOW === 'setuid' && allow('setuid', '/usr/bin/ls-suid'),
  ALLOW === 'prefix' && allow('device', '/dev/*'),
]);`;

interface Found { kind: string; path: string; message: string; fix?: string }

const make = (...args: string[]) => r.jail('make', `ROOT=${r.root}`, ...args);
const check = (...args: string[]) => r.jail('check', `ROOT=${r.root}`, ...args);
function findings(...args: string[]): { code: number; found: Found[]; stderr: string } {
  const res = check('--json', ...args);
  expect(res.stderr).not.toMatch(/internal error/);
  return { code: res.code, found: (JSON.parse(res.stdout) as { findings: Found[] }).findings, stderr: res.stderr };
}
const has = (found: Found[], kind: string, p: string) => found.some((f) => f.kind === kind && f.path === p);
const pairs = (found: Found[]) => found.map((f) => `${f.kind} ${f.path}`);

/** Library closure of a program inside the jail, as jail deps sees it. */
function jailDeps(program: string): Record<string, string> {
  const out = execFileSync(process.execPath, [CLI, 'deps', '--json', '--root', r.root, program], { encoding: 'utf8' });
  return (JSON.parse(out) as Record<string, { libraries: Record<string, string> }>)[program]!.libraries;
}
/** The jail path of the file a jail path finally names, links resolved as inside the jail (absolute ones restart at ROOT). */
function realInJail(p: string): string {
  const todo = p.split('/').filter(Boolean).reverse();
  const cur: string[] = [];
  for (let hops = 0; todo.length > 0;) {
    const c = todo.pop()!;
    if (c === '.' || c === '..') { if (c === '..') cur.pop(); continue; }
    const st = fs.lstatSync(r.root + '/' + [...cur, c].join('/'));
    if (!st.isSymbolicLink()) { cur.push(c); continue; }
    if (++hops > 40) throw new Error(`link loop at ${p}`);
    const t = fs.readlinkSync(r.root + '/' + [...cur, c].join('/'));
    if (t.startsWith('/')) cur.length = 0;
    todo.push(...t.split('/').filter(Boolean).reverse());
  }
  return '/' + cur.join('/');
}

describe('jail check', () => {
  it('passes an untouched jail: exit 0, nothing reported, nothing written; check() gives the same from code', async () => {
    const built = make();
    expect(built.code, built.stderr).toBe(0);
    expect(built.stderr).not.toMatch(/finding/);
    const before = fingerprint(r.root);
    const res = check();
    expect(res.stdout.trim(), res.stderr).toBe('jail check: clean');
    expect(res.code).toBe(0);
    expect(findings()).toMatchObject({ code: 0, found: [] });
    expect(fingerprint(r.root)).toEqual(before);

    // The API: analyze() then check(); the cheap half looks at the declared targets only.
    execFileSync('mknod', [r.root + '/dev/port', 'c', '1', '4']);
    const api = (await import(path.join(REPO, 'dist', 'tasks', 'index.js'))) as typeof import('../tasks/index.js');
    const a = await api.analyze({ cwd: r.dir, vars: { ROOT: r.root } });
    expect(a.ok).toBe(true);
    const full = api.check(a);
    expect(full.ok && full.value.findings.map((f) => `${f.kind} ${f.path}`)).toEqual(['device /dev/port']);
    const cheap = api.check(a, { cheap: true });
    expect(cheap.ok && cheap.value.findings).toEqual([]);
  });

  it('reports every planted finding with its kind and path (exit 1), and writes nothing', () => {
    expect(make().code).toBe(0);
    const libs = jailDeps('/usr/bin/ls');
    const libc = realInJail(libs['libc.so.6']!);
    const removedName = Object.keys(libs).find((n) => n !== 'libc.so.6' && !n.startsWith('ld-linux')) ?? 'libc.so.6';
    const removed = realInJail(libs[removedName]!);
    const edited = removed === libc ? realInJail('/lib64/ld-linux-x86-64.so.2') : libc;

    // A setuid copy, a world-writable directory, /dev/mem, a /dev/null that is really mem.
    fs.copyFileSync(r.root + '/usr/bin/ls', r.root + '/usr/bin/ls-suid');
    fs.chmodSync(r.root + '/usr/bin/ls-suid', 0o4755);
    fs.mkdirSync(r.root + '/srv/drop');
    fs.chmodSync(r.root + '/srv/drop', 0o777);
    execFileSync('mknod', [r.root + '/dev/mem', 'c', '1', '1']);
    fs.unlinkSync(r.root + '/dev/null');
    execFileSync('mknod', ['-m', '666', r.root + '/dev/null', 'c', '1', '1']);
    // A hard link shared with a file outside ROOT.
    fs.writeFileSync(path.join(r.outside, 'secret'), 'host secret\n');
    fs.linkSync(path.join(r.outside, 'secret'), r.root + '/etc/secret');
    // An edited library, a library removed by hand, a new executable nobody declared.
    fs.appendFileSync(r.root + edited, Buffer.from([0]));
    fs.unlinkSync(r.root + removed);
    fs.writeFileSync(r.root + '/usr/bin/backdoor', '#!/bin/sh\nexec /bin/sh -i\n', { mode: 0o755 });
    // A link to the host's shadow, a second root, a password hash.
    fs.symlinkSync('/etc/shadow', r.root + '/etc/shadow-link');
    fs.appendFileSync(r.root + '/etc/passwd', 'toor:x:0:0:root:/root:/bin/sh\n');
    const shadow = fs.readFileSync(r.root + '/etc/shadow', 'utf8');
    fs.writeFileSync(r.root + '/etc/shadow', shadow.replace(/^www:\*:/m, 'www:$6$salt$0123456789abcdef:'));
    // A library directory handed to the service account, a chmod'ed file.
    fs.chownSync(r.root + '/usr/lib', 80, 80);
    fs.chmodSync(r.root + '/etc/motd', 0o600);
    // File capabilities, when this host can set them.
    const caps = spawnSync('setcap', ['cap_net_raw+ep', r.root + '/usr/bin/ls-suid']).status === 0;

    const before = fingerprint(r.root);
    const outside = fs.readFileSync(path.join(r.outside, 'secret'), 'utf8');
    const { code, found } = findings();
    expect(code).toBe(1);
    const expected = [
      'setuid /usr/bin/ls-suid',
      'world-writable /srv/drop',
      'device /dev/mem',
      'device /dev/null',
      'hardlink /etc/secret',
      `drift ${edited}`,
      `drift ${removed}`,
      'missing-library /usr/bin/ls',
      'drift /usr/bin/backdoor',
      'escape-symlink /etc/shadow-link',
      'accounts /etc/passwd',
      'accounts /etc/shadow',
      'world-writable /usr/lib',
      'drift /usr/lib',
      'drift /etc/motd',
    ];
    for (const e of expected) expect(pairs(found), e).toContain(e);
    const msg = (kind: string, p: string) => found.filter((f) => f.kind === kind && f.path === p).map((f) => f.message).join('\n');
    expect(msg('device', '/dev/null')).toMatch(/1:1.*not null \(1:3\)/);
    expect(msg('missing-library', '/usr/bin/ls')).toContain(removedName);
    expect(msg('missing-library', '/usr/bin/ls')).toMatch(/\/usr\/bin\/ls -> /);
    expect(msg('accounts', '/etc/passwd')).toMatch(/toor .*uid 0/);
    expect(msg('accounts', '/etc/shadow')).toMatch(/www .*password hash/);
    expect(msg('escape-symlink', '/etc/shadow-link')).toContain('/etc/shadow');
    expect(msg('drift', edited)).toMatch(/edited/);
    expect(msg('drift', removed)).toMatch(/deleted/);
    expect(msg('world-writable', '/usr/lib')).toMatch(/owned by www \(uid 80\)/);
    expect(msg('drift', '/etc/motd')).toMatch(/mode 0600 != built 0644/);
    if (caps) expect(msg('setuid', '/usr/bin/ls-suid')).toMatch(/capabilities \(cap_net_raw/);
    // Nothing clean was accused: the untouched programs, the sticky /tmp, /dev/urandom, ops's shell.
    for (const p of ['/tmp', '/dev/urandom', '/usr/bin/dash', '/etc/group']) expect(found.filter((f) => f.path === p)).toEqual([]);
    // Every finding says what to do.
    for (const f of found) expect(f.fix, `${f.kind} ${f.path}`).toMatch(/\w/);
    // Commands in the advice name the host's path, ROOT included, and work as printed.
    const fix = (kind: string, p: string) => found.find((f) => f.kind === kind && f.path === p && f.fix?.includes(r.root))?.fix;
    expect(fix('world-writable', '/srv/drop')).toMatch(new RegExp(`^chmod go-w ${r.root}/srv/drop \\(or declare its mode\\)`));
    expect(fix('world-writable', '/usr/lib')).toContain(`chown root:root ${r.root}/usr/lib)`);
    if (caps) expect(fix('setuid', '/usr/bin/ls-suid')).toContain(`setcap -r ${r.root}/usr/bin/ls-suid`);

    // The human form: one line per finding, then the count.
    const human = check();
    expect(human.code).toBe(1);
    const lines = human.stdout.trim().split('\n');
    expect(lines.at(-1)).toBe(`jail check: ${found.length} findings`);
    expect(lines).toHaveLength(found.length + 1);
    expect(lines).toContain(lines.find((l) => l.startsWith('setuid /usr/bin/ls-suid: ')));
    expect(lines.some((l) => /^device \/dev\/mem: .*1:1/.test(l))).toBe(true);

    // An audit: nothing in ROOT or outside it was changed.
    expect(fingerprint(r.root)).toEqual(before);
    expect(fs.readFileSync(path.join(r.outside, 'secret'), 'utf8')).toBe(outside);

    // make repairs what it owns; what remains is what no target declares.
    expect(make().code).toBe(0);
    const after = findings().found;
    expect(has(after, 'missing-library', '/usr/bin/ls')).toBe(false);
    expect(has(after, 'device', '/dev/null')).toBe(false);
    expect(has(after, 'drift', edited)).toBe(false);
    expect(has(after, 'device', '/dev/mem')).toBe(true);
  });

  it('reads uid and gid fields as the jail\'s libc does: +0, " 0", -0 are root, and a field that is not plain digits is a finding of its own', () => {
    expect(make().code).toBe(0);
    fs.appendFileSync(r.root + '/etc/passwd', 'svc:x:+0:1000::/:/bin/sh\nweb:x: 0:1001::/:/bin/sh\nneg:x:-0:1002::/:/bin/sh\n' +
      'big:x:4294967296:1003::/:/bin/sh\nwrap:x:-18446744073709551615:1004::/:/usr/sbin/nologin\n');
    fs.appendFileSync(r.root + '/etc/group', 'wheel:x:\t0:\n');
    const { code, found } = findings();
    expect(code).toBe(1);
    const accounts = found.filter((f) => f.kind === 'accounts').map((f) => `${f.path} ${f.message}`);
    // Three more roots, each also named for how it is written; the libc reads -18446744073709551615 as 1 and skips 4294967296.
    const passwd = fs.readFileSync(r.root + '/etc/passwd', 'utf8').split('\n');
    for (const [name, text] of [['svc', '"+0"'], ['web', '" 0"'], ['neg', '"-0"']]) {
      const line = passwd.findIndex((l) => l.startsWith(name + ':')) + 1;
      expect(accounts).toContain(`/etc/passwd account ${name} (line ${line}) has uid 0 (written ${text}, which the jail's libc reads as 0): a second root account, and whoever runs as it owns the jail (and can escape it)`);
      expect(accounts.some((m) => m.includes(`account ${name} `) && m.includes(`uid field ${text}, which is not plain digits: the jail's libc reads it as 0 (root)`))).toBe(true);
    }
    expect(accounts.some((m) => /account big .*uid field "4294967296", above the largest id \(4294967295\): the jail's libc skips the whole line/.test(m))).toBe(true);
    expect(accounts.some((m) => /account wrap .*uid field "-18446744073709551615", which is not plain digits: the jail's libc reads it as 1,/.test(m))).toBe(true);
    expect(accounts.some((m) => /account (big|wrap) .*has uid 0/.test(m))).toBe(false);
    expect(accounts.some((m) => m.startsWith('/etc/group group wheel ') && m.includes('gid field "\\t0", which is not plain digits: the jail\'s libc reads it as 0 (group root)'))).toBe(true);

    // run names the line rather than saying the account is not there.
    const run = r.jail('run', `ROOT=${r.root}`, '--user', 'svc', '--', '/bin/sh', '-c', 'true');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`The jail's etc/passwd has a line for svc, but its uid field "+0" is not a plain number (the jail's libc reads it as 0)`);
    expect(run.stderr).not.toMatch(/No user svc/);
  });

  it('a planted etc/ld.so.preload is drift naming what it loads, and so is an ELF file or #! script no target declares outside data() directories', () => {
    r.jailfile(`
import { defineJail, elf, dir, text, users, data } from 'jail';
export default defineJail(({ PRELOAD }) => [
  elf('/bin/sh'),
  dir(['/etc', '/srv']),
  users({ toy: { uid: 90, gid: 90, home: '/var/toy', shell: '/usr/sbin/nologin' } }),
  data('/var/toy', { owner: 'toy' }),
  PRELOAD === 'yes' && text('/etc/ld.so.preload', ''),
]);`);
    expect(make().code).toBe(0);
    expect(findings()).toMatchObject({ code: 0, found: [] });
    const lib = fs.realpathSync('/usr/lib/x86_64-linux-gnu/libz.so.1');
    fs.copyFileSync(lib, r.root + '/srv/libhid.so');
    fs.writeFileSync(r.root + '/etc/ld.so.preload', '/srv/libhid.so # every program\n/srv/other.so\n');
    fs.writeFileSync(r.root + '/srv/run.sh', '#!/bin/sh\nexec /bin/sh -i\n', { mode: 0o755 });
    // Not drift: a plain file, a #! file nobody can execute, and what the service writes in its data() directory.
    fs.writeFileSync(r.root + '/srv/notes.txt', 'notes\n');
    fs.writeFileSync(r.root + '/srv/draft.sh', '#!/bin/sh\n', { mode: 0o644 });
    fs.mkdirSync(r.root + '/var/toy/cgi');
    fs.writeFileSync(r.root + '/var/toy/cgi/hello.cgi', '#!/bin/sh\necho hello\n', { mode: 0o755 });
    fs.copyFileSync(lib, r.root + '/var/toy/cgi/libtoy.so');
    fs.chownSync(r.root + '/var/toy/cgi', 90, 90);
    fs.chownSync(r.root + '/var/toy/cgi/hello.cgi', 90, 90);
    const { code, found } = findings();
    expect(code).toBe(1);
    expect(pairs(found).filter((p) => p.startsWith('drift ')).sort()).toEqual(['drift /etc/ld.so.preload', 'drift /srv/libhid.so', 'drift /srv/run.sh']);
    const preload = found.find((f) => f.path === '/etc/ld.so.preload')!;
    expect(preload.message).toBe('exists and no target declares it (it names /srv/libhid.so, /srv/other.so): the loader loads every library it names ' +
      'into every program of the jail, before the program\'s own, so whoever wrote it runs code in every process');
    expect(found.find((f) => f.path === '/srv/run.sh')!.message).toMatch(/^is an executable #! script \(for \/bin\/sh\) \(mode 0755\) that no target declares, outside every data\(\) directory/);
    expect(found.find((f) => f.path === '/srv/libhid.so')!.message).toMatch(/^is an ELF file \(mode 0644\)/);

    // A preload the jailfile declares is the author's: not drift while it holds what was built.
    expect(make('PRELOAD=yes').code).toBe(0);
    expect(pairs(findings('PRELOAD=yes').found).filter((p) => p.startsWith('drift '))).toEqual(['drift /srv/libhid.so', 'drift /srv/run.sh']);
  });

  it('a data() directory and what its service writes there are not world-writable findings; a program beneath a sticky /tmp is not either; a group\'s write bit names who can use it', () => {
    // A program built under a host /tmp path lands beneath the jail's sticky /tmp.
    fs.writeFileSync(path.join(r.src, 'tool.c'), 'int main(void) { return 0; }\n');
    execFileSync('gcc', ['-o', path.join(r.src, 'tool'), path.join(r.src, 'tool.c')]);
    const tool = path.join(r.src, 'tool');
    expect(tool.startsWith('/tmp/')).toBe(true);
    r.jailfile(`
import { defineJail, elf, dir, users, data } from 'jail';
export default defineJail(() => [
  elf('/bin/sh', ${JSON.stringify(tool)}),
  dir('/tmp', { mode: 0o1777 }),
  users({
    toy: { uid: 90, gid: 90, home: '/var/toy', shell: '/usr/sbin/nologin' },
    ops: { uid: 91, gid: 91, home: '/', shell: '/usr/sbin/nologin' },
  }),
  data('/var/toy', { owner: 'toy' }),
]);`);
    expect(make().code).toBe(0);
    // The service writes its own CGI directory and script, as the README's layout has it.
    fs.mkdirSync(r.root + '/var/toy/cgi');
    fs.writeFileSync(r.root + '/var/toy/cgi/hello.cgi', '#!/bin/sh\necho hello\n', { mode: 0o755 });
    fs.chownSync(r.root + '/var/toy/cgi', 90, 90);
    fs.chownSync(r.root + '/var/toy/cgi/hello.cgi', 90, 90);
    const clean = check();
    expect(clean.stdout, clean.stderr).toBe('jail check: clean\n');
    expect(clean.code).toBe(0);

    // A library group root may write: only gid 0 can, which no service account of the jail has.
    const libc = realInJail(jailDeps(tool)['libc.so.6']!);
    fs.chmodSync(r.root + libc, 0o775);
    const group = findings().found.filter((f) => f.kind === 'world-writable');
    expect(group.map((f) => `${f.path}: ${f.message}`)).toEqual([
      `${libc}: file is writable by group root (mode 0775): no account of the jail but root is in group root, so only a process that gains gid 0 (a setgid program, say) can change it`,
    ]);
    // ops put in group root by the jail's etc/group is named.
    fs.writeFileSync(r.root + '/etc/group', fs.readFileSync(r.root + '/etc/group', 'utf8').replace(/^root:x:0:$/m, 'root:x:0:ops'));
    expect(findings().found.find((f) => f.kind === 'world-writable' && f.path === libc)?.message).toMatch(/: ops \(of group root\) can change it$/);
    expect(make().code).toBe(0);

    // The sticky /tmp still guards nothing once an entry on the program's way is a service's.
    const first = '/' + tool.split('/')[1] + '/' + tool.split('/')[2];
    fs.chownSync(r.root + first, 91, 91);
    const exposed = findings().found.filter((f) => f.kind === 'world-writable').map((f) => f.path);
    expect(exposed).toEqual(['/tmp', first]);
  });

  it('allow() silences exactly the finding it names; a /* path accepts a kind beneath a directory; --json has the documented shape', () => {
    expect(make().code).toBe(0);
    fs.copyFileSync(r.root + '/usr/bin/ls', r.root + '/usr/bin/ls-suid');
    fs.chmodSync(r.root + '/usr/bin/ls-suid', 0o4755);
    fs.copyFileSync(r.root + '/usr/bin/ls', r.root + '/usr/bin/ls-sgid');
    fs.chmodSync(r.root + '/usr/bin/ls-sgid', 0o2755);
    execFileSync('mknod', [r.root + '/dev/mem', 'c', '1', '1']);

    const res = check('--json');
    expect(res.code).toBe(1);
    const doc = JSON.parse(res.stdout) as { findings: Found[] };
    expect(Object.keys(doc)).toEqual(['findings', 'vars']);
    for (const f of doc.findings) {
      expect(Object.keys(f).slice(0, 3)).toEqual(['kind', 'path', 'message']);
      for (const k of ['kind', 'path', 'message'] as const) expect(typeof f[k]).toBe('string');
    }
    expect(doc.findings.find((f) => f.path === '/dev/mem')?.message).toMatch(/1:1.*mem/);

    const plain = pairs(doc.findings);
    expect(plain).toEqual(expect.arrayContaining(['setuid /usr/bin/ls-suid', 'setuid /usr/bin/ls-sgid', 'device /dev/mem', 'drift /usr/bin/ls-suid']));

    const allowed = findings('ALLOW=setuid');
    expect(allowed.code).toBe(1);
    expect(pairs(allowed.found).sort()).toEqual(plain.filter((p) => p !== 'setuid /usr/bin/ls-suid').sort());
    expect(check('ALLOW=setuid').stdout).toMatch(/findings \(1 accepted by allow\(\)\)\n$/);

    const prefix = findings('ALLOW=prefix');
    expect(pairs(prefix.found).sort()).toEqual(plain.filter((p) => p !== 'device /dev/mem').sort());
  });

  it('a symlink loop, FIFOs where files belong and a missing interpreter neither hang nor crash the walk', () => {
    expect(make().code).toBe(0);
    const libc = realInJail(jailDeps('/usr/bin/ls')['libc.so.6']!);
    const interp = realInJail('/lib64/ld-linux-x86-64.so.2');
    fs.unlinkSync(r.root + interp);
    fs.symlinkSync('loop-b', r.root + '/srv/loop-a');
    fs.symlinkSync('loop-a', r.root + '/srv/loop-b');
    fs.symlinkSync('.', r.root + '/srv/self');
    fs.symlinkSync('self/self/self/../../../../..', r.root + '/srv/climb');
    // FIFOs where the check would read: the account files, an executable, a library.
    for (const p of ['/etc/passwd', '/etc/shadow', '/usr/bin/fifo']) {
      fs.rmSync(r.root + p, { force: true });
      execFileSync('mkfifo', ['-m', '755', r.root + p]);
    }
    fs.renameSync(r.root + libc, r.root + '/srv/libc.bak');
    execFileSync('mkfifo', [r.root + libc]);
    const t0 = Date.now();
    const res = spawnSync(process.execPath, [CLI, 'check', `ROOT=${r.root}`, '--json'], { cwd: r.dir, encoding: 'utf8', timeout: 30_000 });
    expect(res.signal, 'check hung').toBeNull();
    expect(res.status, res.stderr).toBe(1);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const found = (JSON.parse(res.stdout) as { findings: Found[] }).findings;
    expect(pairs(found)).toEqual(expect.arrayContaining([`drift ${libc}`, 'drift /etc/passwd', 'missing-library /usr/bin/ls', 'escape-symlink /srv/climb']));
    expect(has(found, 'escape-symlink', '/srv/loop-a')).toBe(false);
    expect(has(found, 'escape-symlink', '/srv/self')).toBe(false);
    expect(found.find((f) => f.kind === 'missing-interpreter' && f.path === '/usr/bin/dash')?.message).toMatch(/ld-linux/);
  });

  it('judges entries whose names are not UTF-8, and names each as a bad-name finding, escaped', () => {
    expect(make().code).toBe(0);
    // Names as bytes: a string path would be encoded as UTF-8 and never make these.
    const at = (...parts: (string | number[])[]) => Buffer.concat([Buffer.from(r.root), ...parts.map((p) => typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))]);
    fs.writeFileSync(at('/usr/bin/ok', [0xff]), '\x7fELF' + '\0'.repeat(60));
    fs.chmodSync(at('/usr/bin/ok', [0xff]), 0o4755);
    // An argument of execFileSync is UTF-8 text: the shell's printf makes the byte.
    execFileSync('sh', ['-c', 'mknod "$1/srv/m$(printf \'\\376\')" c 1 1', 'sh', r.root]);
    fs.mkdirSync(at('/srv/d', [0xc3, 0x28]));
    fs.writeFileSync(at('/srv/d', [0xc3, 0x28], '/w'), 'x');
    fs.chmodSync(at('/srv/d', [0xc3, 0x28], '/w'), 0o666);
    const { code, found } = findings();
    expect(code).toBe(1);
    // Each bad byte is carried as U+DC00 + byte, so the JSON path names exactly one file.
    expect(pairs(found).filter((f) => /[\udc80-\udcff]/.test(f)).sort()).toEqual([
      'bad-name /srv/d\udcc3(', 'bad-name /srv/m\udcfe', 'bad-name /usr/bin/ok\udcff',
      'device /srv/m\udcfe', 'drift /usr/bin/ok\udcff', 'setuid /usr/bin/ok\udcff', 'world-writable /srv/d\udcc3(/w',
    ]);
    const text = check();
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('setuid /usr/bin/ok\\xff: is setuid');
    expect(text.stdout).toContain('device /srv/m\\xfe: is a character device 1:1');
    expect(text.stdout).toMatch(/bad-name \/srv\/d\\xc3\(: its name is not valid UTF-8/);
    expect(text.stdout).not.toContain('\ufffd');
    expect(found.find((f) => f.kind === 'bad-name' && f.path === '/srv/m\udcfe')?.fix).toContain(`(ls -b ${r.root}/srv)`);
  });

  it('a #! script whose interpreter the jail lacks is a missing-interpreter finding; with the interpreter it is not', () => {
    r.jailfile(`
import { defineJail, elf, text } from 'jail';
import { layout } from 'jail/recipes';
export default defineJail(({ SH }) => [
  layout(),
  SH === 'yes' && elf('/bin/sh'),
  text('/etc/rc.d/50app.sh', '#!/bin/sh\\nexec /usr/sbin/app\\n', { mode: 0o755 }),
  text('/usr/local/bin/tool', '#! /usr/bin/env python3 -u\\nprint(1)\\n', { mode: 0o755 }),
  text('/etc/notes.sh', '#!/bin/zsh\\n'),
]);`);
    const scripts = (found: Found[]) => pairs(found.filter((f) => f.kind === 'missing-interpreter')).sort();
    expect(make('SH=no').code).toBe(0);
    const before = fingerprint(r.root);
    const bare = findings('SH=no');
    expect(bare.code).toBe(1);
    // The rc script and the env script; a file without an exec bit is no program.
    expect(scripts(bare.found)).toEqual(['missing-interpreter /etc/rc.d/50app.sh', 'missing-interpreter /usr/local/bin/tool']);
    const msg = (found: Found[], p: string) => found.find((f) => f.kind === 'missing-interpreter' && f.path === p)!;
    expect(msg(bare.found, '/etc/rc.d/50app.sh').message).toMatch(/#! interpreter \/bin\/sh is not in the jail/);
    expect(msg(bare.found, '/etc/rc.d/50app.sh').fix).toMatch(/elf\('\/bin\/sh'\)/);
    expect(msg(bare.found, '/usr/local/bin/tool').message).toMatch(/\/usr\/bin\/env is not in the jail/);
    expect(check('SH=no').stdout).toMatch(/^missing-interpreter \/etc\/rc\.d\/50app\.sh: /m);
    expect(fingerprint(r.root)).toEqual(before);

    // The jail writes the #! lines and the names: its advice is quoted as code, and its
    // control characters never reach the terminal nor start a forged line of their own.
    fs.writeFileSync(r.root + "/usr/local/bin/x", "#!/x'),copy('/etc/shadow'),elf('/y\n", { mode: 0o755 });
    fs.writeFileSync(r.root + '/usr/local/bin/evil\nsetuid forged: finding \x1b[31m', '#!/bin/\x1b[2J\n', { mode: 0o755 });
    const hostile = check('SH=no');
    expect(hostile.stdout).toContain(`add the interpreter with elf('/x\\'),copy(\\'/etc/shadow\\'),elf(\\'/y')`);
    expect(hostile.stdout).not.toMatch(/\x1b/);
    expect(hostile.stdout.split('\n').filter((l) => l.startsWith('setuid forged'))).toEqual([]);
    expect(hostile.stdout).toContain('evil\\x0asetuid forged: finding \\x1b[31m');
    // A right-to-left override cannot disguise a name, nor a backslash pass for an escape.
    fs.writeFileSync(r.root + '/usr/local/bin/a\u202egnp.sh', '#!/nowhere\n', { mode: 0o755 });
    fs.writeFileSync(r.root + '/usr/local/bin/b\\x1b[31m', '#!/nowhere\n', { mode: 0o755 });
    fs.chmodSync(r.root + '/usr/local/bin/b\\x1b[31m', 0o4755);
    const disguised = check('SH=no').stdout;
    expect(disguised).toContain('/usr/local/bin/a\\u202egnp.sh: ');
    expect(disguised).not.toContain('\u202e');
    expect(disguised).toContain('/usr/local/bin/b\\\\x1b[31m: ');
    // Its advice is a literal that names that very file, pasted into a jailfile.
    expect(disguised).toContain(`allow('setuid', '/usr/local/bin/b\\\\x1b[31m')`);
    fs.rmSync(r.root + '/usr/local/bin/a\u202egnp.sh');
    fs.rmSync(r.root + '/usr/local/bin/b\\x1b[31m');
    fs.rmSync(r.root + '/usr/local/bin/x');
    fs.rmSync(r.root + '/usr/local/bin/evil\nsetuid forged: finding \x1b[31m');

    // With /bin/sh (through the jail's /bin -> usr/bin and sh -> dash links) the rc script is fine.
    expect(make('SH=yes').code).toBe(0);
    expect(scripts(findings('SH=yes').found)).toEqual(['missing-interpreter /usr/local/bin/tool']);

    // Resolved inside the jail only: an absolute link restarts at ROOT and .. stops there, so a
    // link to the host's /bin/bash is missing here, while one to the jail's own dash is not.
    fs.mkdirSync(r.root + '/opt');
    fs.symlinkSync('/../../../../usr/bin/bash', r.root + '/opt/hostsh');
    fs.symlinkSync('/usr/bin/dash', r.root + '/opt/jailsh');
    fs.writeFileSync(r.root + '/opt/a.sh', '#!/opt/hostsh\n', { mode: 0o755 });
    fs.writeFileSync(r.root + '/opt/b.sh', '#!/opt/jailsh\n', { mode: 0o755 });
    // An interpreter that is there but cannot be run: no exec bit, a directory.
    fs.writeFileSync(r.root + '/opt/noexec', 'not a program\n', { mode: 0o644 });
    fs.writeFileSync(r.root + '/opt/c.sh', '#!/opt/noexec\n', { mode: 0o700 });
    fs.writeFileSync(r.root + '/opt/d.sh', '#!/opt\n', { mode: 0o755 });
    const planted = findings('SH=yes').found;
    expect(scripts(planted)).toEqual([
      'missing-interpreter /opt/a.sh', 'missing-interpreter /opt/c.sh', 'missing-interpreter /opt/d.sh', 'missing-interpreter /usr/local/bin/tool',
    ]);
    expect(msg(planted, '/opt/c.sh').message).toMatch(/\/opt\/noexec .*not an executable file/);
    expect(msg(planted, '/opt/d.sh').message).toMatch(/\/opt .*not an executable file/);
  });

  it('a #!/usr/bin/env script whose program is in no directory of the jail\'s PATH is a missing-interpreter finding', () => {
    r.jailfile(`
import { defineJail, elf, text } from 'jail';
export default defineJail(({ PERL }) => [
  elf('/usr/bin/env'),
  PERL === 'yes' && elf('/usr/bin/perl'),
  text('/usr/local/bin/report', '#!/usr/bin/env perl\\nprint 1;\\n', { mode: 0o755 }),
  text('/usr/local/bin/strict', '#!/usr/bin/env -S perl -w\\nprint 1;\\n', { mode: 0o755 }),
  text('/usr/local/bin/direct', '#!/usr/bin/env /usr/bin/perl\\n', { mode: 0o755 }),
  text('/usr/local/bin/gone', '#!/usr/bin/env no-such-interpreter\\n', { mode: 0o755 }),
]);`);
    const scripts = (found: Found[]) => pairs(found.filter((f) => f.kind === 'missing-interpreter')).sort();
    const msg = (found: Found[], p: string) => found.find((f) => f.kind === 'missing-interpreter' && f.path === p)!;
    expect(make('PERL=no').code).toBe(0);
    const bare = findings('PERL=no');
    expect(bare.code).toBe(1);
    expect(scripts(bare.found)).toEqual([
      'missing-interpreter /usr/local/bin/direct', 'missing-interpreter /usr/local/bin/gone',
      'missing-interpreter /usr/local/bin/report', 'missing-interpreter /usr/local/bin/strict',
    ]);
    expect(msg(bare.found, '/usr/local/bin/report').message).toBe(
      'its #! line has /usr/bin/env run perl, which is in no directory of the PATH jailed commands get ' +
      '(/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin): env cannot start it ("No such file or directory")');
    // What elf() would bring: the host's program found in the same PATH.
    expect(msg(bare.found, '/usr/local/bin/report').fix).toBe(`add the program with elf('/usr/bin/perl'), which brings its libraries, or remove the script`);
    expect(msg(bare.found, '/usr/local/bin/direct').message).toMatch(/run \/usr\/bin\/perl, which is not in the jail: env cannot start it/);
    expect(msg(bare.found, '/usr/local/bin/gone').fix).toBe('install no-such-interpreter on the host and add it with elf(), or remove the script');

    // With perl in the jail, only the script whose program is nowhere is left.
    expect(make('PERL=yes').code).toBe(0);
    expect(scripts(findings('PERL=yes').found)).toEqual(['missing-interpreter /usr/local/bin/gone']);
    // Looked up inside the jail only, links resolved as there: one to the jail's own perl
    // counts, one that would lead to a host program (absolute, restarting at ROOT) does not.
    fs.symlinkSync('/../../../../usr/bin/perl', r.root + '/usr/local/bin/no-such-interpreter');
    expect(scripts(findings('PERL=yes').found)).toEqual([]);
    const hostProg = path.join(r.src, 'hostprog');
    fs.writeFileSync(hostProg, '#!/bin/sh\n', { mode: 0o755 });
    fs.rmSync(r.root + '/usr/local/bin/no-such-interpreter');
    fs.symlinkSync('/../../../../..' + hostProg, r.root + '/usr/local/bin/no-such-interpreter');
    expect(scripts(findings('PERL=yes').found)).toEqual(['missing-interpreter /usr/local/bin/gone']);
  });

  it('does not cross into a mount inside ROOT, even one of the same filesystem', () => {
    expect(make().code).toBe(0);
    // A bind mount of a directory beside ROOT (same st_dev) holding a setuid file and a device.
    fs.writeFileSync(path.join(r.outside, 'suid'), 'x', { mode: 0o4755 });
    fs.chmodSync(path.join(r.outside, 'suid'), 0o4755);
    execFileSync('mknod', [path.join(r.outside, 'mem'), 'c', '1', '1']);
    fs.mkdirSync(r.root + '/srv/bound');
    fs.mkdirSync(r.root + '/proc');
    execFileSync('mount', ['--bind', r.outside, r.root + '/srv/bound']);
    execFileSync('mount', ['-t', 'proc', 'proc', r.root + '/proc']);
    try {
      const res = findings();
      expect(res.found.filter((f) => f.path.startsWith('/srv/bound') || f.path.startsWith('/proc/'))).toEqual([]);
      expect(res.stderr).toMatch(/not checked \(mount points.*\/proc/);
    } finally {
      spawnSync('umount', [r.root + '/proc']);
      spawnSync('umount', [r.root + '/srv/bound']);
    }
  });

  it('judges the jail make built: variables not given are those of the last make, one given wins; make itself takes none from it', () => {
    // passwd (setuid) is in the jail, and its reviewed finding accepted, only when built with PASSWD=yes.
    r.jailfile(`
import { defineJail, elf, dir, text, allow } from 'jail';
export default defineJail(({ PASSWD = 'no', MOTD = 'hello' }) => [
  elf('/bin/sh'),
  dir('/etc'),
  text('/etc/motd', MOTD + '\\n'),
  PASSWD === 'yes' && [elf('/usr/bin/passwd', { setuid: true }), allow('setuid', '/usr/bin/passwd')],
]);`);
    const built = make('PASSWD=yes', 'MOTD=welcome to the jail');
    expect(built.code, built.stderr).toBe(0);
    expect(built.stderr).not.toMatch(/finding/);
    const before = fingerprint(r.root);

    const plain = check();
    expect(plain.stderr).toBe('');
    expect(plain.stdout).toBe("jail check: clean (1 accepted by allow()) (variables from the last make: PASSWD=yes 'MOTD=welcome to the jail')\n");
    expect(plain.code).toBe(0);
    const json = check('--json');
    expect(JSON.parse(json.stdout)).toEqual({ findings: [], vars: { PASSWD: 'yes', MOTD: 'welcome to the jail' } });
    expect(json.code).toBe(0);

    // Another value on the command line is the jail it describes: passwd's setuid bit is a finding again.
    const other = findings('PASSWD=no');
    expect(other.code).toBe(1);
    expect(pairs(other.found)).toEqual(['setuid /usr/bin/passwd']);
    expect(check('PASSWD=no').stdout).toMatch(/^jail check: 1 finding \(variables from the last make: 'MOTD=welcome to the jail'\)$/m);
    expect(fingerprint(r.root)).toEqual(before);

    // A make with other variables records those; a make without them builds the jailfile's defaults, as make does.
    expect(make('PASSWD=yes', 'MOTD=hi').code).toBe(0);
    expect(check().stdout).toMatch(/\(variables from the last make: PASSWD=yes MOTD=hi\)\n$/);
    // A group or a path is not the whole jail: the variables of the last full make stay recorded.
    expect(make('MOTD=only motd', '/etc/motd').code).toBe(0);
    expect(check().stdout).toMatch(/\(variables from the last make: PASSWD=yes MOTD=hi\)\n$/);
    const defaults = make();
    expect(changes(defaults.stdout)).toEqual(expect.arrayContaining(['update /etc/motd (text): content changed', 'remove /usr/bin/passwd (file): no longer declared']));
    expect(check().stdout).toBe('jail check: clean\n');
    expect(JSON.parse(check('--json').stdout).vars).toEqual({});

    // A build record from before variables were recorded, or with variables jail did not write, still loads: none recorded.
    expect(make('PASSWD=yes').code).toBe(0);
    const record = manifestPath(r.dir, r.root);
    const doc = JSON.parse(fs.readFileSync(record, 'utf8'));
    expect(doc.vars).toEqual({ PASSWD: 'yes' });
    for (const vars of [undefined, ['yes'], { PASSWD: 1 }]) {
      fs.writeFileSync(record, JSON.stringify({ ...doc, vars }));
      const old = findings();
      expect(old.code).toBe(1);
      expect(pairs(old.found)).toEqual(['setuid /usr/bin/passwd']);
    }
  });

  it('says what it could not do: exit 2 for a missing ROOT or a jailfile that does not load', () => {
    const missing = check();
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/does not exist.*jail make/);
    expect(r.jail('check').code).toBe(2);
    expect(make().code).toBe(0);
    expect(check('/etc').code).toBe(2);
    r.jailfile('export default 42 +;');
    expect(check().code).toBe(2);
  });

  it('--json says what went wrong on stdout too, with the exit status unchanged', () => {
    const doc = (res: { stdout: string }) => JSON.parse(res.stdout) as { findings: Found[]; errors: { code: string; message: string; path?: string }[] };
    const missing = check('--json');
    expect(missing.code).toBe(2);
    expect(doc(missing)).toEqual({ findings: [], errors: [{ code: 'bad-root', message: expect.stringMatching(/does not exist.*jail make/), path: r.root }] });
    expect(missing.stderr).toMatch(/jail: error: .*does not exist/);
    const noRoot = r.jail('check', '--json');
    expect(noRoot.code).toBe(2);
    expect(doc(noRoot).errors).toEqual([expect.objectContaining({ code: 'bad-root', message: expect.stringMatching(/ROOT is required/) })]);
    expect(make().code).toBe(0);
    const target = check('--json', '/etc');
    expect(target.code).toBe(2);
    expect(doc(target).errors).toEqual([{ code: 'bad-target', message: expect.stringMatching(/takes no targets \(got \/etc\)/) }]);
    r.jailfile('export default 42 +;');
    const broken = check('--json');
    expect(broken.code).toBe(2);
    expect(doc(broken).errors.length).toBeGreaterThan(0);
    expect(doc(broken).findings).toEqual([]);
    // -q stays quiet.
    expect(check('--json', '-q').stdout).toBe('');
  });

  it('jail make prints the cheap findings of what it built, and keeps its exit status', () => {
    r.jailfile(`
import { defineJail, dir, link, device, text } from 'jail';
export default defineJail(() => [
  dir('/srv/pub', { mode: 0o777 }),
  dir('/tmp', { mode: 0o1777 }),
  link('/srv/up', '../../../etc'),
  link('/srv/hop', 'up'),
  link('/srv/ok', '../tmp'),
  device('/dev/mem', { type: 'c', major: 1, minor: 1, dangerous: true }),
  text('/usr/bin/tool', '#!/bin/sh\\n', { mode: 0o4755 }),
]);`);
    const res = make();
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stderr.split('\n').filter((l) => l.startsWith('jail: finding: '));
    const kinds = lines.map((l) => l.slice('jail: finding: '.length).split(':')[0]).sort();
    // /srv/hop names a sibling, which is itself a link that climbs: the sibling is followed.
    expect(kinds).toEqual(['device /dev/mem', 'escape-symlink /srv/hop', 'escape-symlink /srv/up', 'setuid /usr/bin/tool', 'world-writable /srv/pub']);
    // A make that changes nothing checks again, and -q (the cron alarm) stays quiet.
    expect(make().stderr).toMatch(/jail: finding: device \/dev\/mem/);
    const q = make('-q');
    expect(q.code).toBe(0);
    expect(q.stderr).not.toMatch(/finding/);
  });
});

describe('the default Apache jail', () => {
  let apache: Rig;
  afterAll(() => apache?.cleanup());
  it('passes jail check clean', () => {
    apache = rig();
    const args = ['-f', apache.repoJailfile('jailfile.ts'), `ROOT=${apache.root}`, 'PORT=18099'];
    const built = apache.jail('make', ...args);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stderr).not.toMatch(/finding/);
    const res = apache.jail('check', ...args);
    expect(res.stdout + res.stderr).toMatch(/jail check: clean/);
    expect(res.code).toBe(0);
  });

  it('with SHELL=no still holds the /bin/sh its rc script names, with its libraries, and passes clean', () => {
    const bare = rig();
    try {
      const args = ['-f', bare.repoJailfile('jailfile.ts'), `ROOT=${bare.root}`, 'PORT=18098', 'SHELL=no'];
      const built = bare.jail('make', ...args);
      expect(built.code, built.stderr).toBe(0);
      expect(fs.readFileSync(bare.root + '/etc/rc.d/50apache.sh', 'utf8')).toMatch(/^#!\/bin\/sh\n/);
      // The shell's real file (dash here), byte for byte, and every library it needs, resolved inside the jail.
      const real = fs.realpathSync('/bin/sh');
      expect(fs.readFileSync(bare.root + real).equals(fs.readFileSync(real))).toBe(true);
      const deps = (root?: string) => JSON.parse(execFileSync(process.execPath, [CLI, 'deps', '--json', ...(root ? ['--root', root] : []), '/bin/sh'], { encoding: 'utf8' }))['/bin/sh'];
      const inJail = deps(bare.root);
      expect(inJail.error).toBeUndefined();
      expect(inJail.missing).toEqual([]);
      expect(Object.keys(inJail.libraries).sort()).toEqual(Object.keys(deps().libraries).sort());
      // The shell tools stay out.
      expect(fs.existsSync(bare.root + '/usr/bin/ls')).toBe(false);
      const res = bare.jail('check', ...args);
      expect(res.stdout + res.stderr).toMatch(/jail check: clean/);
      expect(res.code).toBe(0);
    } finally {
      bare.cleanup();
    }
  });
});
