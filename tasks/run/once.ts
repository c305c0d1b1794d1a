// One command in a jail, start to end, confined as `jail run` confines it (see chain.ts):
// the jail's cgroup (a booted jail's, shared) or one of its own, its network, PID, mount,
// IPC and UTS namespaces whose init dies with this process, and everything cleaned up
// after — when the command exits, when this process is interrupted, and after a timeout.
// `jail run` and `jail trace` both run their command through here, so what a trace sees
// is what the program does when it is run.

import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { exitStatus, type StdioSlot } from '../shell.js';
import * as cgroup from './cgroup.js';
import * as netns from './netns.js';
import { endInstance, isUp, launch, setUpCgroup, setUpNetwork, startInit, startUserns, type Instance, type Jail } from './instance.js';
import { kill } from './procs.js';
import { jailDir, loadState, lock } from './state.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface Once {
  cmd: readonly string[];
  stdio: [StdioSlot, StdioSlot, StdioSlot];
  env?: Record<string, string | undefined>;
  /** Host programs the whole chain runs under, started first (`strace ... --`). */
  wrap?: readonly string[];
  /** End the command and all it started after this long. */
  timeoutMs?: number;
  /**
   * An install step (chain.ts): root in the jail, so never in a booted jail's cgroup or
   * network, only in namespaces of its own.
   */
  installStep?: boolean;
}

export interface OnceResult {
  /** The command's exit status (128+N for a signal), or 128+N for the signal that interrupted this process. */
  code: number;
  interrupted?: NodeJS.Signals;
  timedOut?: boolean;
}

export async function runOnce(j: Jail, o: Once): Promise<OnceResult> {
  const group = `run-${process.pid}`;
  let inst: Instance | undefined;
  let userns: { pid: number; file: string } | undefined;
  let child: ChildProcess | undefined;
  let interrupted: NodeJS.Signals | undefined;
  let timedOut = false;
  let cleaning: Promise<void> | undefined;

  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      if (inst) await endInstance(inst);
      if (userns) kill(userns.pid);
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) kill(child.pid);
      if (j.cgroup) {
        await cgroup.killAll(j.cgroup, group);
        await cgroup.remove(j.cgroup, group);
      }
      // The jail's own group and network stay while it is booted, or while another run uses them.
      const booted = loadState(j.root);
      // An install step's group is its own (instance.ts), booted jail or not.
      if ((!booted || o.installStep) && j.cgroup && !cgroup.children(j.cgroup).length) await cgroup.remove(j.cgroup);
      if (j.net && j.netCreated && booted?.net?.name !== j.net.name) await netns.tearDown(j.net, j.tools);
    })();
    return cleaning;
  };
  // Ending the init ends the command and all it started; without namespaces, the command itself.
  const end = () => {
    if (inst) kill(inst.init.pid);
    else if (child?.pid !== undefined) kill(child.pid);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted ??= sig;
    end();
  };
  const interruptedCode = () => 128 + (osConstants.signals[interrupted!] ?? 0);
  for (const s of SIGNALS) process.on(s, onSignal);
  let timer: NodeJS.Timeout | undefined;
  try {
    const lk = await lock(j.root);
    try {
      const booted = loadState(j.root);
      if (booted && isUp(booted) && !o.installStep) {
        // Share the booted jail's limits (as they were set at boot) and network.
        j.cgroup = booted.cgroup ?? j.cgroup;
        j.net = booted.net;
      } else {
        setUpCgroup(j);
      }
      if (j.cgroup) for (const g of await cgroup.sweepRuns(j.cgroup)) fs.rmSync(path.join(jailDir(j.root), `${g}.log`), { force: true });
      if (!j.net) await setUpNetwork(j);
      if (j.config.namespaces && !interrupted) {
        inst = (await startInit(j, { group, log: path.join(jailDir(j.root), `${group}.log`), dieWithParent: true })).instance;
      }
    } finally {
      lk.release();
    }
    if (interrupted) return { code: interruptedCode(), interrupted };
    if (o.installStep) userns = await startUserns(j);
    child = await launch(j, { cmd: o.cmd, group, init: inst?.init.pid, stdio: o.stdio, dieWithParent: true, env: o.env, wrap: o.wrap, installStep: o.installStep, userns: userns?.file });
    if (o.timeoutMs !== undefined) timer = setTimeout(() => { timedOut = true; end(); }, o.timeoutMs);
    const st = await exitStatus(child);
    if (interrupted) return { code: interruptedCode(), interrupted };
    return { code: st.code, timedOut };
  } finally {
    clearTimeout(timer);
    await cleanup();
    for (const s of SIGNALS) process.off(s, onSignal);
    fs.rmSync(path.join(jailDir(j.root), `${group}.log`), { force: true });
    try { fs.rmdirSync(jailDir(j.root)); } catch { /* a booted jail's record, or another run's lock, is there */ }
  }
}
