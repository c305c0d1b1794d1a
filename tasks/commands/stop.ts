// `jail stop ROOT=...`: runs each rc script with `stop`, in reverse order, inside the jail
// as the jail user; gives the services a few seconds to exit; then ends everything still
// running in the jail — the PID namespace goes with its init (and the jail's /proc with
// the mount namespace), the cgroups are emptied with SIGKILL, any process whose root is
// ROOT is killed — and removes the cgroups, the network namespace and the record.
//
// It trusts nothing in ROOT to do this: what to end comes from the record in /run/jail,
// so a jail whose rc scripts, shell and libraries were deleted (`rm -fr /` inside it, or
// `rm -rf ROOT/*` on the host) still stops completely. A stop script that fails is
// reported and the stop goes on. The jailfile is not needed.
//
// Exit status: 0 nothing of the jail runs any more, 2 something could not be ended.

import fs from 'node:fs';
import path from 'node:path';
import type { Parsed } from '../args.js';
import type { Output } from '../progress.js';
import * as cgroup from '../run/cgroup.js';
import * as netns from '../run/netns.js';
import { rcScripts } from '../run/jaildata.js';
import { endInstance, killRooted, runLogged, type Jail } from '../run/instance.js';
import { alive, inPidNs, rootedAt, running, waitFor } from '../run/procs.js';
import { dropRunDir, jailDir, loadState, lock } from '../run/state.js';
import { hostTools } from '../run/tools.js';
import { jailKey, realRoot } from '../manifest.js';
import { guarded, indented, rootOnly, timeoutMs } from '../run/cli.js';

export function run(p: Parsed, io: Output): Promise<number> {
  return guarded(io, () => stop(p, io));
}

async function stop(p: Parsed, io: Output): Promise<number> {
  // The jail by its real path, as boot recorded it: any spelling of ROOT stops it, and
  // what is left of a deleted ROOT's path still names it.
  const root = realRoot(rootOnly(p, { followLink: true }));
  const perScript = timeoutMs(p, 30);
  const lk = await lock(root);
  try {
    const state = loadState(root);
    if (!state) {
      // Not booted; still end whatever runs chrooted there, and clear what a killed
      // `jail run` may have left (its cgroups, its network namespace).
      const had = rootedAt(root);
      const left = await killRooted(root);
      if (left.length) {
        io.err(`jail: error: ${root} was not booted by jail, and ${left.length} process(es) chrooted there could not be ended: ${left.join(' ')}`);
        return 2;
      }
      const stale = cgroup.leftovers(jailKey(root));
      if (stale && !cgroup.children(stale).some((g) => /^run-\d+$/.test(g) && running(Number(g.slice(4))))) {
        await cgroup.killAll(stale);
        await cgroup.remove(stale);
      }
      const names = netns.netNames(jailKey(root));
      if (fs.existsSync(`/run/netns/${names.name}`) || fs.existsSync(`/sys/class/net/${names.hostIf}`)) {
        await netns.tearDown({ name: names.name, file: `/run/netns/${names.name}`, hostIf: names.hostIf, address: '', hostAddress: '' }, hostTools({ network: true }));
      }
      dropRunDir(root);
      io.out(had.length ? `jail: ${root} was not booted by jail; ended ${had.length} process(es) chrooted there` : `jail: ${root} is not running`);
      return 0;
    }
    const tools = hostTools({ network: Boolean(state.net), commands: true });
    const j: Jail = {
      root, key: jailKey(root), tools, user: state.user, cgroup: state.cgroup, net: state.net,
      config: { cpu: state.limits.cpu, cpuHard: state.limits.cpuHard, pids: state.limits.pids, memory: state.limits.memory, proc: state.limits.proc, namespaces: state.limits.namespaces },
    };
    const up = state.limits.namespaces ? alive(state.init) : true;

    // 1. The rc scripts with `stop`, last started first.
    let present: string[] = [];
    try { present = rcScripts(root).map((s) => s.file); } catch (err) { io.err(`jail: warning: cannot list ${root}/etc/rc.d (${(err as Error).message}); ending the jail's processes without its stop scripts`); }
    const names = [...new Set([...state.services.map((s) => s.script), ...present])].sort().reverse();
    const scripts = names.map((file) => ({ file, jailPath: `/etc/rc.d/${file}`, present: present.includes(file) }));
    let stopped = 0, failedStops = 0;
    if (up) {
      for (const s of scripts) {
        const id = s.file.slice(0, -3);
        if (!s.present) {
          io.err(`jail: warning: ${s.file} is no longer in ${root}/etc/rc.d; its processes are ended below`);
          continue;
        }
        const r = await runLogged(j, { cmd: [s.jailPath, 'stop'], group: `svc-${id}`, init: state.init?.pid }, path.join(jailDir(root), 'log', `${id}.log`), perScript, true);
        if (r.code === 0) {
          stopped++;
          io.out(`jail: ${s.file} stop: ok`);
        } else {
          failedStops++;
          io.err(`jail: warning: ${s.file} stop failed (${r.code === undefined ? `no return within ${perScript / 1000} s` : `exit status ${r.code}`}); its processes are ended below; its output:\n${r.output.trim() ? indented(r.output) : '  | (none)'}`);
        }
      }
      // 2. A few seconds for the services to exit on their own.
      const servicesGone = () => {
        if (state.cgroup) return state.services.every((s) => cgroup.procs(state.cgroup!, s.group).length === 0);
        if (state.pidns) return inPidNs(state.pidns).length <= 2; // the init and its sleep
        return true;
      };
      await waitFor(servicesGone, 5000, 50);
    }

    // 3. Whatever is left ends now.
    const before = new Set([
      ...(state.pidns ? inPidNs(state.pidns) : []),
      ...(state.cgroup ? cgroup.procs(state.cgroup) : []),
      ...rootedAt(root),
    ]);
    const nsEmpty = await endInstance(state);
    const cgEmpty = state.cgroup ? await cgroup.killAll(state.cgroup) : true;
    const strays = await killRooted(root);
    const left = [...new Set([
      ...(state.pidns ? inPidNs(state.pidns) : []),
      ...(state.cgroup ? cgroup.procs(state.cgroup) : []),
      ...strays,
    ])];
    if (!nsEmpty || !cgEmpty || left.length) {
      io.err(`jail: error: could not end every process of ${root}; still running: ${left.join(' ') || '(none listed; the namespace did not empty)'}. The record is kept; run jail stop again.`);
      return 2;
    }

    // 4. Nothing runs: take the confinement down.
    const stuck = state.cgroup ? await cgroup.remove(state.cgroup) : [];
    for (const d of stuck) io.err(`jail: warning: cannot remove the cgroup ${d}`);
    if (state.net) await netns.tearDown(state.net, tools);
    // The record goes, and the logs with it: what the scripts said has been printed.
    dropRunDir(root);
    const ended = before.size;
    io.out(`jail: stopped ${root}: ${stopped} service${stopped === 1 ? '' : 's'} stopped${failedStops ? `, ${failedStops} stop script${failedStops === 1 ? '' : 's'} failed` : ''}, ${ended} process${ended === 1 ? '' : 'es'} ended`);
    return 0;
  } finally {
    lk.release();
  }
}
