// A jail's control groups: one per jail (jail-<key>) holding its limits — pids.max, so a
// fork bomb stops at the jail's own process budget (RLIMIT_NPROC counts a uid's processes
// on the whole host, and does not protect the host's process table), and the memory limit
// when one is asked — with a child group per kind of process (the namespace's init, each
// rc script's service, each `jail run`), which is also how status and stop find them.
//
// Both layouts are handled: the unified cgroup v2 hierarchy, and v1 hierarchies per
// controller (a hybrid host such as this project's CI has pids and memory on v1 and a
// controller-less v2 at /sys/fs/cgroup/unified). A v2 jail group sits at the hierarchy's
// root, where the "no internal processes" rule never blocks enabling a controller; a v1
// jail group sits beneath the caller's own group in that hierarchy, so it stays inside
// whatever limits the caller is under.
//
// A process joins its groups before anything of the jail runs: the first program of each
// chain is the host's /bin/sh running JOIN_SCRIPT, which writes its own pid into each
// cgroup.procs and then execs the rest of the chain (the data are positional arguments,
// never part of the script).

import fs from 'node:fs';
import path from 'node:path';
import { JailFailure, jailError } from '../result.js';
import { kill, running, sleep } from './procs.js';

export interface Hierarchy {
  version: 1 | 2;
  /** Where it is mounted. */
  mount: string;
  /** The directory the jail's group is made in. */
  base: string;
  controllers: string[];
}

/** Where a jail's groups live, recorded in its state so stop never has to guess. */
export interface CgroupLayout {
  /** `<base>/jail-<key>` in each hierarchy used; the first one is where processes are listed. */
  dirs: string[];
  /** The directory holding pids.max, if limited. */
  pidsDir?: string;
  memoryDir?: string;
  memoryVersion?: 1 | 2;
}

export const JOIN_SCRIPT = 'for f do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"';

interface Mount { mountPoint: string; root: string; fstype: string; superOpts: string[] }

function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const l = left.split(' '), r = right.split(' ');
    const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ root: unescape(l[3]!), mountPoint: unescape(l[4]!), fstype: r[0]!, superOpts: (r[2] ?? '').split(',') });
  }
  return out;
}

/** This process's group in each hierarchy: '' for v2, controller list for v1. */
function ownGroups(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

export interface Detected { v2?: Hierarchy; pids?: Hierarchy; memory?: Hierarchy; track?: Hierarchy; notes: string[] }

/** What this host offers, without changing anything. */
export function detect(): Detected {
  const d: Detected = { notes: [] };
  const own = ownGroups();
  let all: Mount[] = [];
  try { all = mounts(); } catch { d.notes.push('cannot read /proc/self/mountinfo'); return d; }
  const v2m = all.find((m) => m.fstype === 'cgroup2');
  if (v2m) {
    let controllers: string[] = [];
    try { controllers = fs.readFileSync(path.join(v2m.mountPoint, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean); } catch { /* none */ }
    d.v2 = { version: 2, mount: v2m.mountPoint, base: v2m.mountPoint, controllers };
  }
  const v1 = (ctl: string): Hierarchy | undefined => {
    const m = all.find((x) => x.fstype === 'cgroup' && x.superOpts.includes(ctl));
    if (!m) return undefined;
    const key = [...own.keys()].find((k) => k.split(',').includes(ctl));
    let rel = key !== undefined ? own.get(key)! : '/';
    if (m.root !== '/' && rel.startsWith(m.root)) rel = rel.slice(m.root.length) || '/';
    return { version: 1, mount: m.mountPoint, base: path.join(m.mountPoint, rel), controllers: m.superOpts.filter((o) => o === ctl) };
  };
  d.pids = d.v2?.controllers.includes('pids') ? d.v2 : v1('pids');
  d.memory = d.v2?.controllers.includes('memory') ? d.v2 : v1('memory');
  d.track = d.pids ?? d.v2;
  return d;
}

const writable = (dir: string) => { try { fs.accessSync(dir, fs.constants.W_OK); return true; } catch { return false; } };

const unavailable = (what: string, how: string): never => {
  throw new JailFailure([jailError('no-cgroup', `${what} needs a cgroup, and ${how}. Turn the limit off in the jailfile (${what.startsWith('a pids') ? 'runtime({ pids: false })' : 'drop runtime({ memory })'}) to run the jail without it, or run jail where cgroups are writable (as root, with /sys/fs/cgroup mounted read-write).`)]);
};

/** Picks the hierarchies for a jail's limits; throws a clear error when a limit cannot be had here. */
export function plan(key: string, want: { pids?: number; memory?: number }): CgroupLayout | undefined {
  const d = detect();
  const used: Hierarchy[] = [];
  const layout: CgroupLayout = { dirs: [] };
  const use = (h: Hierarchy) => {
    if (!used.includes(h)) used.push(h);
    return path.join(h.base, `jail-${key}`);
  };
  if (want.pids !== undefined) {
    if (!d.pids) unavailable('a pids limit (runtime.pids)', 'this host has no pids controller (neither in cgroup v2\'s cgroup.controllers nor as a v1 hierarchy)');
    if (!writable(d.pids!.base)) unavailable('a pids limit (runtime.pids)', `${d.pids!.base} is not writable`);
    layout.pidsDir = use(d.pids!);
  }
  if (want.memory !== undefined) {
    if (!d.memory) unavailable('a memory limit (runtime.memory)', 'this host has no memory controller');
    if (!writable(d.memory!.base)) unavailable('a memory limit (runtime.memory)', `${d.memory!.base} is not writable`);
    layout.memoryDir = use(d.memory!);
    layout.memoryVersion = d.memory!.version;
  }
  if (!used.length) {
    // No limit asked: a group is still the surest way to find a jail's processes, when one can be had.
    if (!d.track || !writable(d.track.base)) return undefined;
    use(d.track);
  }
  layout.dirs = used.map((h) => path.join(h.base, `jail-${key}`));
  return layout;
}

function writeFile(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch (err) {
    throw new JailFailure([jailError('cgroup-write', `Cannot write ${JSON.stringify(value.trim())} to ${file} (${(err as NodeJS.ErrnoException).code}).`, { path: file })]);
  }
}

/** Makes the jail's groups (idempotent) and writes its limits. */
export function create(layout: CgroupLayout, want: { pids?: number; memory?: number }): void {
  for (const dir of layout.dirs) {
    const parent = path.dirname(dir);
    if (isV2(dir)) {
      // A v2 controller works in a group only when its parent hands it down.
      const needed = [...(dir === layout.pidsDir ? ['pids'] : []), ...(dir === layout.memoryDir ? ['memory'] : [])];
      const have = fs.readFileSync(path.join(parent, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
      const missing = needed.filter((c) => !have.includes(c));
      if (missing.length) writeFile(path.join(parent, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
    }
    try {
      fs.mkdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new JailFailure([jailError('cgroup-create', `Cannot create the jail's cgroup ${dir} (${(err as NodeJS.ErrnoException).code}).`, { path: dir })]);
    }
  }
  if (layout.pidsDir && want.pids !== undefined) writeFile(path.join(layout.pidsDir, 'pids.max'), `${want.pids}\n`);
  if (layout.memoryDir && want.memory !== undefined) {
    if (layout.memoryVersion === 2) {
      writeFile(path.join(layout.memoryDir, 'memory.max'), `${want.memory}\n`);
      if (fs.existsSync(path.join(layout.memoryDir, 'memory.swap.max'))) writeFile(path.join(layout.memoryDir, 'memory.swap.max'), '0\n');
    } else {
      writeFile(path.join(layout.memoryDir, 'memory.limit_in_bytes'), `${want.memory}\n`);
      const memsw = path.join(layout.memoryDir, 'memory.memsw.limit_in_bytes');
      if (fs.existsSync(memsw)) try { fs.writeFileSync(memsw, `${want.memory}\n`); } catch { /* swap accounting off */ }
    }
  }
}

function isV2(dir: string): boolean {
  return fs.existsSync(path.join(path.dirname(dir), 'cgroup.subtree_control'));
}

/** Makes the child group `name` in every hierarchy and returns the cgroup.procs files to join. */
export function child(layout: CgroupLayout, name: string): string[] {
  return layout.dirs.map((dir) => {
    const d = path.join(dir, name);
    try { fs.mkdirSync(d); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; }
    return path.join(d, 'cgroup.procs');
  });
}

function readProcs(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Pids in a child group (or, with no name, in the whole jail group), as the listing hierarchy sees them. */
export function procs(layout: CgroupLayout, name?: string): number[] {
  const dir = layout.dirs[0];
  if (!dir) return [];
  if (name !== undefined) return readProcs(path.join(dir, name));
  const out = readProcs(dir);
  for (const c of children(layout)) out.push(...readProcs(path.join(dir, c)));
  return out;
}

export function children(layout: CgroupLayout): string[] {
  const dir = layout.dirs[0];
  if (!dir) return [];
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

export function current(layout: CgroupLayout): number | undefined {
  if (!layout.pidsDir) return undefined;
  try { return Number(fs.readFileSync(path.join(layout.pidsDir, 'pids.current'), 'utf8')); } catch { return undefined; }
}

/**
 * SIGKILLs everything in a child group (or the whole jail group) until it is empty:
 * cgroup.kill where v2 has it, else rounds of kill(2) over cgroup.procs — a process
 * forked while a round runs is in the next round's list, and a killed one forks no more.
 */
export async function killAll(layout: CgroupLayout, name?: string, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (const dir of layout.dirs) {
    const target = name !== undefined ? path.join(dir, name) : dir;
    const killFile = path.join(target, 'cgroup.kill');
    if (fs.existsSync(killFile)) try { fs.writeFileSync(killFile, '1'); } catch { /* fall back to kill(2) */ }
  }
  for (;;) {
    const left = [...new Set(layout.dirs.flatMap((dir) => {
      const target = name !== undefined ? path.join(dir, name) : dir;
      const kids = name !== undefined ? [] : (() => { try { return fs.readdirSync(target, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(target, e.name)); } catch { return []; } })();
      return [target, ...kids].flatMap(readProcs);
    }))];
    if (!left.length) return true;
    if (Date.now() > deadline) return false;
    for (const p of left) kill(p);
    await sleep(20);
  }
}

/** Removes a child group, or the whole jail group with its children; gone is fine. Returns the directories it could not remove. */
export async function remove(layout: CgroupLayout, name?: string): Promise<string[]> {
  const failed: string[] = [];
  for (const dir of layout.dirs) {
    const target = name !== undefined ? path.join(dir, name) : dir;
    const kids = name !== undefined ? [] : (() => { try { return fs.readdirSync(target, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(target, e.name)); } catch { return []; } })();
    for (const d of [...kids, target]) {
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        try {
          fs.rmdirSync(d);
          ok = true;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') ok = true;
          else if (code === 'EBUSY') await sleep(20);
          else break;
        }
      }
      if (!ok) failed.push(d);
    }
  }
  return failed;
}

/** The jail group of ROOT's key in every hierarchy of this host, where one exists (for cleaning up after a jail nobody recorded). */
export function leftovers(key: string): CgroupLayout | undefined {
  const d = detect();
  const dirs = [...new Set([d.pids, d.memory, d.v2].filter((h): h is Hierarchy => !!h).map((h) => path.join(h.base, `jail-${key}`)))].filter((p) => fs.existsSync(p));
  return dirs.length ? { dirs } : undefined;
}

/** `run-<pid>` groups whose `jail run` is gone (killed before it could clean up): emptied and removed. */
export async function sweepRuns(layout: CgroupLayout): Promise<string[]> {
  const swept: string[] = [];
  for (const name of children(layout)) {
    const m = /^run-(\d+)$/.exec(name);
    if (!m || running(Number(m[1]))) continue;
    await killAll(layout, name);
    await remove(layout, name);
    swept.push(name);
  }
  return swept;
}
