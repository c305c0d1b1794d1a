// `jail boot ROOT=...`: the article's runvirtual. Sets up the jail's confinement (cgroup
// limits, network, namespaces with the jail's hostname and, if asked, its /proc), then runs
// each ROOT/etc/rc.d/*.sh with `start`, in name order, inside the jail as the jail user,
// and returns once they have returned; the services keep running. A script that fails is
// reported with its output and the others still start. Booting a booted jail starts only
// the services with no process left (each rc script's processes are kept in a cgroup of
// their own), so a second boot never starts a second apache.
//
// Services run as the jail user from the start, never as root (a root process can leave a
// chroot): a service that writes files — apache's logs and pid file — needs its directories
// declared writable by that user in the jailfile (dir(..., { owner: 'www-data' })). boot
// never changes ROOT to make that so: the jailfile says what ROOT holds, and make would put
// any such change back. On the host's network a booted service may bind a port below 1024
// through CAP_NET_BIND_SERVICE alone; on a network of the jail's own it needs nothing.
// Output of the rc scripts (and of a service that keeps writing to them) goes to
// /run/jail/<key>/log/NNname.log.
//
// Exit status: 0 every service runs, 1 the jail is up but some rc script failed, 2 the
// jail could not be booted.

import fs from 'node:fs';
import path from 'node:path';
import type { Parsed } from '../args.js';
import type { Output } from '../progress.js';
import { analyze } from '../make.js';
import { realRoot } from '../manifest.js';
import { runConfig } from '../run/config.js';
import { closeInheritedFds } from '../run/fds.js';
import * as cgroup from '../run/cgroup.js';
import * as netns from '../run/netns.js';
import { rcScripts } from '../run/jaildata.js';
import { rootOwnedHints } from '../run/root-owned.js';
import { clearStale, isUp, prepare, replacedRoot, replacedRootMessage, runLogged, setUpCgroup, setUpNetwork, startInit } from '../run/instance.js';
import { jailDir, loadState, lock, saveState, type ServiceRecord } from '../run/state.js';
import { guarded, indented, timeoutMs, userOption } from '../run/cli.js';

export function run(p: Parsed, io: Output): Promise<number> {
  return guarded(io, () => boot(p, io));
}

async function boot(p: Parsed, io: Output): Promise<number> {
  closeInheritedFds();
  const a = await analyze(p.make, p.command, true);
  for (const w of a.warnings) io.err(`jail: warning: ${w}`);
  if (!a.ok) {
    for (const e of a.errors) io.err(`jail: error: ${e.message}`);
    return 2;
  }
  // Recorded by its real path: stop and status find it by any spelling of ROOT (state.ts).
  const root = realRoot(a.root);
  const config = runConfig(a.entries);
  const perScript = timeoutMs(p, 60);
  const lk = await lock(root);
  try {
    const j = prepare(root, config, userOption(p));
    let state = loadState(root);
    if (state && !isUp(state)) {
      io.err(`jail: the record of an earlier boot of ${root} names processes that are gone; clearing what they left`);
      await clearStale(state, j);
      state = undefined;
    }
    const logDir = path.join(jailDir(root), 'log');
    const replaced = state ? replacedRoot(state, root) : undefined;
    if (replaced) {
      io.err(`jail: error: ${replacedRootMessage(root, replaced)} Nothing was started.`);
      return 2;
    }
    if (state) {
      // Booted already: new services start in the same namespaces, cgroups and network, as the same user.
      j.cgroup = state.cgroup;
      j.net = state.net;
      j.user = state.user;
      io.out(`jail: ${root} has been running since ${state.bootedAt}; starting only what is not running`);
    } else {
      state = {
        version: 1, root, key: j.key, bootedAt: new Date().toISOString(), user: j.user, cgroup: j.cgroup,
        limits: { cpu: config.cpu, cpuHard: config.cpuHard, pids: config.pids, memory: config.memory, proc: config.proc, namespaces: config.namespaces },
        services: [],
      };
      try {
        setUpCgroup(j);
        if (j.cgroup) await cgroup.sweepRuns(j.cgroup);
        await setUpNetwork(j);
        state.net = j.net;
        if (config.namespaces) {
          const { instance } = await startInit(j, { group: 'init', log: path.join(jailDir(root), 'init.log'), dieWithParent: false });
          Object.assign(state, { supervisor: instance.supervisor, init: instance.init, initUid: instance.initUid, pidns: instance.pidns, hostname: instance.hostname });
        }
      } catch (err) {
        // Nothing of a boot that failed stays: its cgroups, its network, its init's log.
        if (j.cgroup) await cgroup.remove(j.cgroup);
        if (j.net && j.netCreated) await netns.tearDown(j.net, j.tools);
        fs.rmSync(path.join(jailDir(root), 'init.log'), { force: true });
        throw err;
      }
      saveState(state);
    }

    const scripts = rcScripts(root);
    if (!scripts.length) io.out(`jail: ${root}/etc/rc.d holds no *.sh scripts; the jail is up and runs nothing yet`);
    let started = 0, running = 0, failed = 0;
    for (const s of scripts) {
      const id = s.file.slice(0, -3);
      const group = `svc-${id}`;
      const log = path.join(logDir, `${id}.log`);
      const prev = state.services.find((x) => x.script === s.file);
      const procs = state.cgroup ? cgroup.procs(state.cgroup, group) : [];
      if (procs.length || (!state.cgroup && prev?.status === 'started')) {
        io.out(`jail: ${s.file}: already running${procs.length ? ` (${procs.length} process${procs.length > 1 ? 'es' : ''})` : ''}`);
        running++;
        continue;
      }
      const rec: ServiceRecord = { script: s.file, name: s.name, group, status: 'failed', at: new Date().toISOString(), log };
      if (!s.executable) {
        io.err(`jail: error: ${s.file} start failed: ${root}${s.jailPath} is not executable (chmod 0755, or declare it with mode 0o755)`);
        failed++;
      } else {
        const r = await runLogged(j, { cmd: [s.jailPath, 'start'], group, init: state.init?.pid, bindLowPorts: !state.net }, log, perScript);
        rec.exitCode = r.code;
        if (r.code === 0) {
          rec.status = 'started';
          started++;
          io.out(`jail: ${s.file} start: ok`);
        } else {
          failed++;
          const why = r.code === undefined ? `did not return within ${perScript / 1000} s (an rc script's start must return once the service runs; it is left running)` : `exit status ${r.code}`;
          io.err(`jail: error: ${s.file} start failed (${why}); its output:\n${r.output.trim() ? indented(r.output) : '  | (none)'}`);
          for (const hint of r.code === undefined ? [] : rootOwnedHints(root, state.user, r.output)) io.err(`jail: ${hint}`);
        }
      }
      state.services = [...state.services.filter((x) => x.script !== s.file), rec];
      saveState(state);
    }
    io.out(`jail: booted ${root}: ${started} started, ${running} already running, ${failed} failed` +
      (state.pidns ? ` (${state.pidns}, hostname ${state.hostname})` : '') + `, as ${state.user.name} (${state.user.uid}:${state.user.gid})`);
    return failed ? 1 : 0;
  } finally {
    lk.release();
  }
}
