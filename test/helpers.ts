// Test rig: temporary install directories, host source trees and ROOTs on the real
// filesystem, the real CLI run as a child process, and a fingerprint of ROOT to assert
// exactly what a build touched.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(REPO, 'dist', 'tasks', 'cli.js');

export interface Rig {
  /** The install directory: holds jailfile.ts. */
  dir: string;
  /** Host-side source files the jailfile copies. */
  src: string;
  /** The jail. */
  root: string;
  /** Somewhere outside ROOT that must never change. */
  outside: string;
  jailfile(body: string): void;
  /**
   * Copies a jailfile of the repository (`jailfile.ts`, `fixtures/jailfiles/basic.ts`) into
   * the install directory and returns the copy's path: the build record and caches go
   * beside the jailfile, and a test's belong in its own directory, not in the checkout.
   */
  repoJailfile(rel: string): string;
  jail(...args: string[]): { code: number; stdout: string; stderr: string };
  jailAsync(...args: string[]): ChildProcess;
  cleanup(): void;
}

/**
 * The claims (/run/jail-build/*.owner, tasks/root-owner.ts) that builds from the rig's
 * install directories left: a claim lasts until reboot, and a test run makes hundreds.
 */
function dropClaims(base: string): void {
  const dir = '/run/jail-build';
  let names: string[];
  try { names = fs.readdirSync(dir).filter((n) => n.endsWith('.owner')); } catch { return; }
  for (const n of names) {
    try {
      const { record } = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as { record?: string };
      if (typeof record === 'string' && record.startsWith(base + '/')) fs.rmSync(path.join(dir, n), { force: true });
    } catch { /* another process's, mid-write, or gone */ }
  }
}

export function rig(): Rig {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'jail-test-'));
  const r: Rig = {
    dir: path.join(base, 'install'),
    src: path.join(base, 'src'),
    root: path.join(base, 'root'),
    outside: path.join(base, 'outside'),
    jailfile(body) {
      fs.writeFileSync(path.join(r.dir, 'jailfile.ts'), body);
    },
    repoJailfile(rel) {
      const to = path.join(r.dir, path.basename(rel));
      fs.copyFileSync(path.join(REPO, rel), to);
      return to;
    },
    jail(...args) {
      const p = spawnSync(process.execPath, [CLI, ...args], { cwd: r.dir, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
      return { code: p.status ?? -1, stdout: p.stdout, stderr: p.stderr };
    },
    jailAsync(...args) {
      return spawn(process.execPath, [CLI, ...args], { cwd: r.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    },
    cleanup() {
      spawnSync('umount', ['-R', r.root], { stdio: 'ignore' });
      fs.rmSync(base, { recursive: true, force: true });
      dropClaims(base);
    },
  };
  for (const d of [r.dir, r.src, r.outside]) fs.mkdirSync(d, { recursive: true });
  return r;
}

export interface Print { type: string; ino: bigint; mtimeNs: bigint; ctimeNs: bigint; mode: number; uid: number; gid: number; link?: string; rdev: bigint }

/** Every path beneath `root` with its inode and times: equal fingerprints mean nothing was written. */
export function fingerprint(root: string): Map<string, Print> {
  const out = new Map<string, Print>();
  const walk = (p: string) => {
    for (const name of fs.readdirSync(p)) {
      const full = path.join(p, name);
      const st = fs.lstatSync(full, { bigint: true });
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() ? 'chr' : 'other';
      out.set(full.slice(root.length), {
        type, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid),
        link: type === 'symlink' ? fs.readlinkSync(full) : undefined, rdev: st.rdev,
      });
      if (type === 'dir') walk(full);
    }
  };
  walk(root);
  return out;
}

/** Paths whose inode, times, mode or owner differ between two fingerprints (directories' times aside). */
export function touched(before: Map<string, Print>, after: Map<string, Print>): string[] {
  const out = new Set<string>();
  for (const [p, a] of after) {
    const b = before.get(p);
    if (!b) { out.add(p); continue; }
    const dirTimesOnly = a.type === 'dir' && b.type === 'dir';
    if (a.type !== b.type || a.ino !== b.ino || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.link !== b.link) out.add(p);
    else if (!dirTimesOnly && (a.mtimeNs !== b.mtimeNs || a.ctimeNs !== b.ctimeNs)) out.add(p);
  }
  for (const p of before.keys()) if (!after.has(p)) out.add(p);
  return [...out].sort();
}

/** The lines of a build's output that name a change. */
export function changes(stdout: string): string[] {
  return stdout.split('\n').filter((l) => /^(would )?(create|update|remove) /.test(l)).sort();
}

/** Every byte and attribute of a tree, for comparing against the host side. */
export function treeBytes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string) => {
    for (const name of fs.readdirSync(p)) {
      const full = path.join(p, name);
      const st = fs.lstatSync(full);
      out.set(full.slice(dir.length), st.isFile() ? fs.readFileSync(full, 'base64') : st.isSymbolicLink() ? `-> ${fs.readlinkSync(full)}` : `mode ${st.mode}`);
      if (st.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return out;
}

/** Type, mode, owner, device numbers, link target and content hash of every path. */
export function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, f] of fingerprint(root)) {
    const full = root + p;
    const hash = f.type === 'file' ? createHash('sha256').update(fs.readFileSync(full)).digest('hex') : '';
    out.set(p, `${f.type} ${f.mode.toString(8)} ${f.uid}:${f.gid} ${f.type === 'chr' ? f.rdev : ''} ${f.link ?? ''} ${hash}`);
  }
  return out;
}

