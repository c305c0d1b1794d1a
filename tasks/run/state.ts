// A running jail's record: /run/jail/<jailKey>/state.json, outside ROOT (the jail must not
// be able to point stop at other processes) and on /run, which a reboot empties just as it
// ends the jail. It names the processes by pid and start time, the cgroups, the network
// namespace and the services started, so stop and status need neither the jailfile nor
// anything read from ROOT. A lock file beside it keeps two boots or stops of one ROOT apart.
// The key is ROOT's real path's (manifest.ts's jailKey): booted through a symlink, stopped
// by its real name, it is one jail.

import { acquire } from '../pid-lock.js';
import fs from 'node:fs';
import path from 'node:path';
import { jailKey, realRoot } from '../manifest.js';
import { JailFailure, jailError } from '../result.js';
import type { CgroupLayout } from './cgroup.js';
import type { NetState } from './netns.js';
import type { ProcId } from './procs.js';

export const RUN_DIR = '/run/jail';

export interface ServiceRecord {
  /** The rc script's file name: `50apache.sh`. */
  script: string;
  name: string;
  /** The cgroup child its processes are in (`svc-50apache`). */
  group: string;
  status: 'started' | 'failed' | 'stopped';
  at: string;
  exitCode?: number;
  /** Where the script's output (and the service's, if it keeps writing to stdout/stderr) goes. */
  log: string;
}

export interface JailState {
  version: 1;
  root: string;
  key: string;
  bootedAt: string;
  /** The host-side unshare that holds the namespaces; its child is the init. */
  supervisor?: ProcId;
  /** PID 1 of the jail's namespace: the host's /bin/sh as an unprivileged uid, reaping orphans. */
  init?: ProcId;
  initUid?: number;
  pidns?: string;
  hostname?: string;
  user: { name: string; uid: number; gid: number; home: string };
  cgroup?: CgroupLayout;
  net?: NetState;
  limits: { cpu?: number; cpuHard?: number | 'unlimited'; pids?: number; memory?: number; proc: boolean; namespaces: boolean };
  services: ServiceRecord[];
}

export function jailDir(root: string): string {
  const dir = path.join(RUN_DIR, jailKey(root));
  if (fs.existsSync(path.join(dir, 'state.json'))) return dir;
  return legacyDir(realRoot(root)) ?? dir;
}

/**
 * The directory of a record written while the key was ROOT as spelled (a jail booted
 * through a symlink by an earlier jail, and still running): it stays that jail's, so
 * status finds it and stop ends it. /run empties at reboot, so these go with the next one.
 */
function legacyDir(real: string): string | undefined {
  for (const { dir, state } of records()) if (state.root !== real && realRoot(state.root) === real) return dir;
  return undefined;
}

export function statePath(root: string): string {
  return path.join(jailDir(root), 'state.json');
}

export function loadState(root: string): JailState | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(statePath(root), 'utf8')) as JailState;
    return s.version === 1 && typeof s.root === 'string' && realRoot(s.root) === realRoot(root) ? s : undefined;
  } catch {
    return undefined;
  }
}

export function saveState(s: JailState): void {
  const file = statePath(s.root);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** The records of every jail booted on this host (some may be stale: see isUp). */
export function allStates(): JailState[] {
  return records().map((r) => r.state);
}

function records(): { dir: string; state: JailState }[] {
  let names: string[] = [];
  try { names = fs.readdirSync(RUN_DIR); } catch { return []; }
  const out: { dir: string; state: JailState }[] = [];
  for (const n of names) {
    const dir = path.join(RUN_DIR, n);
    try {
      const s = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as JailState;
      if (s.version === 1 && typeof s.root === 'string') out.push({ dir, state: s });
    } catch { /* no record */ }
  }
  return out;
}

export function dropState(root: string): void {
  try { fs.unlinkSync(statePath(root)); } catch { /* gone */ }
}

/** Removes the jail's run directory with its logs, once nothing runs. */
export function dropRunDir(root: string): void {
  fs.rmSync(jailDir(root), { recursive: true, force: true });
}

export interface Lock { release(): void }

/**
 * One boot, stop or run setup per ROOT at a time; a dead holder's lock is taken over.
 * Releasing it removes the run directory too when nothing else is in it (no record, no
 * log): a boot that was refused leaves nothing behind in /run/jail.
 */
export function lock(root: string, waitMs = 60_000): Promise<Lock> {
  return lockIn(jailDir(root), `starting or stopping ${root}`, root, waitMs);
}

/** Host-wide, around checking that a jail's subnet is free and taking it: two boots at once cannot both find it free. */
export function lockNetwork(waitMs = 60_000): Promise<Lock> {
  return lockIn(path.join(RUN_DIR, 'network'), 'setting up a jail network', undefined, waitMs);
}

async function lockIn(dir: string, doing: string, root: string | undefined, waitMs: number): Promise<Lock> {
  const file = path.join(dir, 'lock');
  const got = await acquire(file, Date.now() + waitMs);
  if (!got.held) throw new JailFailure([jailError('locked', `Another jail command (pid ${got.pid}) is ${doing}; it holds ${file}. Wait for it, then try again.`, { path: root })]);
  return {
    release: () => {
      got.release();
      try { fs.rmdirSync(dir); } catch { /* holds a record, logs or another's lock */ }
    },
  };
}
