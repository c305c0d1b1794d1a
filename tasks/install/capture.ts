// Running an install step and capturing what it did. The step runs in the jail (as the
// article ran `make install`) confined as `jail run` confines a command — namespaces of its
// own, no_new_privs, a new session, fds 0-2 only — as root with only the capabilities
// installing files needs (run/chain.ts), a clean environment and a timeout. ROOT is
// walked with lstat before and after; whatever the step added or changed becomes a layer
// (pack format, so it is checked like any pack when read back) and the layer's files
// become ordinary targets. A failed step's new files are removed again.

import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { RootFs } from '../rootfs.js';
import { runOnce } from '../run/once.js';
import { closeInheritedFds } from '../run/fds.js';
import { prepareInstallStep, type Jail } from '../run/instance.js';
import type { RunConfig } from '../run/config.js';
import { JailFailure, jailError, type JailError } from '../result.js';
import { INDEX_NAME, PACK_FORMAT, memberName, type PackEntry, type PackIndex } from '../pack/format.js';
import { TarWriter } from '../pack/tar-write.js';
import { layersDir, type Layer } from './layers.js';
import { comparePaths } from '../targets.js';
import { RootReader, procPath } from '../check/reader.js';
import type { Stat } from '../stat.js';
import { hasRawBytes, readNames } from '../byte-names.js';
import { printable } from '../printable.js';

/** `scratch`: beneath a sticky directory (a tmp): never captured; what a step leaves there is removed. */
type Sig = { kind: 'dir' | 'file' | 'symlink' | 'other'; sig: string; st: Stat; scratch?: boolean };

/**
 * Every path in ROOT with what identifies its state; other filesystems are skipped, and
 * what lies beneath a scratch (sticky) directory is marked so. Walked through directory descriptors (RootReader): the step, or
 * anything else in the jail, may swap a directory for a link to the host meanwhile, and a
 * walk by path would follow it and capture host files.
 */
export function snapshot(root: string): Map<string, Sig> {
  const out = new Map<string, Sig>();
  const opened = RootReader.open(root);
  if (!(opened instanceof RootReader)) return out;
  const reader = opened;
  try {
    const dev = reader.rootStat.dev;
    const walk = (p: string, scratch: boolean) => {
      const fd = reader.dirFd(p);
      if (fd === undefined) return; // no longer a directory: seen as such by its parent's next walk
      let names: string[];
      try { names = readNames(procPath(fd, '.')); } catch { return; }
      for (const name of names) {
        const q = p === '/' ? `/${name}` : `${p}/${name}`;
        const st = reader.lstat(q);
        if (!st || st.dev !== dev) continue;
        const own = `${st.mode & 0o7777}:${st.uid}:${st.gid}`;
        const sig: Sig = st.isDirectory() ? { kind: 'dir', sig: own, st }
          : st.isSymbolicLink() ? { kind: 'symlink', sig: `${reader.readlink(q)}:${own}`, st }
            : st.isFile() ? { kind: 'file', sig: `${own}:${st.stamp}`, st }
              : { kind: 'other', sig: `${st.mode}:${st.rdev}`, st };
        if (scratch) sig.scratch = true;
        out.set(q, sig);
        if (st.isDirectory()) walk(q, scratch || (st.mode & 0o1000) !== 0);
      }
    };
    walk('/', false);
  } finally {
    reader.close();
  }
  return out;
}

export interface StepResult { errors: JailError[]; warnings: string[]; captured: number; output: string }

/** Runs the step to its end (or its timeout, which ends it and everything it started); its output, stdout and stderr together. */
async function runStep(e: Layer['entry'], j: Jail, installDir: string): Promise<{ failure?: string; output: string }> {
  // A descriptor this process inherited (a directory of the host) would reach the jail's root process: only fds 0-2 go in.
  closeInheritedFds();
  const log = path.join(layersDir(installDir), `${e.name}.log`);
  fs.mkdirSync(path.dirname(log), { recursive: true, mode: 0o700 });
  const fd = fs.openSync(log, 'w', 0o600);
  let st;
  try {
    st = await runOnce(j, { cmd: e.run, stdio: ['ignore', fd, fd], env: e.env, timeoutMs: e.timeoutMs, installStep: true });
  } finally {
    fs.closeSync(fd);
  }
  let output = '';
  try { output = fs.readFileSync(log).subarray(0, 64 * 1024).toString('utf8'); } catch { /* gone */ }
  fs.rmSync(log, { force: true });
  if (st.interrupted) return { failure: `the step was interrupted (${st.interrupted})`, output };
  if (st.timedOut) return { failure: `the step timed out after ${e.timeoutMs / 1000} s; it and every process it started were killed`, output };
  if (st.code !== 0) return { failure: `the step exited with status ${st.code}`, output };
  return { output };
}

/** The limits of what runs in the jail (the jailfile's runtime()), which a step gets too. */
export type StepLimits = Pick<RunConfig, 'pids' | 'cpu' | 'memory'>;

export async function runInstallStep(layer: Layer, root: string, installDir: string, declared: ReadonlySet<string>, limits: StepLimits): Promise<StepResult> {
  const e = layer.entry;
  const warnings: string[] = [];
  const fail = (msg: string): StepResult => ({ errors: [jailError('install-failed', `${e.at}: ${e.label}: ${msg}`, { entry: e.at })], warnings, captured: 0, output: '' });
  // A host that lacks what confines a step (keyutils' keyctl, say): refused, naming the package, before anything runs.
  let j: Jail;
  try { j = prepareInstallStep(root, e.timeoutMs, limits); } catch (err) {
    if (!(err instanceof JailFailure)) throw err;
    return { errors: err.errors.map((x) => jailError(x.code, `${e.at}: ${e.label}: ${x.message}`, { entry: e.at })), warnings, captured: 0, output: '' };
  }
  const before = snapshot(root);
  const r = await runStep(e, j, installDir);
  const after = snapshot(root);
  const added = [...after.keys()].filter((p) => !before.has(p)).sort();
  // A failed or refused step: its new files go; make then puts back the declared files it changed.
  const undo = (msg: string): StepResult => {
    const fs_ = RootFs.open(root);
    // Only what the snapshot saw goes: a service of a booted jail renaming a file of its own over the name is not undone.
    try { for (const p of [...added].reverse()) fs_.prune(p, after.get(p)!.st); } finally { fs_.close(); }
    return fail(`${msg}\nIts new files were removed and the files the jailfile declares were put back; fix the step or its inputs and run make again.`);
  };
  if (r.failure) return undo(`${r.failure}${r.output.trim() ? `: ${r.output.trim()}` : ''}`);
  // What the step left in a scratch directory is not part of its work, and is not left
  // behind: a setuid file in /tmp would outlive every build and rebuild (and be root's).
  const leftovers = [...after].filter(([p, s]) => s.scratch && (!before.has(p) || (s.st.isFile() && (s.st.mode & 0o6000) !== 0 && before.get(p)!.sig !== s.sig)));
  if (leftovers.length) {
    const fs_ = RootFs.open(root);
    try { for (const [p, s] of leftovers.sort(([a], [b]) => comparePaths(b, a))) fs_.prune(p, s.st); } finally { fs_.close(); }
  }
  const changed: string[] = [];
  for (const [p, s] of after) {
    if (s.scratch) continue;
    const b = before.get(p);
    if (!b) { changed.push(p); continue; }
    if (b.sig === s.sig) continue;
    if (declared.has(p)) {
      if (s.kind === 'dir') continue; // a declared directory's own attributes are the build's to repair
      return undo(`the step changed ${p}, which the jailfile declares; an install step may only add files the jailfile does not make.`);
    }
    changed.push(p);
  }
  // Read as bytes, so it cannot vanish from the capture; but jail's paths are text.
  const badName = changed.find(hasRawBytes);
  if (badName !== undefined) {
    return undo(`the step made ${printable(badName)}, whose name is not valid UTF-8 (shown escaped); jail's paths are UTF-8 text, so it cannot capture it, nor replay it. Have the step name its files in UTF-8, or remove that one before the step ends.`);
  }
  for (const [p, b] of before) if (!after.has(p) && !b.scratch) warnings.push(`${e.at}: ${e.label}: the step removed ${p}`);

  const entries: PackEntry[] = [];
  const files = path.join(layer.dir, 'files');
  fs.rmSync(layer.dir, { recursive: true, force: true });
  fs.mkdirSync(files, { recursive: true, mode: 0o700 });
  const staged: [string, string][] = [];
  const firstName = new Map<string, string>();
  const tmp = `${layer.tar}.${process.pid}.tmp`;
  const w = new TarWriter(tmp);
  const opened = RootReader.open(root);
  if (!(opened instanceof RootReader)) return undo(`ROOT could not be opened after the step (${opened.code})`);
  const reader = opened;
  try {
  for (const p of changed.sort(comparePaths)) {
    const { kind, st } = after.get(p)!;
    let mode = st.mode & 0o7777;
    if (kind === 'file' && (mode & 0o6000)) { warnings.push(`${e.at}: ${e.label}: ${p} was installed setuid/setgid; the bits were dropped`); mode &= ~0o6000; }
    const base = { path: p, mode, uid: st.uid, gid: st.gid };
    if (kind === 'dir') entries.push({ ...base, kind: 'dir' });
    else if (kind === 'symlink') {
      const target = reader.readlink(p);
      if (target === undefined) return undo(`${p} changed while the step's work was captured; run make again`);
      entries.push({ ...base, kind: 'symlink', target });
    }
    else if (kind === 'file' && st.nlink > 1 && firstName.has(`${st.dev}:${st.ino}`)) {
      entries.push({ ...base, kind: 'file', linkTo: firstName.get(`${st.dev}:${st.ino}`)! });
    } else if (kind === 'file') {
      if (st.nlink > 1) firstName.set(`${st.dev}:${st.ino}`, p);
      // The inode the walk saw, reached through directory descriptors, or nothing.
      const body = reader.readFile(p, Number.MAX_SAFE_INTEGER, st);
      if (body === undefined) return undo(`${p} changed while the step's work was captured; run make again`);
      const sha256 = createHash('sha256').update(body).digest('hex');
      const stagedFile = path.join(files, String(staged.length));
      fs.writeFileSync(stagedFile, body, { mode: 0o600 });
      staged.push([p, stagedFile]);
      entries.push({ ...base, kind: 'file', size: body.length, sha256 });
      await w.file(memberName(p), body);
    } else {
      await w.close().catch(() => {});
      fs.rmSync(tmp, { force: true });
      return undo(`the step made ${p}, a device, FIFO or socket; install steps may not (declare device nodes with device()).`);
    }
  }
  } finally {
    reader.close();
  }
  const index: PackIndex = { format: PACK_FORMAT, created: new Date().toISOString(), root, vars: {}, entries };
  await w.file(INDEX_NAME, Buffer.from(JSON.stringify(index)));
  await w.close();
  fs.renameSync(tmp, layer.tar);
  fs.writeFileSync(path.join(layer.dir, 'staged.json'), JSON.stringify({ index, staged }));
  // One layer per step: the one captured now replaces the older ones.
  for (const f of fs.readdirSync(layersDir(installDir))) {
    if (f.startsWith(`${e.name}-`) && f !== path.basename(layer.tar) && f !== path.basename(layer.dir) && /\.(tar|d)$/.test(f)) {
      fs.rmSync(path.join(layersDir(installDir), f), { recursive: true, force: true });
    }
  }
  layer.pack = { index, staged: new Map(staged) };
  return { errors: [], warnings, captured: entries.length, output: r.output };
}
