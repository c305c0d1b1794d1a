// Starting and ending a jail's namespaces, and running commands in them. The commands
// (boot, stop, status, run) decide what to run; this module knows how.

import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { exitStatus, run, spawnHost, type StdioSlot } from '../shell.js';
import { JailFailure, jailError } from '../result.js';
import { jailKey, realRoot } from '../manifest.js';
import { commandChain, initChain, initUidFor, jailEnv } from './chain.js';
import * as cgroup from './cgroup.js';
import * as netns from './netns.js';
import { alive, childrenOf, inPidNs, info, kill, nsOf, procId, rootedAt, waitFor, type ProcId } from './procs.js';
import { isJailDir, jailHostname, jailUser, type JailUser } from './jaildata.js';
import { hostTools, type Tools } from './tools.js';
import { DEFAULTS, type RunConfig } from './config.js';
import { allStates, dropState, loadState, lockNetwork, type JailState } from './state.js';

export interface Jail {
  root: string;
  key: string;
  tools: Tools;
  config: RunConfig;
  user: JailUser;
  cgroup?: cgroup.CgroupLayout;
  net?: netns.NetState;
  /** True when this command set the network namespace up (and should take it down if nothing else uses it). */
  netCreated?: boolean;
  /** Without a network of the jail's: a namespace of the init's own with loopback alone, not the host's (install steps). */
  loopbackOnly?: boolean;
  /** The UTS namespace's name, read from ROOT before anything starts (prepare). */
  hostname?: string;
}

export interface Instance {
  supervisor: ProcId;
  init: ProcId;
  initUid: number;
  pidns: string;
  hostname: string;
}

const fail = (code: string, message: string): never => { throw new JailFailure([jailError(code, message)]); };

/**
 * Everything a jail needs before a process starts: tools, the user, the cgroup plan. Reads
 * ROOT as data only. The jail's root is ROOT's real path: processes are found by the root
 * /proc shows for them, which is that path, whatever spelling of ROOT started them.
 */
export function prepare(root: string, config: RunConfig, userName?: string): Jail {
  if (process.getuid?.() !== 0) fail('not-root', 'jail boot and jail run need root: they chroot, make namespaces and cgroups, and then drop to the jail user.');
  if (!isJailDir(root, '/')) fail('no-root', `ROOT=${root} does not exist or is not a directory; build it first with \`jail make ROOT=${root}\`.`);
  const tools = hostTools({ network: Boolean(config.network), commands: true });
  const user = jailUser(root, userName ?? config.user);
  if (config.proc && !isJailDir(root, '/proc')) fail('no-proc-dir', `runtime({ proc: true }) mounts the jail's own /proc on ${root}/proc, which is not a directory of the jail. Declare it: dir('/proc').`);
  const key = jailKey(root);
  const layout = cgroup.plan(key, { pids: config.pids, memory: config.memory });
  if (!layout && !config.namespaces) fail('no-cgroup', 'runtime({ namespaces: false }) leaves a cgroup as the only way to find and end the jail\'s processes, and no cgroup hierarchy is writable here. Keep the namespaces on.');
  // A bad etc/hostname is refused here, before a cgroup, a network or an init exists.
  const hostname = config.namespaces ? jailHostname(root) : undefined;
  return { root: realRoot(root), key, tools, config, user, cgroup: layout, hostname };
}

/**
 * The jail an install step (chain.ts) runs in: root, namespaces of its own with loopback
 * alone for a network, and the limits the jailfile's runtime() gives what runs in the jail
 * (by default `jail run`'s: 256 processes, 300 s of CPU), the CPU limit raised to the
 * step's timeout when that is longer. Its cgroup is its own, never a booted jail's.
 */
export function prepareInstallStep(root: string, timeoutMs: number, limits: Pick<RunConfig, 'pids' | 'cpu' | 'memory'> = DEFAULTS): Jail {
  const key = jailKey(root);
  const cpu = limits.cpu === undefined ? undefined : Math.max(limits.cpu, Math.ceil(timeoutMs / 1000));
  const config: RunConfig = { proc: false, namespaces: true, pids: limits.pids, cpu, memory: limits.memory };
  return {
    root, key, tools: hostTools({ network: false, installStep: true }), config,
    user: { name: 'root', uid: 0, gid: 0, home: '/' },
    cgroup: cgroup.plan(`install-${key}`, { pids: config.pids, memory: config.memory }),
    loopbackOnly: true,
  };
}

/** Creates the cgroups and writes the limits (idempotent). */
export function setUpCgroup(j: Jail): void {
  if (j.cgroup) cgroup.create(j.cgroup, { pids: j.config.pids, memory: j.config.memory });
}

/**
 * Gives the jail its network, unless another running jail or the host already has its
 * address or subnet: then a JailFailure saying whose, and nothing is set up.
 */
export async function setUpNetwork(j: Jail): Promise<void> {
  const net = j.config.network;
  if (!net) return;
  const lk = await lockNetwork();
  try {
    const { name, hostIf } = netns.netNames(j.key);
    // Up already (a `jail run` of this ROOT holds it): it was checked when it was made.
    if (!netns.exists({ name, file: `/run/netns/${name}`, hostIf, address: net.address, hostAddress: net.hostAddress })) {
      const jails = allStates().filter((s) => realRoot(s.root) !== realRoot(j.root) && s.net && isUp(s)).flatMap((s): netns.NetUse[] => {
        const who = `the jail at ${s.root} (booted ${s.bootedAt}; ${s.net!.address}, host end ${s.net!.hostAddress} on ${s.net!.hostIf})`;
        return [{ cidr: s.net!.address, who, root: s.root }, { cidr: s.net!.hostAddress, who, root: s.root }];
      });
      const c = netns.conflict(net, [...jails, ...await netns.hostUses(j.tools, hostIf)]);
      if (c) {
        const todo = c.use.root
          ? `Give this jail a subnet of its own in runtime({ network: { address } }), or stop the other jail first: \`jail stop ROOT=${c.use.root}\`.`
          : 'Give this jail a subnet the host does not use in runtime({ network: { address } }).';
        fail('network-in-use', `Cannot give the jail at ${j.root} its network: runtime({ network }) ${j.config.networkAt ? `at ${j.config.networkAt} ` : ''}gives it ${net.address} (host end ${net.hostAddress}), but ${c.what}. ` +
          `Two jails, or a jail and the host, on one subnet give the host two routes to it, and one of them cannot be reached. ${todo} Nothing was set up.`);
      }
    }
    const { state, created } = await netns.setUp(j.key, net, j.tools);
    j.net = state;
    j.netCreated = created;
  } finally {
    lk.release();
  }
}

/**
 * Starts the init of a new set of namespaces and waits until it runs as its unprivileged
 * uid; then gives the UTS namespace the jail's hostname (after checking it really is a
 * namespace of its own: the host's name must never be changed by mistake).
 */
export async function startInit(j: Jail, opts: { group: string; log: string; dieWithParent: boolean }): Promise<{ instance: Instance; child: ChildProcess }> {
  const hostname = j.hostname ?? jailHostname(j.root);
  const initUid = initUidFor(j.user.uid);
  const argv = initChain({
    tools: j.tools,
    cgroupProcs: j.cgroup ? cgroup.child(j.cgroup, opts.group) : [],
    netFile: j.net?.file,
    ownNet: j.loopbackOnly,
    procDir: j.config.proc ? path.join(j.root, 'proc') : undefined,
    initUid,
    dieWithParent: opts.dieWithParent,
  });
  fs.mkdirSync(path.dirname(opts.log), { recursive: true, mode: 0o700 });
  const logFd = fs.openSync(opts.log, 'w', 0o600);
  let child: ChildProcess;
  try {
    child = await spawnHost(argv, { stdio: ['ignore', logFd, logFd], detached: true });
  } finally {
    fs.closeSync(logFd);
  }
  const supPid = child.pid;
  if (supPid === undefined) return fail('init-failed', `Cannot start ${argv[0]}.`);
  let initPid: number | undefined;
  try {
    return await initReady(j, child, supPid, initUid, hostname, opts.log, (pid) => { initPid = pid; });
  } catch (err) {
    // Whatever went wrong, nothing of this init stays (a detached child would also keep this process alive).
    kill(supPid);
    if (initPid !== undefined) kill(initPid);
    child.unref();
    throw err;
  }
}

async function initReady(j: Jail, child: ChildProcess, supPid: number, initUid: number, hostname: string, log: string, found: (pid: number) => void): Promise<{ instance: Instance; child: ChildProcess }> {
  let exited = false;
  child.once('exit', () => { exited = true; });
  const supervisor = procId(supPid);
  let initPid: number | undefined;
  const ready = await waitFor(() => {
    if (exited) return true;
    initPid = childrenOf(supPid)[0];
    if (initPid !== undefined) found(initPid);
    const i = initPid !== undefined ? info(initPid) : undefined;
    return !!i && i.uid === initUid && i.comm === 'sh';
  }, 10_000, 10);
  const why = () => { try { return fs.readFileSync(log, 'utf8').trim(); } catch { return ''; } };
  if (exited || !ready || initPid === undefined || !supervisor) {
    kill(supPid);
    if (initPid !== undefined) kill(initPid);
    return fail('init-failed', `The jail's namespaces did not come up${exited ? '' : ' within 10 s'}: ${why() || 'no output'}`);
  }
  const init = procId(initPid)!;
  const pidns = nsOf(initPid, 'pid');
  const uts = nsOf(initPid, 'uts');
  if (!pidns || pidns === nsOf(process.pid, 'pid') || !uts || uts === nsOf(process.pid, 'uts')) {
    kill(supPid); kill(initPid);
    return fail('init-failed', 'The jail\'s init is not in PID and UTS namespaces of its own; refusing to go on.');
  }
  if (j.loopbackOnly && !j.net) {
    const netns_ = nsOf(initPid, 'net');
    if (!netns_ || netns_ === nsOf(process.pid, 'net')) {
      kill(supPid); kill(initPid);
      return fail('init-failed', 'The jail\'s init is not in a network namespace of its own; refusing to go on.');
    }
    const lo = await run([j.tools.nsenter, `--target=${initPid}`, '--net', '--', j.tools.ip!, 'link', 'set', 'lo', 'up'], { timeoutMs: 10_000 });
    if (!lo.ok) {
      kill(supPid); kill(initPid);
      fail('init-failed', `Cannot bring the jail's loopback up: ${lo.error}`);
    }
  }
  const r = await run([j.tools.nsenter, `--target=${initPid}`, '--uts', '--', j.tools.hostname, hostname], { timeoutMs: 10_000 });
  if (!r.ok) {
    kill(supPid); kill(initPid);
    fail('init-failed', `Cannot set the jail's hostname: ${r.error}`);
  }
  child.unref();
  return { instance: { supervisor: supervisor!, init, initUid, pidns, hostname }, child };
}

/**
 * A user namespace for an install step, every uid and gid mapped to itself: held by a
 * host process (the host's unshare exec'ing sleep, killed by the caller, and with this
 * process) in the host's PID namespace, where the step can neither see nor ptrace it.
 * The map is written from here, by root: an unprivileged owner's namespace would give
 * every process of that uid all capabilities over the step.
 */
export async function startUserns(j: Jail): Promise<{ pid: number; file: string }> {
  const child = await spawnHost([j.tools.setpriv, '--pdeathsig=KILL', '--', j.tools.unshare, '--user', '--', j.tools.sleep, 'infinity'], { stdio: ['ignore', 'ignore', 'ignore'], detached: true });
  const pid = child.pid;
  if (pid === undefined) return fail('init-failed', `Cannot start ${j.tools.unshare} --user.`);
  child.unref();
  const own = nsOf(process.pid, 'user');
  const ready = await waitFor(() => { const ns = nsOf(pid, 'user'); return !!ns && ns !== own; }, 10_000, 5);
  try {
    if (!ready) throw new Error('it did not come up within 10 s');
    fs.writeFileSync(`/proc/${pid}/uid_map`, '0 0 4294967295\n');
    fs.writeFileSync(`/proc/${pid}/gid_map`, '0 0 4294967295\n');
  } catch (err) {
    kill(pid);
    return fail('init-failed', `Cannot give the install step a user namespace of its own: ${(err as Error).message}`);
  }
  return { pid, file: `/proc/${pid}/ns/user` };
}

export interface Launch {
  cmd: readonly string[];
  group: string;
  stdio: [StdioSlot, StdioSlot, StdioSlot];
  init?: number;
  bindLowPorts?: boolean;
  dieWithParent?: boolean;
  env?: Record<string, string | undefined>;
  /** Host programs (absolute paths) that run the chain, e.g. `strace ... --`: they get the jail's environment too. */
  wrap?: readonly string[];
  /** An install step: root in the jail with the install capabilities only (chain.ts). */
  installStep?: boolean;
  /** An install step's user namespace (startUserns). */
  userns?: string;
}

/** Starts a command in the jail (see chain.ts for exactly how), in a new session. */
export async function launch(j: Jail, l: Launch): Promise<ChildProcess> {
  const argv = commandChain({
    tools: j.tools, root: j.root, uid: j.user.uid, gid: j.user.gid, cmd: l.cmd,
    cgroupProcs: j.cgroup ? cgroup.child(j.cgroup, l.group) : [],
    cpu: j.config.cpu,
    cpuHard: j.config.cpuHard,
    init: l.init,
    net: l.init !== undefined ? Boolean(j.net) : j.net?.file,
    bindLowPorts: l.bindLowPorts,
    dieWithParent: l.dieWithParent,
    installStep: l.installStep,
    userns: l.userns,
  });
  return spawnHost([...(l.wrap ?? []), ...argv], { stdio: l.stdio, detached: true, env: jailEnv(j.user, l.env) });
}

/** Runs a command to completion with its output in a file; returns its status, or undefined on timeout (it is left running). */
export async function runLogged(j: Jail, l: Omit<Launch, 'stdio'>, log: string, timeoutMs: number, append = false): Promise<{ code?: number; output: string }> {
  fs.mkdirSync(path.dirname(log), { recursive: true, mode: 0o700 });
  const start = append && fs.existsSync(log) ? fs.statSync(log).size : 0;
  const fd = fs.openSync(log, append ? 'a' : 'w', 0o600);
  let child: ChildProcess;
  try {
    child = await launch(j, { ...l, stdio: ['ignore', fd, fd] });
  } finally {
    fs.closeSync(fd);
  }
  let timer: NodeJS.Timeout | undefined;
  const status = await Promise.race([exitStatus(child), new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), timeoutMs); })]);
  clearTimeout(timer);
  child.unref();
  let output = '';
  try {
    const buf = fs.readFileSync(log);
    output = buf.subarray(start, start + 64 * 1024).toString('utf8');
  } catch { /* gone */ }
  return { code: status?.code, output };
}

/**
 * Ends a set of namespaces: SIGKILL to the init's unshare and the init (the kernel then
 * kills every process of the PID namespace, and the mount namespace — with the jail's
 * /proc — goes with its last process). Waits until the namespace is empty.
 */
export async function endInstance(inst: { supervisor?: ProcId; init?: ProcId; pidns?: string }, ms = 5000): Promise<boolean> {
  // The init first: its death ends the namespace while every process in it still has its
  // parent (a jailed command's nsenter, the unshare) to reap it promptly. Killing those
  // parents first would leave the reaping to the host's init, and the namespace lingers.
  if (alive(inst.init)) kill(inst.init!.pid);
  const empty = !inst.pidns || await waitFor(() => {
    const left = inPidNs(inst.pidns!);
    for (const p of left) kill(p);
    return left.length === 0;
  }, ms);
  if (alive(inst.supervisor)) kill(inst.supervisor!.pid);
  return empty;
}

/** Kills whatever still has ROOT as its root directory (a process chrooted there by any means). */
export async function killRooted(root: string, ms = 3000): Promise<number[]> {
  let left: number[] = [];
  await waitFor(() => {
    left = rootedAt(root);
    for (const p of left) kill(p);
    return left.length === 0;
  }, ms);
  return left;
}

/** A recorded jail whose namespaces (or, without namespaces, whose cgroup) still hold processes. */
export function isUp(s: JailState): boolean {
  if (s.limits.namespaces) return alive(s.init) && alive(s.supervisor);
  return !!s.cgroup && cgroup.procs(s.cgroup).length > 0;
}

/** The pid of a booted jail's init (or, without namespaces, of a process of it) when it runs, as `jail status` sees it; else undefined. */
export function runningPid(root: string): number | undefined {
  const s = loadState(root);
  if (!s || !isUp(s)) return undefined;
  return s.init?.pid ?? (s.cgroup ? cgroup.procs(s.cgroup)[0] : undefined);
}

/**
 * A process of ROOT's booted jail whose root is not ROOT's directory as it is now: the
 * tree the jail was booted in was deleted (`rm -rf ROOT`), and perhaps built anew at the
 * same path, so what runs is not what ROOT holds. Compared by device and inode: the
 * root's through /proc/PID/root (the kernel's handle, not a path), ROOT's by lstat of
 * its real path — nothing inside ROOT is looked at. Undefined when all is as booted.
 */
export function replacedRoot(s: JailState, root: string): { pid: number; gone: boolean } | undefined {
  const pids = s.cgroup ? cgroup.procs(s.cgroup) : s.pidns ? inPidNs(s.pidns) : [];
  const now = fs.lstatSync(root, { throwIfNoEntry: false });
  for (const pid of pids) {
    let seen: string;
    try { seen = fs.readlinkSync(`/proc/${pid}/root`); } catch { continue; }
    // The init and its sleep are the host's, rooted at /: only chrooted processes tell.
    if (seen !== root && seen !== `${root} (deleted)`) continue;
    let was: fs.Stats;
    try { was = fs.statSync(`/proc/${pid}/root`); } catch { continue; }
    if (!now?.isDirectory()) return { pid, gone: true };
    if (was.dev !== now.dev || was.ino !== now.ino) return { pid, gone: false };
  }
  return undefined;
}

/** What replacedRoot found, for status, boot and make: what it means and what to do. */
export function replacedRootMessage(root: string, r: { pid: number; gone: boolean }): string {
  const what = r.gone ? `ROOT=${root} no longer exists` : `ROOT=${root} is not the directory the jail was booted in (it was deleted and built again)`;
  const todo = r.gone ? `Stop it with \`jail stop ROOT=${root}\`, then build and boot it again.` : `Restart the jail: \`jail stop ROOT=${root} && jail boot ROOT=${root}\`.`;
  return `The jail at ${root} runs in a deleted tree: ${what}, and its processes (such as pid ${r.pid}) still have the old one as their root, so nothing jail make writes reaches them. ${todo}`;
}

/** Clears what a jail that died on its own left behind: processes in its cgroups, its network. */
export async function clearStale(s: JailState, j: { tools: Tools }): Promise<void> {
  await endInstance(s);
  if (s.cgroup) {
    await cgroup.killAll(s.cgroup);
    await cgroup.remove(s.cgroup);
  }
  if (s.net) await netns.tearDown(s.net, j.tools);
  dropState(s.root);
}

