// `jail status ROOT=... [--json]`: whether the jail runs, under which confinement, each rc
// script's service (running with N processes, or not), and every process of the jail with
// its pid on the host and inside the jail, its user and its command line. Reads the record
// in /run/jail and /proc; never runs anything. User names come from the jail's etc/passwd,
// read as data.
//
// Exit status: 0 the jail runs, 1 it does not (or runs in a tree ROOT no longer holds), 2 error.

import type { Parsed } from '../args.js';
import type { Output } from '../progress.js';
import * as cgroup from '../run/cgroup.js';
import { jailGroups, jailPasswd } from '../run/jaildata.js';
import { isUp, replacedRoot, replacedRootMessage } from '../run/instance.js';
import { inPidNs, info, rootedAt, type ProcInfo } from '../run/procs.js';
import { loadState } from '../run/state.js';
import { guarded, rootOnly } from '../run/cli.js';
import { realRoot } from '../manifest.js';

export function run(p: Parsed, io: Output): Promise<number> {
  return guarded(io, async () => status(p, io));
}

interface ProcLine { pid: number; jailPid: number; user: string; uid: number; state: string; command: string; role: string }

function status(p: Parsed, io: Output): number {
  // The jail by its real path: the one boot recorded, and the root /proc shows its processes in.
  const root = realRoot(rootOnly(p, { followLink: true }));
  const state = loadState(root);
  let names = new Map<number, string>();
  let groups = new Map<number, string>();
  try {
    names = new Map(jailPasswd(root).map((u) => [u.uid, u.name]));
    groups = jailGroups(root);
  } catch { /* ROOT damaged: numeric ids */ }
  const pids = new Set<number>([
    ...(state?.pidns ? inPidNs(state.pidns) : []),
    ...(state?.cgroup ? cgroup.procs(state.cgroup) : []),
    ...rootedAt(root),
  ]);
  const groupOf = new Map<number, string>();
  if (state?.cgroup) for (const g of cgroup.children(state.cgroup)) for (const pid of cgroup.procs(state.cgroup, g)) groupOf.set(pid, g);
  const procs: ProcLine[] = [...pids].map(info).filter((x): x is ProcInfo => !!x).sort((a, b) => a.pid - b.pid).map((x) => ({
    pid: x.pid, jailPid: x.nspid, uid: x.uid, user: names.get(x.uid) ?? String(x.uid),
    state: x.state, command: x.cmdline,
    role: x.pid === state?.init?.pid ? 'init' : x.pid === state?.supervisor?.pid ? 'supervisor, outside the jail' : groupOf.get(x.pid) ?? (state ? '' : 'not started by jail'),
  }));
  const booted = state ? isUp(state) : false;
  // Running in a tree ROOT no longer holds is not running as ROOT says: the jail needs a restart.
  const replaced = booted ? replacedRoot(state!, root) : undefined;
  const up = booted && !replaced;
  const services = (state?.services ?? []).map((s) => {
    const n = state?.cgroup ? cgroup.procs(state.cgroup, s.group).length : undefined;
    return { script: s.script, name: s.name, status: s.status === 'failed' ? 'failed to start' : n === undefined ? s.status : n > 0 ? 'running' : 'not running', processes: n, log: s.log };
  });

  if (p.json) {
    io.out(JSON.stringify({
      root, running: up, ...(replaced ? { replaced: replacedRootMessage(root, replaced) } : {}), bootedAt: state?.bootedAt, hostname: state?.hostname, pidns: state?.pidns, init: state?.init?.pid,
      user: state?.user, limits: state?.limits, pidsCurrent: state?.cgroup ? cgroup.current(state.cgroup) : undefined,
      network: state?.net ? { address: state.net.address, hostAddress: state.net.hostAddress, hostInterface: state.net.hostIf } : undefined,
      cgroups: state?.cgroup?.dirs, services, processes: procs,
    }, null, 2));
    return up ? 0 : 1;
  }
  if (!state) {
    io.out(`jail: ${root} is not running (not booted by jail)`);
  } else {
    const l = state.limits;
    io.out(`jail: ${root} ${up ? 'is running' : replaced ? 'runs in a deleted tree' : 'was booted, but its init is gone (run jail stop to clear what is left)'} since ${state.bootedAt}`);
    if (replaced) io.out(`  ${replacedRootMessage(root, replaced)}`);
    io.out(`  user ${state.user.name}:${groups.get(state.user.gid) ?? state.user.gid} (${state.user.uid}:${state.user.gid})` + (state.hostname ? `, hostname ${state.hostname}` : '') + (state.pidns ? `, ${state.pidns}, init pid ${state.init?.pid}` : ', no namespaces'));
    const cur = state.cgroup ? cgroup.current(state.cgroup) : undefined;
    io.out(`  limits: cpu ${l.cpu ?? 'unlimited'}${l.cpu ? ' s' : ''}${l.cpuHard !== undefined ? ` (hard ${l.cpuHard}${l.cpuHard === 'unlimited' ? '' : ' s'}, for a service's own limit)` : ''}, pids ${cur !== undefined ? `${cur}/` : ''}${l.pids ?? 'unlimited'}, memory ${l.memory ?? 'unlimited'}, /proc ${l.proc ? 'mounted' : 'not mounted'}`);
    io.out(`  network: ${state.net ? `${state.net.address} (host ${state.net.hostAddress} on ${state.net.hostIf})` : 'the host\'s'}`);
    io.out('services:');
    if (!services.length) io.out('  (none)');
    for (const s of services) io.out(`  ${s.script.padEnd(20)} ${s.status}${s.processes ? ` (${s.processes} process${s.processes > 1 ? 'es' : ''})` : ''}  log ${s.log}`);
  }
  if (procs.length || state) {
    io.out('processes:');
    io.out(`  ${'PID'.padStart(7)} ${'JAILPID'.padStart(7)}  ${'USER'.padEnd(10)} S  COMMAND`);
    for (const x of procs) io.out(`  ${String(x.pid).padStart(7)} ${String(x.jailPid).padStart(7)}  ${x.user.padEnd(10)} ${x.state}  ${x.command}${x.role ? `   [${x.role}]` : ''}`);
    if (!procs.length) io.out('  (none)');
  }
  return up ? 0 : 1;
}
