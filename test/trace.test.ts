// `jail trace`: a program that fopen()s /etc/myapp.conf and dlopen()s a plugin, run in a
// jail that has neither. The trace names exactly those two; written as a module and
// imported by the jailfile, they make the program run, and a second trace finds nothing.

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, rig, type Rig } from './helpers.js';
import { hasGcc } from '../fixtures/elf/build.js';
import { moduleText, parseTrace } from '../tasks/commands/trace.js';

const CONF = '/etc/myapp.conf';
const gccHere = hasGcc() && spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;

describe('parseTrace', () => {
  it('keeps ENOENT lookups after the chroot, joins split lines, and resolves relative paths', () => {
    const root = '/var/virtual/x';
    const text = [
      '9  execve("/usr/bin/nsenter", ["nsenter"], 0x7ffc /* 3 vars */) = 0',
      '10  openat(AT_FDCWD</tmp>, "/etc/before-chroot", O_RDONLY) = -1 ENOENT (No such file or directory)',
      '10  chroot("/var/virtual/x")        = 0',
      // A host program of the chain that was there before the chroot is not the program.
      '9  openat(AT_FDCWD</>, "/etc/host-side", O_RDONLY) = -1 ENOENT (No such file or directory)',
      // A process that first shows up after it is the program's child.
      '12  openat(AT_FDCWD</var/virtual/x>, "/etc/child", O_RDONLY) = -1 ENOENT (No such file or directory)',
      '10  chdir("/")                      = 0',
      '10  execve("/usr/sbin/prog", ["prog"], 0x7ffc /* 3 vars */) = -1 ENOENT (No such file or directory)',
      '10  access("/etc/ld.so.preload", R_OK) = -1 ENOENT (No such file or directory)',
      '11  openat(AT_FDCWD</var/virtual/x/srv>, "data/a\\"b", O_RDONLY <unfinished ...>',
      '10  newfstatat(AT_FDCWD</var/virtual/x>, "/etc/found", {st_mode=S_IFREG|0644, st_size=1, ...}, 0) = 0',
      '11  <... openat resumed>)            = -1 ENOENT (No such file or directory)',
      '10  openat(3</var/virtual/x/usr/lib>, "libx.so", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)',
      '10  unlink("/tmp/gone")             = -1 ENOENT (No such file or directory)',
      '10  openat(AT_FDCWD</var/virtual/x>, "/etc/secret", O_RDONLY) = -1 EACCES (Permission denied)',
    ].join('\n');
    expect(parseTrace(text, root)).toEqual([
      { path: '/etc/child', syscall: 'openat' },
      { path: '/usr/sbin/prog', syscall: 'execve' },
      { path: '/etc/ld.so.preload', syscall: 'access' },
      { path: '/srv/data/a"b', syscall: 'openat' },
      { path: '/usr/lib/libx.so', syscall: 'openat' },
    ]);
  });

  it('keeps the entries of a module it wrote before, and adds new ones once', () => {
    const first = moduleText(undefined, [{ entry: "copy('/etc/a')", kind: 'copy', path: '/etc/a' }], ['prog']);
    expect(first).toContain("import { copy } from 'jail';");
    const second = moduleText(first, [{ entry: "elf('/usr/lib/b.so')", kind: 'elf', path: '/usr/lib/b.so' }, { entry: "copy('/etc/a')", kind: 'copy', path: '/etc/a' }], ['prog']);
    expect(second).toContain("import { copy, elf } from 'jail';");
    expect(second.match(/^ {2}\w+\(.*\),$/gm)).toEqual(["  copy('/etc/a'),", "  elf('/usr/lib/b.so'),"]);
  });
});

/** The jail: the program, an account to run it as, a shell, a /tmp the account may write. */
const JAILFILE = (traced = false) => `import { defineJail, dir, elf, text, users } from 'jail';
${traced ? "import traced from './traced.ts';\n" : ''}export default defineJail(({ SRC }) => [
  elf(SRC + '/myapp'), elf(SRC + '/who'), elf('/bin/sh'),
  dir('/tmp', { mode: 0o1777 }),
  users({ app: { uid: 1501, gid: 1501, home: '/home/app' } }),
  text('/etc/hostname', 'traced.jail.test\\n'),${traced ? '\n  traced,' : ''}
]);
`;

describe.skipIf(!gccHere)('jail trace on a program that reads a config file and dlopens a plugin', () => {
  let r: Rig;
  let prog: string;
  let plugin: string;
  let madeConf = false;

  beforeAll(() => {
    r = rig();
    plugin = path.join(r.src, 'libplugin.so');
    prog = path.join(r.src, 'myapp');
    fs.writeFileSync(path.join(r.src, 'plugin.c'), 'int plugin_answer(void) { return 42; }\n');
    fs.writeFileSync(path.join(r.src, 'myapp.c'), `#include <stdio.h>
#include <dlfcn.h>
int main(void) {
  FILE *f = fopen("${CONF}", "r");
  if (!f) fprintf(stderr, "no config\\n");
  void *h = dlopen(PLUGIN, RTLD_NOW);
  if (!h) fprintf(stderr, "no plugin: %s\\n", dlerror());
  if (!f || !h) return 1;
  int (*answer)(void) = (int (*)(void))dlsym(h, "plugin_answer");
  printf("answer %d\\n", answer ? answer() : -1);
  return 0;
}
`);
    // Who it runs as, and how confined: written where the jail user may write.
    fs.writeFileSync(path.join(r.src, 'who.c'), `#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/prctl.h>
int main(void) {
  char cwd[4096], host[256];
  FILE *f = fopen("/tmp/who", "w");
  if (!f || !getcwd(cwd, sizeof cwd) || gethostname(host, sizeof host)) return 3;
  const char *pwd = getenv("PWD"), *home = getenv("HOME");
  fprintf(f, "uid=%d euid=%d gid=%d nnp=%d cwd=%s PWD=%s HOME=%s host=%s\\n", (int)getuid(), (int)geteuid(), (int)getgid(),
    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), cwd, pwd ? pwd : "-", home ? home : "-", host);
  return fclose(f) ? 3 : 0;
}
`);
    execFileSync('gcc', ['-shared', '-fPIC', '-o', plugin, path.join(r.src, 'plugin.c')]);
    execFileSync('gcc', ['-o', prog, path.join(r.src, 'myapp.c'), `-DPLUGIN="${plugin}"`]);
    execFileSync('gcc', ['-o', path.join(r.src, 'who'), path.join(r.src, 'who.c')]);
    // The host must have the file for trace to suggest it; leave the host as it was.
    if (!fs.existsSync(CONF)) { fs.writeFileSync(CONF, 'answer=42\n'); madeConf = true; }
    r.jailfile(JAILFILE());
    const made = r.jail('make', `ROOT=${r.root}`, `SRC=${r.src}`);
    expect(made.code, made.stderr).toBe(0);
  });
  afterAll(() => {
    if (madeConf) fs.rmSync(CONF, { force: true });
    r?.cleanup();
  });

  const runInJail = () => spawnSync('chroot', [r.root, prog], { encoding: 'utf8' });

  it('lists exactly the config file and the plugin, as entries to paste', () => {
    expect(runInJail().status).toBe(1);
    const res = r.jail('trace', `ROOT=${r.root}`, `SRC=${r.src}`, '--', prog);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout.trim().split('\n')).toEqual([`copy('${CONF}'),`, `elf('${plugin}'),`]);
    expect(res.stderr).toMatch(/looked for 2 paths the jail lacks/);
  });

  it('writes them as a module the jailfile imports; then the program runs and a second trace finds nothing', () => {
    const res = r.jail('trace', `ROOT=${r.root}`, `SRC=${r.src}`, '--write', 'traced.ts', '--', prog);
    expect(res.code, res.stderr).toBe(0);
    const mod = fs.readFileSync(path.join(r.dir, 'traced.ts'), 'utf8');
    expect(mod).toContain(`  copy('${CONF}'),\n  elf('${plugin}'),\n`);

    r.jailfile(JAILFILE(true));
    const made = r.jail('make', `ROOT=${r.root}`, `SRC=${r.src}`);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`create ${CONF} (file)`);
    expect(made.stdout).toContain(`create ${plugin} (file)`);
    const ran = runInJail();
    expect(ran.stdout, ran.stderr).toBe('answer 42\n');
    expect(ran.status).toBe(0);

    const again = r.jail('trace', `ROOT=${r.root}`, `SRC=${r.src}`, '--write', 'traced.ts', '--', prog);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/found everything/);
    expect(fs.readFileSync(path.join(r.dir, 'traced.ts'), 'utf8')).toBe(mod);
  });

  it('says when a declared path is missing from ROOT (make it), rather than suggesting it', () => {
    fs.rmSync(r.root + CONF);
    const res = r.jail('trace', `ROOT=${r.root}`, `SRC=${r.src}`, '--', prog);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain(`${CONF} is declared but missing from ROOT: run jail make`);
  });

  it('runs the program confined as jail run does: the jail user, no_new_privs, its hostname, cwd / and the jail\'s environment', () => {
    fs.rmSync(path.join(r.root, 'tmp', 'who'), { force: true });
    fs.rmSync(r.root + CONF, { force: true });
    const res = r.jail('trace', `ROOT=${r.root}`, `SRC=${r.src}`, '--', '/bin/sh', '-c', `${prog}; exec ${path.join(r.src, 'who')}`);
    const who = path.join(r.root, 'tmp', 'who');
    expect(fs.readFileSync(who, 'utf8')).toBe('uid=1501 euid=1501 gid=1501 nnp=1 cwd=/ PWD=/ HOME=/home/app host=traced.jail.test\n');
    expect(fs.statSync(who).uid).toBe(1501);
    expect(res.stdout).toBe('');
    // What the program did is still seen through the drop to the jail user: myapp's fopen of its config.
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain(`${CONF} is declared but missing from ROOT`);
    const root = r.jail('trace', `ROOT=${r.root}`, `SRC=${r.src}`, '--user', 'root', '--', '/bin/sh', '-c', 'true');
    expect(root.code).toBe(2);
    expect(root.stderr).toMatch(/runs nothing in a jail with uid or gid 0/);
  });

  it('does not hand the host\'s working directory to the program, so never suggests it', () => {
    // sh looks up $PWD at start: a host PWD that leaked in would come out as dir('<that directory>').
    const here = fs.mkdtempSync(path.join(r.outside, 'cwd-'));
    const res = spawnSync(process.execPath, [CLI, 'trace', `ROOT=${r.root}`, `SRC=${r.src}`, '-f', path.join(r.dir, 'jailfile.ts'), '--', '/bin/sh', '-c', 'true'],
      { cwd: here, env: { ...process.env, PWD: here, OLDPWD: r.dir, FORCE_COLOR: '0' }, encoding: 'utf8' });
    expect(res.stdout).not.toContain(here);
    expect(res.stderr).not.toContain(here);
    expect(res.stdout).toBe('');
    expect(res.status, res.stderr).toBe(0);
  });

  it('never suggests a host file that not everyone may read, whatever the program asks for', () => {
    // A program in a jail may have been broken into: what it asks for must not pull host secrets in.
    const secret = path.join(r.outside, 'key.pem');
    const open = path.join(r.outside, 'motd');
    fs.writeFileSync(secret, 'PRIVATE\n', { mode: 0o600 });
    fs.writeFileSync(open, 'hello\n', { mode: 0o644 });
    const res = r.jail('trace', `ROOT=${r.root}`, `SRC=${r.src}`, '--write', 'traced-secret.ts', '--', '/bin/sh', '-c', `(: < ${secret}); (: < ${open}); (: < /etc/gshadow); true`);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim().split('\n'), res.stderr).toEqual([`copy('${open}'),`]);
    // The line that says where they went ends there, whether stdout is read or not.
    expect(res.stderr).toContain(`jail: wrote 1 entry to ${path.join(r.dir, 'traced-secret.ts')}, listed on stdout; have the jailfile import it and list it among its entries\n`);
    const mod = fs.readFileSync(path.join(r.dir, 'traced-secret.ts'), 'utf8');
    expect(mod).toContain(`copy('${open}')`);
    // The command is named in the module's header comment; no entry names the secrets.
    expect(mod.split('\n').filter((l) => !l.startsWith('//') && (l.includes(secret) || l.includes('gshadow')))).toEqual([]);
    expect(res.stderr).toContain(`not suggested: '${secret}', which the program looked for, is not readable by everyone on the host`);
    expect(res.stderr).toContain("not suggested: '/etc/gshadow'");
  });

  it('refuses to overwrite a module it did not write, and needs a command', () => {
    fs.writeFileSync(path.join(r.dir, 'mine.ts'), "export default ['something of mine'];\n");
    r.jailfile(JAILFILE());
    const res = r.jail('trace', `ROOT=${r.root}`, `SRC=${r.src}`, '--write', 'mine.ts', '--', prog);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/was not written by jail trace/);
    expect(fs.readFileSync(path.join(r.dir, 'mine.ts'), 'utf8')).toBe("export default ['something of mine'];\n");
    const none = r.jail('trace', `ROOT=${r.root}`, `SRC=${r.src}`);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/after `--`/);
  });
});
