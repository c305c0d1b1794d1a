// Processes as /proc shows them to the host: identities that survive pid reuse (pid plus
// start time), a jail's processes (by PID namespace, or by root directory), and killing.

import fs from 'node:fs';

/** A process, named so that a recycled pid is not mistaken for it. */
export interface ProcId { pid: number; start: string }

export interface ProcInfo {
  pid: number;
  /** The pid inside the innermost PID namespace (NSpid's last field). */
  nspid: number;
  ppid: number;
  uid: number;
  gid: number;
  state: string;
  comm: string;
  cmdline: string;
  root?: string;
  pidns?: string;
  capEff: string;
}

function stat(pid: number): { state: string; ppid: number; start: string } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0]!, ppid: Number(f[1]), start: f[19]! };
  } catch {
    return undefined;
  }
}

export function procId(pid: number): ProcId | undefined {
  const s = stat(pid);
  return s ? { pid, start: s.start } : undefined;
}

/** True while the process named by `id` runs (not a zombie, and not a new process that got its pid). */
export function alive(id: ProcId | undefined): boolean {
  if (!id) return false;
  const s = stat(id.pid);
  return !!s && s.start === id.start && s.state !== 'Z' && s.state !== 'X';
}

export function nsOf(pid: number, ns: 'pid' | 'uts' | 'mnt' | 'net' | 'ipc' | 'user'): string | undefined {
  try { return fs.readlinkSync(`/proc/${pid}/ns/${ns}`); } catch { return undefined; }
}

export function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return allPids().filter((p) => stat(p)?.ppid === pid);
  }
}

export function allPids(): number[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

export function info(pid: number): ProcInfo | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '';
    const s = stat(pid);
    if (!s) return undefined;
    const nspids = field('NSpid').split(/\s+/).filter(Boolean).map(Number);
    let cmdline = '';
    try { cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' '); } catch { /* gone or kernel thread */ }
    let root: string | undefined;
    try { root = fs.readlinkSync(`/proc/${pid}/root`); } catch { /* gone */ }
    return {
      pid, nspid: nspids[nspids.length - 1] ?? pid, ppid: s.ppid,
      uid: Number(field('Uid').split(/\s+/)[0]), gid: Number(field('Gid').split(/\s+/)[0]),
      state: s.state, comm: field('Name'), cmdline: cmdline || `[${field('Name')}]`, root, pidns: nsOf(pid, 'pid'), capEff: field('CapEff'),
    };
  } catch {
    return undefined;
  }
}

/** True while `pid` is a live process (a zombie has ended; only its exit status waits to be collected). */
export function running(pid: number): boolean {
  const s = stat(pid)?.state;
  return s !== undefined && s !== 'Z' && s !== 'X';
}

/** Live processes (not zombies) whose PID namespace is `pidns` (`pid:[4026532…]`). */
export function inPidNs(pidns: string): number[] {
  return allPids().filter((p) => nsOf(p, 'pid') === pidns && running(p));
}

/** Processes whose root directory is ROOT (chrooted into the jail), however they got there. */
export function rootedAt(root: string): number[] {
  return allPids().filter((p) => {
    try {
      const r = fs.readlinkSync(`/proc/${p}/root`);
      return (r === root || r === `${root} (deleted)`) && running(p);
    } catch {
      return false;
    }
  });
}

export function kill(pid: number, sig: NodeJS.Signals = 'SIGKILL'): void {
  try { process.kill(pid, sig); } catch { /* already gone */ }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `gone` until it is true or `ms` passed; returns its last answer. */
export async function waitFor(gone: () => boolean, ms: number, every = 25): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (gone()) return true;
    if (Date.now() > deadline) return false;
    await sleep(every);
  }
}
