// `jail run ROOT=... [--user NAME] -- CMD ARGS...`: one command in the jail, confined as
// boot confines services (chroot, the jail user, no_new_privs, rlimits, the jail's cgroup
// limits, PID/mount/IPC/UTS namespaces with the jail's hostname, its network if it has
// one — joining a booted jail's), with the caller's stdin, stdout and stderr and nothing
// else, in a session of its own. Its exit status is passed through (128+N when a signal
// ended it).
//
// The command gets PID, mount, IPC and UTS namespaces of its own, whose init dies with
// this process: when the command exits, when `jail run` is interrupted (SIGINT, SIGTERM,
// SIGHUP) and when it is killed outright (SIGKILL: the kernel's parent-death signal, see
// chain.ts), every process the command started ends with it. Its processes also share
// the jail's cgroup, so its pids and memory limits count with the booted services'.

import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Parsed } from '../args.js';
import type { Output } from '../progress.js';
import { analyze } from '../make.js';
import { exitStatus } from '../shell.js';
import { runConfig } from '../run/config.js';
import { closeInheritedFds } from '../run/fds.js';
import * as cgroup from '../run/cgroup.js';
import * as netns from '../run/netns.js';
import { endInstance, isUp, launch, prepare, setUpCgroup, setUpNetwork, startInit, type Instance } from '../run/instance.js';
import { kill } from '../run/procs.js';
import { jailDir, loadState, lock } from '../run/state.js';
import { guarded, userOption } from '../run/cli.js';
import { JailFailure, jailError } from '../result.js';
import { constants as osConstants } from 'node:os';

export function run(p: Parsed, io: Output): Promise<number> {
  return guarded(io, () => runInJail(p, io));
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

async function runInJail(p: Parsed, io: Output): Promise<number> {
  closeInheritedFds();
  if (!p.rest.length) throw new JailFailure([jailError('usage', 'jail run needs a command after --: jail run ROOT=DIR [--user NAME] -- CMD ARGS...')]);
  const a = await analyze(p.make);
  for (const w of a.warnings) io.err(`jail: warning: ${w}`);
  if (!a.ok) {
    for (const e of a.errors) io.err(`jail: error: ${e.message}`);
    return 2;
  }
  const config = runConfig(a.entries);
  const j = prepare(a.root, config, userOption(p));
  const group = `run-${process.pid}`;
  let inst: Instance | undefined;
  let child: ChildProcess | undefined;
  let interrupted: NodeJS.Signals | undefined;
  let cleaning: Promise<void> | undefined;

  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      if (inst) await endInstance(inst);
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) kill(child.pid);
      if (j.cgroup) {
        await cgroup.killAll(j.cgroup, group);
        await cgroup.remove(j.cgroup, group);
      }
      // The jail's own group and network stay while it is booted, or while another run uses them.
      const booted = loadState(j.root);
      if (!booted && j.cgroup && !cgroup.children(j.cgroup).length) await cgroup.remove(j.cgroup);
      if (j.net && j.netCreated && booted?.net?.name !== j.net.name) await netns.tearDown(j.net, j.tools);
    })();
    return cleaning;
  };
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted ??= sig;
    // Ending the init ends the command and all it started; without namespaces, the command itself.
    if (inst) kill(inst.init.pid);
    else if (child?.pid !== undefined) kill(child.pid);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  try {
    const lk = await lock(j.root);
    try {
      const booted = loadState(j.root);
      if (booted && isUp(booted)) {
        // Share the booted jail's limits (as they were set at boot) and network.
        j.cgroup = booted.cgroup ?? j.cgroup;
        j.net = booted.net;
      } else {
        setUpCgroup(j);
      }
      if (j.cgroup) for (const g of await cgroup.sweepRuns(j.cgroup)) fs.rmSync(path.join(jailDir(j.root), `${g}.log`), { force: true });
      if (!j.net) await setUpNetwork(j);
      if (config.namespaces && !interrupted) {
        inst = (await startInit(j, { group, log: path.join(jailDir(j.root), `${group}.log`), dieWithParent: true })).instance;
      }
    } finally {
      lk.release();
    }
    if (interrupted) return 128 + (osConstants.signals[interrupted] ?? 0);
    child = await launch(j, {
      cmd: p.rest, group, init: inst?.init.pid, stdio: ['inherit', 'inherit', 'inherit'], dieWithParent: true,
      env: { TERM: process.env.TERM },
    });
    const st = await exitStatus(child);
    if (interrupted) return 128 + (osConstants.signals[interrupted] ?? 0);
    return st.code;
  } finally {
    await cleanup();
    for (const s of SIGNALS) process.off(s, onSignal);
    fs.rmSync(path.join(jailDir(j.root), `${group}.log`), { force: true });
    try { fs.rmdirSync(jailDir(j.root)); } catch { /* a booted jail's record, or another run's lock, is there */ }
  }
}

