// `jail boot`, `jail status` and `jail stop` with the article's Apache jail: the default
// jailfile built for real, booted, fetched from, looked at from the host (who runs apache,
// where its root is, which PID namespace), broken in the ways the article expects a jail
// to be broken (`rm -fr /` inside, the tree deleted from the host), and stopped.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, fingerprint, rig, type Rig } from './helpers.js';
import { detect } from '../tasks/run/cgroup.js';
import { rootKey } from '../tasks/manifest.js';

const isRoot = process.getuid?.() === 0;
const hasApache = fs.existsSync('/usr/sbin/apache2');
const hasIp = fs.existsSync('/usr/sbin/ip') || fs.existsSync('/sbin/ip');
// The default runtime has a pids limit, which needs a writable cgroup with the pids controller.
const pidsBase = isRoot ? detect().pids?.base : undefined;
const hasPids = (() => { try { return !!pidsBase && (fs.accessSync(pidsBase, fs.constants.W_OK), true); } catch { return false; } })();
if (isRoot && !hasPids) console.log('jail boot tests skipped: no writable cgroup with the pids controller here (jail boot then refuses the default pids limit with a no-cgroup error)');
if (isRoot && !hasApache) console.log('jail boot tests skipped: apache2 is not installed (apt-get install apache2)');
if (isRoot && hasApache && !hasIp) console.log('jail boot network test skipped: iproute2 (ip) is not installed');

interface Proc { pid: number; uid: number; comm: string; pidns: string; capEff: string }

/** Live processes whose root directory is ROOT. */
function jailed(root: string): Proc[] {
  const out: Proc[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readlinkSync(`/proc/${d}/root`) !== root) continue;
      const status = fs.readFileSync(`/proc/${d}/status`, 'utf8');
      if (/^State:\s+[ZX]/m.test(status)) continue;
      out.push({
        pid: Number(d), uid: Number(/^Uid:\s+(\d+)/m.exec(status)![1]), comm: /^Name:\s+(.*)$/m.exec(status)![1]!,
        pidns: fs.readlinkSync(`/proc/${d}/ns/pid`), capEff: /^CapEff:\s+(\w+)/m.exec(status)![1]!,
      });
    } catch { /* gone */ }
  }
  return out;
}

async function get(url: string, tries = 50): Promise<{ status: number; body: string }> {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      return { status: res.status, body: await res.text() };
    } catch (err) {
      if (i >= tries) throw err;
      await new Promise((ok) => setTimeout(ok, 100));
    }
  }
}

/** A port nothing on the host's loopback listens on (a low one when asked: below 1024). */
async function freePort(low = false): Promise<number> {
  const tryPort = (port: number) => new Promise<number | undefined>((ok) => {
    const s = net.createServer();
    s.once('error', () => ok(undefined));
    s.listen(port, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => ok(p)); });
  });
  if (!low) return (await tryPort(0))!;
  // 800-899: below 1024, and clear of the ports fetch() refuses (989, 990, 993, 995, ...).
  for (let i = 0; i < 100; i++) { const p = 800 + ((process.pid + i) % 100); if (await tryPort(p)) return p; }
  throw new Error('no free port below 1024');
}


describe.skipIf(!isRoot || !hasApache || !hasPids)('jail boot, status and stop: the default Apache jail', () => {
  let r: Rig;
  let port: number;
  const make = (...args: string[]) =>
    r.jail('make', '-f', path.join(r.dir, 'jailfile.ts'), `ROOT=${r.root}`, `PORT=${port}`, 'HOSTNAME=www.example.test', ...args);
  const cmd = (c: string, ...args: string[]) => r.jail(c, '-f', path.join(r.dir, 'jailfile.ts'), `ROOT=${r.root}`, `PORT=${port}`, 'HOSTNAME=www.example.test', ...args);

  beforeAll(async () => {
    r = rig();
    r.repoJailfile('jailfile.ts');
    port = await freePort();
    const res = make();
    expect(res.code, res.stderr).toBe(0);
  });
  afterAll(() => {
    cmd('stop');
    for (const p of jailed(r.root)) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    r.cleanup();
  });

  it('boots: apache answers, every apache process runs as www-data, chrooted, in a PID namespace of its own', async () => {
    const boot = cmd('boot');
    expect(boot.code, boot.stderr + boot.stdout).toBe(0);
    expect(boot.stdout).toMatch(/50apache\.sh start: ok/);
    const res = await get(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/It works, from inside the jail/);
    const procs = jailed(r.root);
    expect(procs.filter((p) => p.comm === 'apache2').length).toBeGreaterThanOrEqual(2);
    const hostNs = fs.readlinkSync('/proc/self/ns/pid');
    for (const p of procs) {
      expect(p.uid, `${p.comm} ${p.pid}`).toBe(33);
      expect(p.pidns).not.toBe(hostNs);
      expect(fs.readlinkSync(`/proc/${p.pid}/root`)).toBe(r.root);
    }
    expect(new Set(procs.map((p) => p.pidns)).size).toBe(1);
    // On the host's network a booted service may bind a port below 1024: CAP_NET_BIND_SERVICE, and nothing else.
    for (const p of procs) expect(p.capEff).toBe('0000000000000400');
  });

  it('a second boot starts nothing twice', async () => {
    const before = jailed(r.root).map((p) => p.pid).sort();
    const again = cmd('boot');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/50apache\.sh: already running/);
    expect(again.stdout).toMatch(/0 started, 1 already running, 0 failed/);
    expect(jailed(r.root).map((p) => p.pid).sort()).toEqual(before);
    expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200);
  });

  it('jail run -- /usr/bin/hostname prints the jail\'s hostname (and the host\'s is untouched)', () => {
    const host = execFileSync('hostname', { encoding: 'utf8' });
    const res = cmd('run', '--', '/usr/bin/hostname');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe('www.example.test\n');
    expect(cmd('run', '--', '/usr/bin/id').stdout).toBe('uid=33(www-data) gid=33(www-data) groups=33(www-data)\n');
    expect(execFileSync('hostname', { encoding: 'utf8' })).toBe(host);
  });

  it('status lists the apache service and its processes', () => {
    const st = cmd('status');
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/is running since/);
    expect(st.stdout).toMatch(/50apache\.sh\s+running \(\d+ processes\)/);
    expect(st.stdout).toMatch(/www-data\s+S\s+\/usr\/sbin\/apache2 -f \/etc\/apache2\/apache2\.conf -k start/);
    const json = JSON.parse(cmd('status', '--json').stdout) as { running: boolean; hostname: string; services: { script: string; status: string }[]; processes: { user: string; command: string }[] };
    expect(json.running).toBe(true);
    expect(json.hostname).toBe('www.example.test');
    expect(json.services).toEqual([expect.objectContaining({ script: '50apache.sh', status: 'running' })]);
    expect(json.processes.filter((p) => p.command.startsWith('/usr/sbin/apache2')).every((p) => p.user === 'www-data')).toBe(true);
  });

  it('stop leaves no process of the jail, no cgroup, no record', async () => {
    const st = JSON.parse(cmd('status', '--json').stdout) as { cgroups: string[]; pidns: string };
    const stop = cmd('stop');
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(/50apache\.sh stop: ok/);
    expect(jailed(r.root)).toEqual([]);
    for (const d of st.cgroups) expect(fs.existsSync(d), d).toBe(false);
    const nsLeft = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => { try { return fs.readlinkSync(`/proc/${d}/ns/pid`) === st.pidns; } catch { return false; } });
    expect(nsLeft).toEqual([]);
    expect(cmd('status').code).toBe(1);
    await expect(get(`http://127.0.0.1:${port}/`, 0)).rejects.toThrow();
    expect(cmd('stop').stdout).toMatch(/is not running/);
  });

  it('a failing rc script is reported with its output, and the others still start', async () => {
    const broken = path.join(r.root, 'etc/rc.d/40broken.sh');
    fs.writeFileSync(broken, '#!/bin/sh\necho "broken: cannot start $1" >&2\nexit 3\n', { mode: 0o755 });
    try {
      const boot = cmd('boot');
      expect(boot.code).toBe(1);
      expect(boot.stderr).toMatch(/40broken\.sh start failed \(exit status 3\); its output:\n {2}\| broken: cannot start start/);
      expect(boot.stdout).toMatch(/50apache\.sh start: ok/);
      expect(boot.stdout).toMatch(/1 started, 0 already running, 1 failed/);
      expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200);
      expect(cmd('status').stdout).toMatch(/40broken\.sh\s+failed to start/);
    } finally {
      fs.rmSync(broken);
      expect(cmd('stop').code).toBe(0);
    }
  });

  it('after the README\'s chroot by hand, boot names the root-owned log Apache cannot open, and boots once it is www-data\'s', async () => {
    const log = path.join(r.root, 'var/log/apache2');
    for (const f of fs.readdirSync(log)) fs.rmSync(path.join(log, f));
    const apache = (k: string) => spawnSync('chroot', [r.root, '/usr/sbin/apache2', '-f', '/etc/apache2/apache2.conf', '-k', k]);
    expect(apache('start').status).toBe(0);
    expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200);
    expect(apache('stop').status).toBe(0);
    for (let i = 0; i < 50 && jailed(r.root).length; i++) await new Promise((ok) => setTimeout(ok, 100));
    expect(fs.statSync(path.join(log, 'error.log')).uid).toBe(0);
    const boot = cmd('boot');
    expect(boot.code).toBe(1);
    expect(boot.stderr).toContain(`jail: ${log}/error.log is root's (mode 0644) in a directory www-data writes to, so the service, which runs as www-data, cannot open it; ` +
      `a run as root (a chroot by hand?) left it. Give it to www-data (chown 33:33 ${log}/error.log), then boot again\n`);
    expect(cmd('stop').code).toBe(0);
    // The README's way out.
    expect(spawnSync('chown', ['-R', '33:33', log]).status).toBe(0);
    const again = cmd('boot');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/root's/);
    expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200);
    expect(cmd('stop').code).toBe(0);
  });

  it('a port below 1024 on the host network: apache gets CAP_NET_BIND_SERVICE alone, never root', async () => {
    const high = port;
    port = await freePort(true);
    try {
      expect(make().code).toBe(0);
      const boot = cmd('boot');
      expect(boot.code, boot.stderr).toBe(0);
      expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200);
      const procs = jailed(r.root);
      expect(procs.length).toBeGreaterThan(0);
      for (const p of procs) {
        expect(p.uid).toBe(33);
        expect(p.capEff).toBe('0000000000000400'); // CAP_NET_BIND_SERVICE = 10
      }
      expect(cmd('stop').code).toBe(0);
    } finally {
      port = high;
      expect(make().code).toBe(0);
    }
  });

  it('stop ends everything after `rm -fr /` inside the jail', async () => {
    expect(cmd('boot').code).toBe(0);
    const rm = cmd('run', '--', '/usr/bin/rm', '-fr', '/');
    expect(rm.code).not.toBe(0); // the jail user may delete only its own files
    expect(fs.existsSync(path.join(r.root, 'usr/sbin/apache2'))).toBe(true);
    expect(jailed(r.root).length).toBeGreaterThan(0);
    const stop = cmd('stop');
    expect(stop.code, stop.stderr).toBe(0);
    expect(jailed(r.root)).toEqual([]);
  });

  it('stop ends everything after the tree is deleted from the host (rm -rf ROOT/*)', async () => {
    expect(make().code).toBe(0);
    expect(cmd('boot').code).toBe(0);
    expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200);
    for (const name of fs.readdirSync(r.root)) fs.rmSync(path.join(r.root, name), { recursive: true, force: true });
    expect(jailed(r.root).length).toBeGreaterThan(0);
    const stop = r.jail('stop', `ROOT=${r.root}`);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stderr).toMatch(/50apache\.sh is no longer in .*\/etc\/rc\.d; its processes are ended below/);
    expect(jailed(r.root)).toEqual([]);
  });
});

describe.skipIf(!isRoot || !hasApache || !hasPids)('jail boot of the default jail built with SHELL=no', () => {
  let r: Rig;
  afterAll(() => {
    r.jail('stop', `ROOT=${r.root}`);
    for (const p of jailed(r.root)) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    r.cleanup();
  });

  it('starts apache: the rc script\'s /bin/sh comes with the service, not with the shell tools', async () => {
    r = rig();
    const port = await freePort();
    const args = ['-f', r.repoJailfile('jailfile.ts'), `ROOT=${r.root}`, `PORT=${port}`, 'SHELL=no'];
    const built = r.jail('make', ...args);
    expect(built.code, built.stderr).toBe(0);
    expect(fs.existsSync(r.root + '/usr/bin/ls')).toBe(false);
    const boot = r.jail('boot', ...args);
    expect(boot.code, boot.stderr + boot.stdout).toBe(0);
    expect(boot.stdout).toMatch(/50apache\.sh start: ok/);
    expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200);
    const stop = r.jail('stop', ...args);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stderr).not.toMatch(/failed/);
    expect(jailed(r.root)).toEqual([]);
  });
});

describe.skipIf(!isRoot || !hasApache || !hasIp || !hasPids)('jail boot with a network of its own', () => {
  let r: Rig;
  let subnet: string;

  beforeAll(() => {
    // A /24 in 10.213.0.0/16 that no interface of this host has: the test assigns both ends itself.
    const used = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
    let n = 20 + (process.pid % 200);
    while (used.includes(`10.213.${n}.`)) n = (n + 1) % 250;
    subnet = `10.213.${n}`;
    r = rig();
    fs.mkdirSync(path.join(r.dir, 'base'));
    fs.copyFileSync(path.join(REPO, 'jailfile.ts'), path.join(r.dir, 'base', 'jailfile.ts'));
    r.jailfile(`import { defineJail, dir, runtime } from 'jail';
import base from './base/jailfile.ts';
export default defineJail(async (vars) => [
  await base(vars),
  dir('/proc'),
  runtime({ network: { address: '${subnet}.2/24' }, proc: true }),
]);
`);
    const res = r.jail('make', `ROOT=${r.root}`, `ADDR=${subnet}.2`, 'PORT=80');
    expect(res.code, res.stderr).toBe(0);
  });
  afterAll(() => {
    r.jail('stop', `ROOT=${r.root}`);
    r.cleanup();
  });

  it('apache answers on port 80 of the jail\'s own address, not on the host\'s loopback, with no capability', async () => {
    const loopbackFree = await new Promise<boolean>((ok) => {
      const s = net.createServer();
      s.once('error', () => ok(false));
      s.listen(80, '127.0.0.1', () => s.close(() => ok(true)));
    });
    const boot = r.jail('boot', `ROOT=${r.root}`, `ADDR=${subnet}.2`, 'PORT=80');
    expect(boot.code, boot.stderr + boot.stdout).toBe(0);
    const res = await get(`http://${subnet}.2/`);
    expect(res.status).toBe(200);
    if (loopbackFree) await expect(get('http://127.0.0.1:80/', 0)).rejects.toThrow();
    const procs = jailed(r.root);
    expect(procs.length).toBeGreaterThan(0);
    for (const p of procs) {
      expect(p.uid).toBe(33);
      expect(p.capEff).toBe('0000000000000000');
    }
    const st = JSON.parse(r.jail('status', `ROOT=${r.root}`, '--json').stdout) as { init: number; network: { address: string; hostAddress: string; hostInterface: string } };
    // The jail's /proc is mounted in its own mount namespace only: the host never sees it.
    expect(fs.readFileSync(`/proc/${st.init}/mountinfo`, 'utf8')).toContain(` ${r.root}/proc `);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`${r.root}/proc`);
    expect(st.network).toEqual({ address: `${subnet}.2/24`, hostAddress: `${subnet}.1/24`, hostInterface: expect.stringMatching(/^vjh/) });
    // jail run joins the booted jail's network, and sees its /proc: its own namespace's processes only.
    const ls = r.jail('run', `ROOT=${r.root}`, `ADDR=${subnet}.2`, 'PORT=80', '--', '/bin/sh', '-c', 'echo /proc/[0-9]*; cat /proc/net/fib_trie');
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.split('\n')[0]).toBe('/proc/1 /proc/2 /proc/3'); // the init, its sleep, and this shell
    expect(ls.stdout).toContain(`${subnet}.2`);
    const stop = r.jail('stop', `ROOT=${r.root}`);
    expect(stop.code, stop.stderr).toBe(0);
    expect(fs.existsSync(`/sys/class/net/${st.network.hostInterface}`)).toBe(false);
    expect(fs.existsSync(`/proc/${st.init}/mountinfo`) && fs.readFileSync(`/proc/${st.init}/mountinfo`, 'utf8').includes(`${r.root}/proc`)).toBe(false);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`jail-${st.network.hostInterface.slice(3)}`);
    expect(jailed(r.root)).toEqual([]);
  });
});

// A jail of a few files: one service (a sleep left running by its rc script), no apache.
function smallJail(r: Rig, opts: { runtime?: string; limits?: string; extra?: string } = {}): { code: number; stdout: string; stderr: string } {
  r.jailfile(`import { defineJail, dir, elf, link, text, users, runtime } from 'jail';
import { devices, service } from 'jail/recipes';
export default defineJail(() => [
  dir(['/etc', '/usr/bin']),
  devices('null'),
  dir('/tmp', { mode: 0o1777 }),
  users({ svc: { uid: 4242, gid: 4242, home: '/tmp' } }),
  elf('/usr/bin/sleep'),
  service('sleeper', { start: ['/bin/sh', '-c', 'sleep 1000 &'], stop: ['/bin/sh', '-c', 'kill -TERM -1; exit 0'], ${opts.limits ? `limits: ${opts.limits}` : ''} }),
  ${opts.runtime ? `runtime(${opts.runtime}),` : ''}
  ${opts.extra ?? ''}
]);
`);
  const res = r.jail('make', `ROOT=${r.root}`);
  expect(res.code, res.stderr).toBe(0);
  return res;
}

/** The CLI with a deadline: a command that hangs is killed and reported as such (code null). */
function jailWithin(r: Rig, ms: number, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const p = spawnSync(process.execPath, [path.join(REPO, 'dist', 'tasks', 'cli.js'), ...args], { cwd: r.dir, encoding: 'utf8', timeout: ms, killSignal: 'SIGKILL' });
  return { code: p.status, stdout: p.stdout, stderr: p.stderr };
}

/** Processes in the cgroups of ROOT's jail (its init is the host's sh, not chrooted: jailed() misses it). */
const inJailCgroup = (root: string) => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
  try { return fs.readFileSync(`/proc/${d}/cgroup`, 'utf8').includes(`/jail-${rootKey(root)}/`); } catch { return false; }
}).map(Number);

/** RLIMIT_CPU (soft, hard) of a live process, as /proc shows it. */
function cpuLimit(pid: number): [string, string] {
  const m = /^Max cpu time\s+(\S+)\s+(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'))!;
  return [m[1]!, m[2]!];
}

const routesFor = (subnet: string) => execFileSync('ip', ['-4', '-o', 'route', 'show', 'table', 'main'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(subnet + ' '));

describe.skipIf(!isRoot || !hasPids)('jail boot of a small jail', () => {
  const rigs: Rig[] = [];
  const fresh = () => { const r = rig(); rigs.push(r); return r; };
  afterAll(() => {
    for (const r of rigs) {
      r.jail('stop', `ROOT=${r.root}`);
      for (const p of jailed(r.root)) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      r.cleanup();
    }
  });

  it.skipIf(!hasIp)('refuses a network address or subnet another running jail has, naming that jail, and boots once it is stopped', () => {
    const a = fresh(), b = fresh(), c = fresh();
    smallJail(a, { runtime: "{ network: { address: '10.200.120.2/24' } }" });
    smallJail(b, { runtime: "{ network: { address: '10.200.120.2/24' } }" });
    smallJail(c, { runtime: "{ network: { address: '10.200.120.77/24', hostAddress: '10.200.120.70/24' } }" });
    const bootA = a.jail('boot', `ROOT=${a.root}`);
    expect(bootA.code, bootA.stderr).toBe(0);
    expect(routesFor('10.200.120.0/24')).toHaveLength(1);
    for (const [r, what] of [[b, 'the address 10.200.120.2/24'], [c, 'the subnet 10.200.120.0/24']] as const) {
      const boot = r.jail('boot', `ROOT=${r.root}`);
      expect(boot.code, boot.stderr + boot.stdout).toBe(2);
      expect(boot.stderr).toContain(`${what} is already used by the jail at ${a.root}`);
      expect(boot.stderr).toMatch(/runtime\(\{ network \}\)/);
      expect(boot.stdout).toBe('');
      expect(fs.existsSync(`/run/jail/${rootKey(r.root)}`)).toBe(false);
      expect(jailed(r.root)).toEqual([]);
    }
    // Nothing of the refused jails reached the host: still one route, on the first jail's interface.
    expect(routesFor('10.200.120.0/24')).toHaveLength(1);
    expect(a.jail('stop', `ROOT=${a.root}`).code).toBe(0);
    const bootB = b.jail('boot', `ROOT=${b.root}`);
    expect(bootB.code, bootB.stderr).toBe(0);
    expect(b.jail('stop', `ROOT=${b.root}`).code).toBe(0);
    expect(routesFor('10.200.120.0/24')).toEqual([]);
  });

  it.skipIf(!hasIp)('refuses a subnet the host already has on an interface of its own', () => {
    const r = fresh();
    smallJail(r, { runtime: "{ network: { address: '10.200.121.2/24' } }" });
    execFileSync('ip', ['link', 'add', 'jtboot121', 'type', 'veth', 'peer', 'name', 'jtboot121p']);
    try {
      execFileSync('ip', ['addr', 'add', '10.200.121.200/24', 'dev', 'jtboot121']);
      const boot = r.jail('boot', `ROOT=${r.root}`);
      expect(boot.code, boot.stderr + boot.stdout).toBe(2);
      expect(boot.stderr).toContain('the subnet 10.200.121.0/24 is already used by the host (10.200.121.200/24 on jtboot121)');
      expect(routesFor('10.200.121.0/24').filter((l) => l.includes(' vjh'))).toEqual([]);
      expect(fs.existsSync(`/run/jail/${rootKey(r.root)}`)).toBe(false);
    } finally {
      execFileSync('ip', ['link', 'delete', 'jtboot121']);
    }
  });

  it('a service\'s own CPU limit above runtime\'s holds: the service runs under it, other commands under runtime\'s', async () => {
    const r = fresh();
    smallJail(r, { limits: '{ cpu: 600 }' });
    const boot = r.jail('boot', `ROOT=${r.root}`);
    expect(boot.code, boot.stderr).toBe(0);
    const sleeper = jailed(r.root).find((p) => p.comm === 'sleep')!;
    expect(cpuLimit(sleeper.pid)).toEqual(['600', '600']);
    expect(fs.readFileSync(path.join(`/run/jail/${rootKey(r.root)}`, 'log', '50sleeper.log'), 'utf8')).not.toMatch(/ulimit/);
    // A command run in the jail gets runtime's 300 s (the default) as its limit.
    const run = r.jail('run', `ROOT=${r.root}`, '--', '/bin/sh', '-c', 'ulimit -S -t');
    expect(run.stdout).toBe('300\n');
    expect(r.jail('stop', `ROOT=${r.root}`).code).toBe(0);

    smallJail(r, { limits: "{ cpu: 'unlimited' }", runtime: '{ cpu: 60 }' });
    expect(r.jail('boot', `ROOT=${r.root}`).code).toBe(0);
    expect(cpuLimit(jailed(r.root).find((p) => p.comm === 'sleep')!.pid)).toEqual(['unlimited', 'unlimited']);
    expect(r.jail('run', `ROOT=${r.root}`, '--', '/bin/sh', '-c', 'ulimit -S -t').stdout).toBe('60\n');
    expect(r.jail('stop', `ROOT=${r.root}`).code).toBe(0);
  });

  it('runtime({ cpu: 5 }) holds for a service without a CPU limit of its own; a service\'s lower one holds for it', () => {
    const r = fresh();
    smallJail(r, { runtime: '{ cpu: 5 }' });
    expect(r.jail('boot', `ROOT=${r.root}`).code).toBe(0);
    expect(cpuLimit(jailed(r.root).find((p) => p.comm === 'sleep')!.pid)).toEqual(['5', '5']);
    expect(r.jail('stop', `ROOT=${r.root}`).code).toBe(0);
    smallJail(r, { runtime: '{ cpu: 5 }', limits: '{ cpu: 2 }' });
    expect(r.jail('boot', `ROOT=${r.root}`).code).toBe(0);
    expect(cpuLimit(jailed(r.root).find((p) => p.comm === 'sleep')!.pid)).toEqual(['2', '2']);
    expect(r.jail('run', `ROOT=${r.root}`, '--', '/bin/sh', '-c', 'ulimit -H -t').stdout).toBe('5\n');
    expect(r.jail('stop', `ROOT=${r.root}`).code).toBe(0);
  });

  it('--timeout outside 1 to 2147483 s is refused before anything starts; the largest boots and stops as usual', () => {
    const r = fresh();
    smallJail(r);
    for (const t of ['0', '0.5', '2147484', '1000000000', 'soon']) {
      const boot = r.jail('boot', `ROOT=${r.root}`, '--timeout', t);
      expect(boot.code, t).toBe(2);
      expect(boot.stdout).toBe('');
      expect(boot.stderr).toBe(`jail: error: --timeout takes a number of seconds from 1 to 2147483 (about 24 days), got ${JSON.stringify(t)}; jail boot did nothing.\n`);
      expect(jailed(r.root)).toEqual([]);
      expect(fs.existsSync(`/run/jail/${rootKey(r.root)}`)).toBe(false);
    }
    const boot = r.jail('boot', `ROOT=${r.root}`, '--timeout', '2147483');
    expect(boot.code, boot.stderr).toBe(0);
    expect(boot.stderr).toBe('');
    expect(boot.stdout).toMatch(/1 started, 0 already running, 0 failed/);
    const refused = r.jail('stop', `ROOT=${r.root}`, '--timeout', '2147484');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/jail stop did nothing/);
    expect(jailed(r.root).some((p) => p.comm === 'sleep')).toBe(true);
    const stop = r.jail('stop', `ROOT=${r.root}`, '--timeout', '2147483');
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(/50sleeper\.sh stop: ok/);
  });

  it('a service limit that cannot be set fails its start, with the shell\'s complaint; boot does not say ok', () => {
    const r = fresh();
    // More open files than the kernel allows any process (fs.nr_open): ulimit -n must fail.
    const nrOpen = Number(fs.readFileSync('/proc/sys/fs/nr_open', 'utf8'));
    smallJail(r, { limits: `{ files: ${nrOpen + 1} }` });
    const boot = r.jail('boot', `ROOT=${r.root}`);
    expect(boot.code, boot.stdout).toBe(1);
    expect(boot.stdout).not.toMatch(/50sleeper\.sh start: ok/);
    expect(boot.stderr).toMatch(/50sleeper\.sh start failed \(exit status \d+\); its output:\n {2}\| .*ulimit/);
    expect(jailed(r.root).filter((p) => p.comm === 'sleep')).toEqual([]);
    expect(r.jail('stop', `ROOT=${r.root}`).code).toBe(0);
  });

  it('an etc/hostname boot cannot use (not a hostname, a symlink, a directory): make warns, boot exits 2 at once and leaves nothing running', () => {
    const cases = [
      { extra: "text('/etc/hostname', 'my_host\\n'),", make: /text\("\/etc\/hostname"\): the jail's etc\/hostname says "my_host", which is not a hostname/, boot: /etc\/hostname \(.*\) says "my_host", which is not a hostname/ },
      { extra: "link('/etc/hostname', '/etc/passwd'),", make: /link\("\/etc\/hostname".*\): the jail's etc\/hostname is a symlink/, boot: /etc\/hostname \(.*\) is a symlink/ },
      { extra: "dir('/etc/hostname'),", make: /dir\("\/etc\/hostname"\): the jail's etc\/hostname is not a regular file/, boot: /etc\/hostname \(.*\) is not a regular file/ },
    ];
    for (const c of cases) {
      const r = fresh();
      const made = smallJail(r, { extra: c.extra });
      expect(made.stderr, c.extra).toMatch(c.make);
      expect(made.stderr).toContain('jail boot and jail run refuse to start the jail with it');
      const boot = jailWithin(r, 20_000, 'boot', `ROOT=${r.root}`);
      expect(boot.code, c.extra + boot.stderr).toBe(2);
      expect(boot.stdout).toBe('');
      // One paragraph: what is wrong, where, what to do.
      expect(boot.stderr.trim().split('\n')).toHaveLength(1);
      expect(boot.stderr).toMatch(c.boot);
      expect(boot.stderr).toContain("text('/etc/hostname', 'www.example.test\\n')");
      expect(boot.stderr).toMatch(/Nothing was started\.\n$/);
      expect(inJailCgroup(r.root)).toEqual([]);
      expect(jailed(r.root)).toEqual([]);
      expect(fs.existsSync(`/run/jail/${rootKey(r.root)}`)).toBe(false);
      expect(fs.existsSync(path.join(pidsBase!, `jail-${rootKey(r.root)}`))).toBe(false);
      expect(r.jail('status', `ROOT=${r.root}`).code).toBe(1);
    }
  });

  it('boot of a ROOT that does not exist leaves nothing behind in /run/jail', () => {
    const r = fresh();
    smallJail(r);
    const missing = path.join(path.dirname(r.root), 'nonexistent');
    const boot = r.jail('boot', `ROOT=${missing}`);
    expect(boot.code).toBe(2);
    expect(boot.stderr).toMatch(/does not exist/);
    expect(fs.existsSync(`/run/jail/${rootKey(missing)}`)).toBe(false);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('make clean is refused while the jail runs; make and rebuild are not; clean works once it is stopped', () => {
    const r = fresh();
    smallJail(r);
    expect(r.jail('boot', `ROOT=${r.root}`).code).toBe(0);
    const init = (JSON.parse(r.jail('status', `ROOT=${r.root}`, '--json').stdout) as { init: number }).init;
    const before = fingerprint(r.root);
    for (const extra of [[], ['-n']]) {
      const clean = r.jail('make', `ROOT=${r.root}`, 'clean', ...extra);
      expect(clean.code, clean.stdout).toBe(2);
      expect(clean.stderr).toContain(`the jail at ${r.root} is running (pid ${init}); stop it with \`jail stop ROOT=${r.root}\` first`);
    }
    expect(fingerprint(r.root)).toEqual(before);
    expect(r.jail('status', `ROOT=${r.root}`).code).toBe(0);
    expect(r.jail('make', `ROOT=${r.root}`).code).toBe(0);
    expect(r.jail('make', `ROOT=${r.root}`, 'rebuild').code).toBe(0);
    expect(jailed(r.root).some((p) => p.comm === 'sleep')).toBe(true);
    expect(r.jail('stop', `ROOT=${r.root}`).code).toBe(0);
    // Not booted, but a command runs in it (jail run, or a chroot by hand): refused too.
    const sleeper = spawn('chroot', [r.root, '/bin/sleep', '30'], { stdio: 'ignore' });
    try {
      const deadline = Date.now() + 5000;
      while (!jailed(r.root).some((p) => p.comm === 'sleep') && Date.now() < deadline) spawnSync('sleep', ['0.05']);
      const still = fingerprint(r.root);
      const busy = r.jail('make', `ROOT=${r.root}`, 'clean');
      expect(busy.code, busy.stdout).toBe(2);
      expect(busy.stderr).toContain(`a process runs in the jail at ${r.root} (pid ${sleeper.pid}`);
      expect(fingerprint(r.root)).toEqual(still);
    } finally {
      sleeper.kill('SIGKILL');
    }
    const deadline = Date.now() + 5000;
    while (jailed(r.root).length && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    const clean = r.jail('make', `ROOT=${r.root}`, 'clean');
    expect(clean.code, clean.stderr).toBe(0);
    expect(fs.existsSync(path.join(r.root, 'etc/rc.d/50sleeper.sh'))).toBe(false);
  });

  it('one jail however ROOT is spelled: booted through a symlink, it is running, booted once, and stopped by its real name', () => {
    const r = fresh();
    smallJail(r);
    const link = path.join(r.outside, 'link');
    fs.symlinkSync(path.dirname(r.root), link);
    const viaLink = path.join(link, path.basename(r.root));
    const boot = r.jail('boot', `ROOT=${viaLink}`);
    expect(boot.code, boot.stderr).toBe(0);
    const status = r.jail('status', `ROOT=${r.root}`);
    expect(status.code, status.stdout).toBe(0);
    expect(status.stdout).toMatch(/is running since/);
    expect(status.stdout).toMatch(/50sleeper\.sh\s+running \(1 process\)/);
    const again = r.jail('boot', `ROOT=${r.root}`);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/0 started, 1 already running, 0 failed/);
    expect(jailed(r.root).filter((p) => p.comm === 'sleep')).toHaveLength(1);
    // A command run through the link joins the booted jail's cgroup, as one run by the real name does.
    const service = jailed(r.root).find((p) => p.comm === 'sleep')!.pid;
    const run = r.jailAsync('run', `ROOT=${viaLink}`, '--', '/usr/bin/sleep', '30');
    try {
      const deadline = Date.now() + 10_000;
      let ran: number | undefined;
      while (ran === undefined && Date.now() < deadline) {
        ran = jailed(r.root).find((p) => p.comm === 'sleep' && p.pid !== service)?.pid;
        if (ran === undefined) spawnSync('sleep', ['0.05']);
      }
      expect(ran).toBeDefined();
      expect(fs.readFileSync(`/proc/${ran}/cgroup`, 'utf8')).toContain(`/jail-${rootKey(r.root)}/run-${run.pid}`);
    } finally {
      run.kill('SIGTERM');
    }
    // One record, one lock, one set of cgroups: the real path's.
    const records = fs.readdirSync('/run/jail').filter((d) => d.includes(path.basename(path.dirname(r.root))));
    expect(records).toEqual([rootKey(r.root)]);
    const clean = r.jail('make', `ROOT=${viaLink}`, 'clean');
    expect(clean.code).toBe(2);
    expect(clean.stderr).toMatch(/Refusing `clean`: the jail at .* is running/);
    const st = JSON.parse(r.jail('status', `ROOT=${viaLink}`, '--json').stdout) as { running: boolean; init: number; cgroups: string[] };
    expect(st.running).toBe(true);
    const supervisor = Number(fs.readFileSync(`/proc/${st.init}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    const stop = r.jail('stop', `ROOT=${r.root}`);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(/50sleeper\.sh stop: ok/);
    expect(jailed(r.root)).toEqual([]);
    // The supervisor (the host-side unshare holding the namespaces) went with it.
    expect(fs.existsSync(`/proc/${supervisor}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${supervisor}/status`, 'utf8'))).toBe(false);
    for (const d of st.cgroups) expect(fs.existsSync(d), d).toBe(false);
    expect(fs.existsSync(`/run/jail/${rootKey(r.root)}`)).toBe(false);
    expect(r.jail('status', `ROOT=${viaLink}`).code).toBe(1);
  });

  it('stop after `rm -rf ROOT` ends a jail booted through a symlink, named by what is left of its real path', () => {
    const r = fresh();
    smallJail(r);
    const link = path.join(r.outside, 'link');
    fs.symlinkSync(path.dirname(r.root), link);
    const viaLink = path.join(link, path.basename(r.root));
    expect(r.jail('boot', `ROOT=${viaLink}`).code).toBe(0);
    const st = JSON.parse(r.jail('status', `ROOT=${viaLink}`, '--json').stdout) as { init: number; cgroups: string[] };
    fs.rmSync(r.root, { recursive: true, force: true });
    // Found by the real path that is gone, and said to run in a deleted tree.
    const status = r.jail('status', `ROOT=${r.root}`);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain(`ROOT=${r.root} no longer exists`);
    const stop = r.jail('stop', `ROOT=${r.root}`);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(/stopped .*: 0 services stopped, \d+ processes ended/);
    expect(jailed(`${r.root} (deleted)`)).toEqual([]);
    expect(fs.existsSync(`/proc/${st.init}`)).toBe(false);
    for (const d of st.cgroups) expect(fs.existsSync(d), d).toBe(false);
    expect(fs.readdirSync('/run/jail').filter((d) => d.includes(path.basename(path.dirname(r.root))))).toEqual([]);
  });

  it('after `rm -rf ROOT` and a rebuild, status, boot and make say the jail runs in the deleted tree and must be restarted', () => {
    const r = fresh();
    smallJail(r);
    expect(r.jail('boot', `ROOT=${r.root}`).code).toBe(0);
    const service = jailed(r.root).find((p) => p.comm === 'sleep')!.pid;
    fs.rmSync(r.root, { recursive: true, force: true });
    const gone = r.jail('status', `ROOT=${r.root}`);
    expect(gone.code, gone.stdout).toBe(1);
    expect(gone.stdout).toContain(`runs in a deleted tree: ROOT=${r.root} no longer exists`);
    const rebuild = r.jail('make', `ROOT=${r.root}`, 'rebuild');
    expect(rebuild.code, rebuild.stderr).toBe(0);
    const restart = `Restart the jail: \`jail stop ROOT=${r.root} && jail boot ROOT=${r.root}\``;
    expect(rebuild.stderr).toContain(`jail: warning: The jail at ${r.root} runs in a deleted tree`);
    expect(rebuild.stderr).toContain(restart);
    expect(fs.readlinkSync(`/proc/${service}/root`)).toBe(`${r.root} (deleted)`);
    const status = r.jail('status', `ROOT=${r.root}`);
    expect(status.code, status.stdout).toBe(1);
    expect(status.stdout).toContain(`is not the directory the jail was booted in (it was deleted and built again), and its processes (such as pid ${service})`);
    expect(status.stdout).toContain(restart);
    const json = JSON.parse(r.jail('status', `ROOT=${r.root}`, '--json').stdout) as { running: boolean; replaced?: string };
    expect(json.running).toBe(false);
    expect(json.replaced).toContain(restart);
    const boot = r.jail('boot', `ROOT=${r.root}`);
    expect(boot.code, boot.stdout).toBe(2);
    expect(boot.stdout).toBe('');
    expect(boot.stderr).toContain(`${restart}. Nothing was started.`);
    expect(jailed(r.root)).toEqual([]);
    expect(jailed(`${r.root} (deleted)`).map((p) => p.pid)).toEqual([service]);
    // Restarted as told, it runs in ROOT as it is now, and all is well again.
    expect(r.jail('stop', `ROOT=${r.root}`).code).toBe(0);
    expect(r.jail('boot', `ROOT=${r.root}`).code).toBe(0);
    const again = r.jail('status', `ROOT=${r.root}`);
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).not.toMatch(/deleted tree/);
    expect(r.jail('make', `ROOT=${r.root}`).stderr).not.toMatch(/deleted tree/);
    expect(r.jail('stop', `ROOT=${r.root}`).code).toBe(0);
  });

  it('status and stop know a jail by a ROOT that is a symlink to it, dangling after `rm -rf` too; boot and make refuse such a ROOT', () => {
    const r = fresh();
    smallJail(r);
    const link = path.join(r.outside, 'root-link');
    fs.symlinkSync(r.root, link);
    const boot = r.jail('boot', `ROOT=${link}`);
    expect(boot.code).toBe(2);
    expect(boot.stderr).toMatch(/is a symlink .*name the real directory/);
    expect(r.jail('make', `ROOT=${link}`).code).toBe(2);
    expect(r.jail('boot', `ROOT=${r.root}`).code).toBe(0);
    const status = r.jail('status', `ROOT=${link}`);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`jail: ${r.root} is running since`);
    expect(status.stdout).toMatch(/50sleeper\.sh\s+running \(1 process\)/);
    expect((JSON.parse(r.jail('status', `ROOT=${link}`, '--json').stdout) as { root: string }).root).toBe(r.root);
    const stop = r.jail('stop', `ROOT=${link}`);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(/50sleeper\.sh stop: ok/);
    expect(jailed(r.root)).toEqual([]);
    expect(r.jail('status', `ROOT=${link}`).code).toBe(1);
    // The link left dangling by `rm -rf ROOT` still names the jail that runs in the deleted tree.
    expect(r.jail('boot', `ROOT=${r.root}`).code).toBe(0);
    fs.rmSync(r.root, { recursive: true, force: true });
    expect(r.jail('status', `ROOT=${link}`).stdout).toContain(`ROOT=${r.root} no longer exists`);
    const gone = r.jail('stop', `ROOT=${link}`);
    expect(gone.code, gone.stderr).toBe(0);
    expect(gone.stdout).toMatch(/processes ended/);
    expect(jailed(`${r.root} (deleted)`)).toEqual([]);
    expect(fs.existsSync(`/run/jail/${rootKey(r.root)}`)).toBe(false);
  });

  it('a record an earlier jail wrote under the key of ROOT as spelled (through a symlink) is still found by the real name', () => {
    const r = fresh();
    smallJail(r);
    const link = path.join(r.outside, 'link');
    fs.symlinkSync(path.dirname(r.root), link);
    const viaLink = path.join(link, path.basename(r.root));
    expect(r.jail('boot', `ROOT=${r.root}`).code).toBe(0);
    // What the earlier key made of a boot through the link: the record under that spelling's key.
    const old = `/run/jail/${rootKey(viaLink)}`;
    fs.renameSync(`/run/jail/${rootKey(r.root)}`, old);
    const state = JSON.parse(fs.readFileSync(`${old}/state.json`, 'utf8')) as { root: string };
    fs.writeFileSync(`${old}/state.json`, JSON.stringify({ ...state, root: viaLink }));
    expect(r.jail('status', `ROOT=${r.root}`).stdout).toMatch(/is running since/);
    const stop = r.jail('stop', `ROOT=${r.root}`);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(/50sleeper\.sh stop: ok/);
    expect(jailed(r.root)).toEqual([]);
    expect(fs.existsSync(old)).toBe(false);
  });

  it('a flag or target of make\'s neither boots nor stops: `boot clean` and `boot -n` start nothing, `stop -n` ends nothing', () => {
    const r = fresh();
    smallJail(r);
    for (const extra of [['clean'], ['-n']]) {
      const boot = r.jail('boot', `ROOT=${r.root}`, ...extra);
      expect(boot.code, extra.join(' ')).toBe(2);
      expect(boot.stderr).toMatch(/^jail: error: jail boot does not take /);
      expect(jailed(r.root)).toEqual([]);
      expect(fs.existsSync(`/run/jail/${rootKey(r.root)}`)).toBe(false);
    }
    expect(r.jail('boot', `ROOT=${r.root}`).code).toBe(0);
    const running = jailed(r.root).map((p) => p.pid).sort();
    const stop = r.jail('stop', `ROOT=${r.root}`, '-n');
    expect(stop.code).toBe(2);
    expect(stop.stderr).toMatch(/^jail: error: jail stop does not take -n \(jail make's\), and did nothing/);
    expect(jailed(r.root).map((p) => p.pid).sort()).toEqual(running);
    expect(r.jail('status', `ROOT=${r.root}`).code).toBe(0);
    expect(r.jail('stop', `ROOT=${r.root}`).code).toBe(0);
    expect(jailed(r.root)).toEqual([]);
  });

  it('without ROOT each command names itself in the example', () => {
    const r = fresh();
    smallJail(r);
    const extra: Record<string, string[]> = { pack: ['-o', path.join(r.outside, 'x.tar')], run: ['--', '/bin/true'], trace: ['--', '/bin/true'] };
    for (const c of ['boot', 'status', 'stop', 'check', 'make', 'watch', 'pack', 'run', 'trace']) {
      const res = r.jail(c, ...(extra[c] ?? []));
      expect(res.code, c).toBe(2);
      expect(res.stderr, c).toContain(`ROOT is required: name the jail directory as a make variable, e.g. \`jail ${c} ROOT=/var/virtual/apache\``);
    }
  });
});
