// `jail run`: one command in the jail, confined — checked from both sides. Inside, a static
// C program (fixtures/run/escape.c) tries the classic ways out of a chroot as the jail
// user; outside, the test looks at /proc, the cgroups and the clock. A fork bomb, a CPU
// spin and a memory hog meet the jail's limits, and `jail run` killed or interrupted takes
// every process it started with it.

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO, rig, type Rig } from './helpers.js';
import { DEFAULTS, parseBytes, parseNetwork, runConfig } from '../tasks/run/config.js';
import { commandChain, initChain, initUidFor, KEYRING_SCRIPT } from '../tasks/run/chain.js';
import { JOIN_SCRIPT, detect } from '../tasks/run/cgroup.js';
import type { Entry } from '../tasks/entries.js';
import { runtime } from '../tasks/entries.js';
import { conflict } from '../tasks/run/netns.js';
import { service } from '../recipes/service.js';

const TOOLS = { sh: '/bin/sh', sleep: '/bin/sleep', unshare: '/usr/bin/unshare', nsenter: '/usr/bin/nsenter', setpriv: '/usr/bin/setpriv', prlimit: '/usr/bin/prlimit', hostname: '/bin/hostname', keyctl: '/bin/keyctl' };

describe('confinement settings and chains (pure)', () => {
  it('defaults: 300 s of CPU as in the article, 256 pids, namespaces on, no /proc, the host network', () => {
    expect(runConfig([])).toEqual({ cpu: DEFAULTS.cpu, pids: DEFAULTS.pids, proc: false, namespaces: true });
    expect(DEFAULTS.cpu).toBe(300);
  });

  it('folds runtime() entries, the last one winning per setting, and turns each default off', () => {
    const c = runConfig([runtime({ cpu: 2, pids: 64 }) as Entry, runtime({ pids: false, cpu: 'unlimited', memory: '64M', proc: true, user: 'www' }) as Entry]);
    expect(c).toEqual({ user: 'www', proc: true, namespaces: true, memory: 64 * 1024 * 1024 });
    expect(() => runConfig([runtime({ cpu: 0 }) as Entry])).toThrow(/cpu must be a whole number/);
    expect(() => runConfig([runtime({ pids: 2 }) as Entry])).toThrow(/pids must be/);
    expect(() => runConfig([runtime({ namespaces: false, proc: true }) as Entry])).toThrow(/needs the jail's own PID and mount namespaces/);
    // An error names the entry that set the option, not the last runtime() (service() makes one too).
    const net = { ...(runtime({ network: { address: '10.200.7.2/24', hostAddress: '10.9.9.9/24' } }) as Entry), at: 'jailfile.ts:6' } as Entry;
    const later = (service('x', { start: ['/x'], stop: ['/x'], limits: { cpu: 600 } }) as Entry[]).flat(5).map((e) => ({ ...e, at: 'jailfile.ts:7' }) as Entry);
    expect(() => runConfig([net, ...later])).toThrow(/^jailfile\.ts:6: runtime\(\): network\.hostAddress 10\.9\.9\.9\/24 must be in the jail's subnet/);
  });

  it('a service\'s own CPU limit above runtime\'s raises the jail\'s hard limit only; runtime\'s stays the soft one', () => {
    const svc = (cpu: number | 'unlimited') => service('x', { start: ['/x'], stop: ['/x'], limits: { cpu } }) as Entry[];
    expect(runConfig([...svc(600)])).toMatchObject({ cpu: 300, cpuHard: 600 });
    expect(runConfig([...svc(100)]).cpuHard).toBeUndefined();
    expect(runConfig([...svc(600), ...svc('unlimited'), runtime({ cpu: 60 }) as Entry])).toMatchObject({ cpu: 60, cpuHard: 'unlimited' });
    expect(runConfig([...svc(600), runtime({ cpu: 'unlimited' }) as Entry]).cpuHard).toBeUndefined();
    expect(commandChain({ tools: TOOLS, root: '/srv/j', uid: 33, gid: 33, cmd: ['/x'], cgroupProcs: [], cpu: 300, cpuHard: 'unlimited' })).toContain('--cpu=300:unlimited');
    expect(() => service('x', { start: ['/x'], stop: ['/x'], limits: { cpu: '1; rm -rf /' as never } })).toThrow(/limits.cpu must be a whole number/);
  });

  it('a service without limits.cpu keeps runtime\'s CPU limit: its script sets none, and the jail\'s hard limit is not raised', () => {
    const plain = (service('x', { start: ['/x'], stop: ['/x'] }) as Entry[]).flat(5) as Entry[];
    const script = plain.find((e) => e.kind === 'text')!;
    expect(script.kind === 'text' && script.content.toString()).not.toMatch(/ulimit -t/);
    expect(runConfig([...plain, runtime({ cpu: 5 }) as Entry])).toEqual({ cpu: 5, pids: DEFAULTS.pids, proc: false, namespaces: true });
    expect(runConfig(plain)).toEqual({ cpu: 300, pids: DEFAULTS.pids, proc: false, namespaces: true });
    const own = (service('x', { start: ['/x'], stop: ['/x'], limits: { cpu: 2 } }) as Entry[]).flat(5) as Entry[];
    const ownScript = own.find((e) => e.kind === 'text')!;
    expect(ownScript.kind === 'text' && ownScript.content.toString()).toMatch(/^ulimit -t 2 \|\| exit 1$/m);
    expect(runConfig([...own, runtime({ cpu: 5 }) as Entry]).cpuHard).toBeUndefined();
  });

  it('a jail network is refused on an address or subnet in use, and allowed beside it', () => {
    const net = parseNetwork({ address: '10.213.7.2/24' });
    const jail = (cidr: string) => ({ cidr, who: 'the jail at /srv/other', root: '/srv/other' });
    expect(conflict(net, [jail('10.213.7.2/24')])?.what).toBe('the address 10.213.7.2/24 is already used by the jail at /srv/other');
    expect(conflict(net, [jail('10.213.7.1/24')])?.what).toBe('the address 10.213.7.1/24 is already used by the jail at /srv/other');
    expect(conflict(net, [jail('10.213.7.9/24')])?.what).toBe('the subnet 10.213.7.0/24 is already used by the jail at /srv/other');
    expect(conflict(net, [{ cidr: '10.0.0.0/8', route: true, who: 'the host' }])?.what).toBe('the subnet 10.213.7.0/24 is already used by the host');
    expect(conflict(net, [{ cidr: '10.213.7.128/25', route: true, who: 'the host' }])?.use.cidr).toBe('10.213.7.128/25');
    expect(conflict(net, [jail('10.213.8.2/24'), { cidr: '10.213.6.0/24', route: true, who: 'the host' }, { cidr: '192.0.2.2/24', who: 'the host' }])).toBeUndefined();
  });

  it('parses sizes and the jail network, deriving the host end of the veth pair', () => {
    expect(parseBytes('512K')).toBe(512 * 1024);
    expect(parseBytes('1G')).toBe(1024 ** 3);
    expect(() => parseBytes('lots')).toThrow(/not a size/);
    expect(parseNetwork({ address: '10.213.7.2/24' })).toEqual({ address: '10.213.7.2/24', hostAddress: '10.213.7.1/24' });
    expect(parseNetwork({ address: '10.213.7.1/24' }).hostAddress).toBe('10.213.7.2/24');
    expect(parseNetwork({ address: '10.213.7.9/24', hostAddress: '10.213.7.200/24' }).hostAddress).toBe('10.213.7.200/24');
    expect(() => parseNetwork({ address: '10.213.7.0/24' })).toThrow(/network or broadcast/);
    expect(() => parseNetwork({ address: '10.213.7.2' })).toThrow(/prefix length/);
    expect(() => parseNetwork({ address: '10.213.7.2/24', hostAddress: '10.9.9.1/24' })).toThrow(/must be in the jail's subnet/);
  });

  it('a command chain: host programs only until unshare chroots and drops to the user, the jail command last', () => {
    const argv = commandChain({ tools: TOOLS, root: '/srv/j', uid: 33, gid: 33, cmd: ['/bin/x', '--', 'y'], cgroupProcs: ['/cg/a/cgroup.procs'], cpu: 300, init: 4242, dieWithParent: true });
    expect(argv).toEqual([
      '/usr/bin/setpriv', '--pdeathsig=KILL', '--',
      '/bin/sh', '-c', JOIN_SCRIPT, 'jail-cgroup', '/cg/a/cgroup.procs', '--',
      '/bin/sh', '-c', KEYRING_SCRIPT, 'jail-keyring', '/bin/keyctl',
      '/usr/bin/prlimit', '--core=0:0', '--cpu=300:300', '--',
      '/usr/bin/nsenter', '--target=4242', '--pid', '--mount', '--uts', '--ipc', '--',
      '/usr/bin/setpriv', '--nnp', '--inh-caps=-all', '--bounding-set=-all,+sys_chroot,+setuid,+setgid', '--',
      '/usr/bin/unshare', '--root=/srv/j', '--wd=/', '--setgid=33', '--setuid=33', '--', '/bin/x', '--', 'y',
    ]);
    const low = commandChain({ tools: TOOLS, root: '/srv/j', uid: 33, gid: 33, cmd: ['/x'], cgroupProcs: [], bindLowPorts: true });
    expect(low).toContain('--ambient-caps=-all,+net_bind_service');
    expect(low).toContain('--securebits=+no_setuid_fixup');
    expect(() => commandChain({ tools: TOOLS, root: '/srv/j', uid: 0, gid: 33, cmd: ['/x'], cgroupProcs: [] })).toThrow(/refusing/);
    expect(() => commandChain({ tools: TOOLS, root: '/srv/j', uid: 33, gid: 0, cmd: ['/x'], cgroupProcs: [] })).toThrow(/refusing/);
  });

  it('the init: the host\'s sh as an unused uid, no capabilities, dying with its unshare', () => {
    const argv = initChain({ tools: TOOLS, cgroupProcs: [], procDir: '/srv/j/proc', initUid: initUidFor(33) });
    const setpriv = argv.lastIndexOf('/usr/bin/setpriv');
    expect(argv.slice(setpriv, setpriv + 9)).toEqual(['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--nnp', '--inh-caps=-all', '--bounding-set=-all', '--pdeathsig=KILL', '--']);
    expect(argv).toContain('--mount-proc=/srv/j/proc');
    expect(argv).toContain('--kill-child');
    expect(initUidFor(65534)).toBe(65533);
  });

  it('the cgroup join script writes its own pid and execs the rest, data only as arguments', () => {
    const dir = fs.mkdtempSync('/tmp/jail-join-');
    try {
      const a = path.join(dir, 'a'), b = path.join(dir, 'b');
      const out = execFileSync('/bin/sh', ['-c', JOIN_SCRIPT, 'jail-cgroup', a, b, '--', '/bin/sh', '-c', 'echo $$; echo "$1"', 'x', '$(touch /tmp/never)'], { encoding: 'utf8' });
      const [pid, arg] = out.trim().split('\n');
      expect(fs.readFileSync(a, 'utf8').trim()).toBe(pid);
      expect(fs.readFileSync(b, 'utf8').trim()).toBe(pid);
      expect(arg).toBe('$(touch /tmp/never)');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------

const hasGcc = spawnSync('gcc', ['--version']).status === 0 && fs.existsSync('/usr/lib/x86_64-linux-gnu/libc.a');
const isRoot = process.getuid?.() === 0;
// The jail's limits need the pids and memory controllers somewhere writable (cgroup v2, or v1 as on this CI host).
const writable = (d?: string) => { try { return !!d && (fs.accessSync(d, fs.constants.W_OK), true); } catch { return false; } };
const cg = isRoot ? detect() : { notes: [] };
const hasPids = writable(cg.pids?.base), hasMemory = writable(cg.memory?.base);
if (isRoot && !hasGcc) console.log('jail run tests skipped: they need gcc and a static libc (apt-get install gcc libc6-dev)');
if (isRoot && (!hasPids || !hasMemory)) console.log(`jail run tests skipped: no writable cgroup with the ${!hasPids ? 'pids' : 'memory'} controller here; jail refuses runtime() limits it cannot enforce (see the no-cgroup error)`);

let r: Rig;
let bin: string;

function jailfile(rt: string, extra = ''): string {
  return `import { defineJail, dir, copy, elf, text, users, runtime } from 'jail';
export default defineJail(({ PROC = 'yes', NS = 'yes', USER }) => [
  dir(['/bin', '/etc', '/proc']),
  dir('/tmp', { mode: 0o1777 }),
  users({ app: { uid: 1501, gid: 1501, home: '/tmp' }, other: { uid: 1502, gid: 1502, home: '/tmp' } }),
  text('/etc/hostname', 'small.jail.test\\n'),
  ${['escape', 'bomb', 'spin', 'hog'].map((n) => `copy(${JSON.stringify(path.join(bin, n))}, { to: '/bin/${n}' })`).join(',\n  ')},${extra}
  runtime({ ${rt} proc: PROC === 'yes', namespaces: NS === 'yes', user: USER }),
]);
`;
}

const jail = (...args: string[]) => r.jail(...args);
const runIn = (...args: string[]) => {
  const dash = args.indexOf('--');
  return r.jail('run', `ROOT=${r.root}`, ...args.slice(0, dash), ...args.slice(dash));
};

/** Live processes whose root directory is ROOT. */
function jailed(root: string): number[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => {
    try {
      return fs.readlinkSync(`/proc/${p}/root`) === root && !/^\d+ \(.*\) [ZX] /.test(fs.readFileSync(`/proc/${p}/stat`, 'utf8'));
    } catch { return false; }
  });
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((ok) => setTimeout(ok, 25));
  }
  return cond();
}

function start(args: string[], extraFds = 0, fd?: number, prefix: string[] = []): ChildProcess {
  const stdio: (string | number)[] = ['ignore', 'pipe', 'pipe'];
  for (let i = 0; i < extraFds; i++) stdio.push(fd ?? 'ignore');
  const argv = [...prefix, process.execPath, CLI, ...args];
  return spawn(argv[0]!, argv.slice(1), { cwd: r.dir, stdio: stdio as never });
}

/** A command run in a new session keyring holding a key, as an administrator's login session may. */
const IN_KEYED_SESSION = ['keyctl', 'session', '-', '/bin/sh', '-c', 'keyctl add user jailtest SECRET @s >/dev/null && exec "$@"', 'sh'];

function collect(c: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = '', stderr = '';
  c.stdout!.on('data', (d) => { stdout += d; });
  c.stderr!.on('data', (d) => { stderr += d; });
  return new Promise((ok) => c.on('close', (code, signal) => ok({ code, signal, stdout, stderr })));
}

const jailCgroups = () => ['/sys/fs/cgroup/pids', '/sys/fs/cgroup', '/sys/fs/cgroup/unified'].flatMap((d) => {
  try { return fs.readdirSync(d).filter((n) => n.startsWith('jail-') && n.includes(path.basename(path.dirname(r.root)))).map((n) => path.join(d, n)); } catch { return []; }
});

describe.skipIf(!isRoot || !hasGcc || !hasPids || !hasMemory)('jail run', () => {
  beforeAll(() => {
    r = rig();
    bin = path.join(r.src, 'bin');
    fs.mkdirSync(bin);
    for (const n of ['escape', 'bomb', 'spin', 'hog']) execFileSync('gcc', ['-static', '-O1', '-o', path.join(bin, n), path.join(REPO, 'fixtures', 'run', `${n}.c`)]);
    r.jailfile(jailfile(`pids: 64, cpu: 2, memory: '64M',`));
    const res = jail('make', `ROOT=${r.root}`);
    expect(res.code, res.stderr).toBe(0);
    fs.writeFileSync(path.join(r.outside, 'marker'), 'the host\n');
  });
  afterAll(() => {
    for (const p of jailed(r.root)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    jail('stop', `ROOT=${r.root}`);
    r.cleanup();
  });

  it('runs as the jail user, chrooted at /, with the jail\'s hostname, and passes the exit status through', () => {
    const who = runIn('--', '/bin/escape', 'whoami');
    expect(who.code, who.stderr).toBe(0);
    expect(who.stdout).toBe('uid=1501 gid=1501 groups=0 host=small.jail.test pid=3 cwd=/\n');
    expect(runIn('--', '/bin/escape', 'exit', '42').code).toBe(42);
    expect(runIn('--user', 'other', '--', '/bin/escape', 'whoami').stdout).toMatch(/^uid=1502 gid=1502 /);
  });

  it('a command that is not there to run is refused with exit 2 before anything starts, found by looking in the jail', () => {
    const refused = (args: string[], message: string) => {
      const res = runIn('--', ...args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toBe(`jail: error: ${message} Nothing was started.\n`);
    };
    refused(['/nonexistent'], `/nonexistent is not in the jail at ${r.root}. Add it to the jailfile with elf('/nonexistent') (a program) or copy() (a script), and run \`jail make\`.`);
    refused(['nothing-here'], `nothing-here is not a program in the jail's PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin) at ${r.root}, as app can run it. Add it to the jailfile with elf('/usr/bin/nothing-here') (or copy() a script), run \`jail make\`, or name it by its path in the jail.`);
    refused(['/etc/hostname'], `/etc/hostname at ${r.root} is not executable by the jail user app (mode 0644). Declare it with mode: 0o755 in the jailfile and run \`jail make\`.`);
    refused(['/tmp'], `/tmp at ${r.root} is a directory, not a program. Name the program to run.`);
    // A link planted in ROOT that leads to a host program leads nowhere once chrooted: it is followed inside the jail only.
    fs.symlinkSync(execFileSync('sh', ['-c', 'command -v true'], { encoding: 'utf8' }).trim(), path.join(r.root, 'bin', 'out'));
    try {
      refused(['/bin/out'], `/bin/out is not in the jail at ${r.root} (through /bin/out -> ${fs.readlinkSync(path.join(r.root, 'bin', 'out'))}, followed inside the jail as the chroot will). Add it to the jailfile with elf('/bin/out') (a program) or copy() (a script), and run \`jail make\`.`);
    } finally {
      fs.unlinkSync(path.join(r.root, 'bin', 'out'));
    }
    expect(jailed(r.root)).toEqual([]);
    // A bare name is found in the jail's PATH, and runs.
    expect(runIn('--', 'escape', 'exit', '7').code).toBe(7);
  });

  it('a script whose #! interpreter, or a program whose loader, is not in the jail is refused with exit 2, naming what to add', () => {
    const refused = (args: string[], message: string) => {
      const res = runIn('--', ...args);
      expect(res.code, res.stderr).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toBe(`jail: error: ${message} Nothing was started.\n`);
    };
    // A program built against the host's loader, copied rather than brought by elf(); a
    // script for a python3 the jail lacks; a script run by that program; one for env.
    fs.writeFileSync(path.join(r.src, 'args.c'), '#include <stdio.h>\nint main(int c, char **v) { for (int i = 1; i < c; i++) puts(v[i]); return 3; }\n');
    const dyn = path.join(bin, 'args');
    execFileSync('gcc', ['-O1', '-o', dyn, path.join(r.src, 'args.c')]);
    const loader = /Requesting program interpreter: (.*)\]/.exec(execFileSync('readelf', ['-l', dyn], { encoding: 'utf8' }))![1]!;
    const script = (name: string, text: string) => { fs.writeFileSync(path.join(bin, name), text, { mode: 0o755 }); return JSON.stringify(path.join(bin, name)); };
    const py = script('hello.py', '#!/usr/bin/python3\nprint("hello")\n');
    const viaArgs = script('via-args', '#!/bin/args from-script\n');
    const envPy = script('env.py', '#!/usr/bin/env python3\nprint("hello")\n');
    const copies = `
  copy(${JSON.stringify(dyn)}, { to: '/bin/args' }),
  copy(${py}, { to: '/bin/hello.py' }),
  copy(${viaArgs}, { to: '/bin/via-args' }),`;
    const noLoader = (what: string, prog: string) => `${what} is a dynamically linked program whose loader ${loader} (its PT_INTERP) is not in the jail, so the kernel cannot start it ("No such file or directory"). ` +
      `A program's loader comes with elf() of the program: declare ${prog} with elf() rather than copy(), and run \`jail make\`.`;
    const noPython = `/bin/hello.py at ${r.root} is a script whose #! interpreter /usr/bin/python3 is not in the jail, so the kernel cannot start it ("No such file or directory"). ` +
      "Add the interpreter to the jailfile with elf('/usr/bin/python3'), which brings it with its libraries, and run `jail make`.";
    r.jailfile(jailfile(`pids: 64, cpu: 2, memory: '64M',`, copies));
    try {
      let made = jail('make', `ROOT=${r.root}`);
      expect(made.code, made.stderr).toBe(0);
      refused(['/bin/args', 'a'], noLoader(`/bin/args at ${r.root}`, '/bin/args'));
      refused(['args'], noLoader(`args (/bin/args in the jail at ${r.root})`, '/bin/args'));
      refused(['/bin/hello.py'], noPython);
      refused(['/bin/via-args'], noLoader(`/bin/via-args at ${r.root} is a script whose #! interpreter /bin/args`, '/bin/args'));
      expect(jailed(r.root)).toEqual([]);

      // elf() of the program brings its loader: the program and the script it runs start. env
      // comes with its loader too, and finds no python3 in the jail's PATH.
      r.jailfile(jailfile(`pids: 64, cpu: 2, memory: '64M',`, `${copies}
  elf(${JSON.stringify(dyn)}, '/usr/bin/env'),
  copy(${envPy}, { to: '/bin/env.py' }),`));
      made = jail('make', `ROOT=${r.root}`);
      expect(made.code, made.stderr).toBe(0);
      expect(fs.existsSync(path.join(r.root, loader))).toBe(true);
      const ran = runIn('--', '/bin/args', 'a');
      expect([ran.code, ran.stdout]).toEqual([3, 'a\n']);
      const viaRan = runIn('--', '/bin/via-args', 'b');
      expect([viaRan.code, viaRan.stdout]).toEqual([3, 'from-script\n/bin/via-args\nb\n']);
      refused(['/bin/hello.py'], noPython);
      refused(['/bin/env.py'], `/bin/env.py at ${r.root} is a script whose #! line has /usr/bin/env run python3, which is in no directory of the jail's PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), so env cannot start it ("No such file or directory"). ` +
        "Add it to the jailfile with elf('/usr/bin/python3'), which brings it with its libraries, and run `jail make`.");
    } finally {
      r.jailfile(jailfile(`pids: 64, cpu: 2, memory: '64M',`));
      expect(jail('make', `ROOT=${r.root}`).code).toBe(0);
    }
    expect(jailed(r.root)).toEqual([]);
  });

  it('runs as the user of the variables ROOT was last made with, unless the command line gives another', () => {
    // USER changes no file of the jail, only runtime(): the make that is given it only records it.
    const made = jail('make', `ROOT=${r.root}`, 'USER=other');
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^jail: 0 created, 0 updated, 0 removed, \d+ up to date/);
    try {
      expect(runIn('--', '/bin/escape', 'whoami').stdout).toMatch(/^uid=1502 gid=1502 /);
      expect(runIn('USER=app', '--', '/bin/escape', 'whoami').stdout).toMatch(/^uid=1501 gid=1501 /);
    } finally {
      expect(jail('make', `ROOT=${r.root}`).code).toBe(0);
    }
    expect(runIn('--', '/bin/escape', 'whoami').stdout).toMatch(/^uid=1501 gid=1501 /);
  });

  it('never runs anything as root: runtime({ user: "root" }), --user root and a uid-0 account are refused', () => {
    const res = runIn('--user', 'root', '--', '/bin/escape', 'whoami');
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/uid 0 and gid 0 .* runs nothing in a jail with uid or gid 0/);
    // Root keeps uid 0 whatever is done to it: the way out is another account, named.
    expect(res.stderr).toMatch(/\(a root process can leave a chroot\)\. Name an unprivileged account of the jail instead, with --user or runtime\(\{ user \}\) \(it has app, other\)\.\n$/);
    expect(res.stderr).not.toMatch(/Give the user its own ids/);
    expect(res.stdout).toBe('');
    expect(runIn('USER=root', '--', '/bin/escape', 'whoami').code).toBe(2);
  });

  it('reads the account as data and refuses a planted etc/passwd symlink', () => {
    const passwd = path.join(r.root, 'etc', 'passwd');
    const saved = fs.readFileSync(passwd);
    fs.rmSync(passwd);
    fs.symlinkSync('/etc/passwd', passwd);
    try {
      const res = runIn('--', '/bin/escape', 'whoami');
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/\/etc\/passwd in the jail is a symlink/);
    } finally {
      fs.rmSync(passwd);
      fs.writeFileSync(passwd, saved);
    }
  });

  it('escapes fail: no inherited fd, no chroot walk, no mknod, no host processes, no capabilities, no session keys', async () => {
    const fd = fs.openSync(path.join(r.outside, 'marker'), 'r');
    try {
      // fd 7 and fd 12 of `jail run` are open on a host file; neither may reach the jail.
      // ... and jail run starts in a session keyring holding a key of the administrator's.
      const c = start(['run', `ROOT=${r.root}`, '--', '/bin/escape', String(process.pid), path.join(r.outside, 'marker')], 10, fd, IN_KEYED_SESSION);
      const res = await collect(c);
      expect(res.stdout, res.stderr).toMatch(/^0 escapes$/m);
      expect(res.stdout).toMatch(/^ok session-keyring: 0 keys$/m);
      expect(res.code).toBe(0);
      expect(res.stdout).not.toMatch(/ESCAPE/);
      expect(res.stdout).toMatch(/^ok fds: only 0-2 open$/m);
      expect(res.stdout).toMatch(/^ok chroot-walk: chroot refused \(Operation not permitted\)$/m);
      expect(res.stdout).toMatch(/^ok mknod: refused \(Operation not permitted\)$/m);
      expect(res.stdout).toMatch(/^ok unshare-user: refused/m);
      expect(res.stdout).toMatch(/^ok capabilities: effective 0000000000000000 permitted 0000000000000000$/m);
      expect(res.stdout).toMatch(/^ok no_new_privs: 1$/m);
      expect(res.stdout).toMatch(new RegExp(`^ok kill-host: kill\\(${process.pid}, 0\\): No such process$`, 'm'));
      // Its /proc is its own PID namespace's: the init, its sleep, and the program itself.
      expect(res.stdout).toMatch(/^ok proc: 3 processes visible: 1 2 3$/m);
      expect(res.stdout).toMatch(/^ok proc-1-root: refused \(Permission denied\)$/m);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('without runtime.proc nothing is mounted on the jail\'s /proc, and it still cannot see the host\'s processes', () => {
    const res = runIn('PROC=no', '--', '/bin/escape', String(process.pid), path.join(r.outside, 'marker'));
    expect(res.stdout).toMatch(/^ok proc: 0 processes visible:$/m);
    expect(res.stdout).toMatch(/^ok kill-host: .*No such process$/m);
    expect(res.stdout).toMatch(/^0 escapes$/m);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(r.root);
  });

  it('TIOCSTI cannot push keystrokes into the caller\'s terminal (a session of its own)', () => {
    const hasScript = spawnSync('script', ['--version']).status === 0;
    if (!hasScript) { console.log('skipped: util-linux script(1) is not installed to give the test a terminal'); return; }
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    // The control: the same program on the same kind of terminal, not jailed, succeeds.
    const control = spawnSync('script', ['-qec', `${q(path.join(bin, 'escape'))} tiocsti`, '/dev/null'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const legacy = fs.readFileSync('/proc/sys/dev/tty/legacy_tiocsti', 'utf8').trim() !== '0';
    if (legacy) expect(control.stdout).toMatch(/ESCAPE tiocsti/);
    const res = spawnSync('script', ['-qec', `${q(process.execPath)} ${q(CLI)} run ${q(`ROOT=${r.root}`)} -- /bin/escape tiocsti`, '/dev/null'], { encoding: 'utf8', cwd: r.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(res.stdout).toMatch(/ok tiocsti: refused \(Operation not permitted\)/);
    expect(res.stdout).not.toMatch(/ESCAPE/);
  });

  it('a fork bomb stops at the pids limit while the host can still start processes; SIGTERM ends all of it', async () => {
    const c = start(['run', `ROOT=${r.root}`, '--', '/bin/bomb']);
    const done = collect(c);
    let out = '';
    c.stdout!.on('data', (d) => { out += d; });
    expect(await until(() => out.includes('fork failed'), 10_000)).toBe(true);
    expect(out).toMatch(/fork failed: Resource temporarily unavailable/);
    const n = jailed(r.root).length;
    expect(n).toBeGreaterThan(40);
    expect(n).toBeLessThanOrEqual(64);
    expect(spawnSync('/bin/true').status).toBe(0);
    c.kill('SIGTERM');
    const res = await done;
    expect(res.code).toBe(128 + 15);
    expect(jailed(r.root)).toEqual([]);
  });

  it('killing jail run outright (SIGKILL) still ends every process it started', async () => {
    const c = start(['run', `ROOT=${r.root}`, '--', '/bin/bomb']);
    let out = '';
    c.stdout!.on('data', (d) => { out += d; });
    expect(await until(() => out.includes('fork failed'), 10_000)).toBe(true);
    expect(jailed(r.root).length).toBeGreaterThan(10);
    const gone = new Promise((ok) => c.once('exit', ok));
    c.kill('SIGKILL');
    expect(await until(() => jailed(r.root).length === 0, 5000)).toBe(true);
    await gone;
    // The next command sweeps the cgroup the killed one could not remove.
    expect(runIn('--', '/bin/escape', 'exit', '0').code).toBe(0);
    expect(jailCgroups().flatMap((d) => fs.readdirSync(d)).filter((n) => n.startsWith('run-'))).toEqual([]);
  });

  it('runtime({ cpu: 2 }): a CPU spin is killed after about 2 s of CPU time', () => {
    const t0 = Date.now();
    const res = runIn('--', '/bin/spin');
    const s = (Date.now() - t0) / 1000;
    expect([128 + 9, 128 + 24]).toContain(res.code); // SIGKILL at the hard limit, or SIGXCPU at the soft one
    expect(s).toBeGreaterThan(1.8);
    expect(s).toBeLessThan(8);
  });

  it('runtime({ memory: "64M" }): a memory hog is stopped near the limit', () => {
    const res = runIn('--', '/bin/hog', '512');
    expect(res.code).toBe(128 + 9);
    const last = Number(/(\d+) MiB\s*$/.exec(res.stdout)?.[1] ?? 0);
    expect(last).toBeGreaterThan(0);
    expect(last).toBeLessThanOrEqual(64);
  });

  it('with namespaces: false it is still chrooted, unprivileged and cleaned up, by its cgroup', () => {
    const res = runIn('NS=no', 'PROC=no', '--', '/bin/escape', String(process.pid), path.join(r.outside, 'marker'));
    for (const check of ['ids', 'groups', 'capabilities', 'no_new_privs', 'cwd', 'fds', 'chroot-walk', 'marker', 'mknod', 'setuid', 'mount', 'unshare-user', 'tiocsti']) {
      expect(res.stdout, res.stderr).toMatch(new RegExp(`^ok ${check}: `, 'm'));
    }
    expect(jailed(r.root)).toEqual([]);
  });

  it('leaves no cgroup, state or namespace behind', () => {
    expect(jailCgroups()).toEqual([]);
    const st = jail('status', `ROOT=${r.root}`);
    expect(st.code).toBe(1);
    expect(st.stdout).toMatch(/is not running/);
  });
});
