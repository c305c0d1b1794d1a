// debianPackage() entries -> targets, from dpkg's own records (/var/lib/dpkg/status and
// info/<package>.list): every directory, file and link a package installed, ELF files
// with their closures. dpkg is never run.

import fs from 'node:fs';
import type { PackageEntry } from './entries.js';
import { HostPlacer, type ElfContext } from './expand-elf.js';
import { jailError, type JailError } from './result.js';
import type { Target } from './targets.js';

const DPKG = '/var/lib/dpkg';

/** Installed packages by name (and name:arch), from dpkg's status file. */
function installed(): Map<string, string> {
  const out = new Map<string, string>();
  let text = '';
  try { text = fs.readFileSync(`${DPKG}/status`, 'utf8'); } catch { return out; }
  for (const stanza of text.split(/\n\n+/)) {
    const pkg = /^Package: (.+)$/m.exec(stanza)?.[1];
    const status = /^Status: (.+)$/m.exec(stanza)?.[1];
    const arch = /^Architecture: (.+)$/m.exec(stanza)?.[1];
    if (!pkg || status !== 'install ok installed') continue;
    out.set(pkg, arch ?? '');
    if (arch) out.set(`${pkg}:${arch}`, arch);
  }
  return out;
}

function listFile(name: string, arch: string): string | undefined {
  const bare = name.split(':')[0]!;
  for (const f of [`${DPKG}/info/${bare}.list`, `${DPKG}/info/${bare}:${arch}.list`]) if (fs.existsSync(f)) return f;
  return undefined;
}

/** The installed set, read again when dpkg's status file changes (a watch outlives installs). */
let cache: { stamp: string; installed: Map<string, string> } | undefined;

function installedNow(): Map<string, string> {
  const st = fs.statSync(`${DPKG}/status`, { throwIfNoEntry: false });
  const stamp = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : 'none';
  if (cache?.stamp !== stamp) cache = { stamp, installed: installed() };
  return cache.installed;
}

export function expandPackage(e: PackageEntry, ctx: ElfContext, add: (t: Target) => void, errors: JailError[], warnings: string[]): void {
  const have = installedNow();
  const placer = new HostPlacer(e, ctx, add, errors, warnings);
  for (const name of e.names) {
    const arch = have.get(name);
    const list = arch === undefined ? undefined : listFile(name, arch);
    if (arch === undefined || !list) {
      errors.push(jailError('package-not-installed', `${e.at}: ${e.label}: the Debian package ${name} is not installed on this host, so there is nothing to copy. ` +
        `Install it with \`apt-get install ${name.split(':')[0]}\` and run make again.`, { entry: e.at }));
      continue;
    }
    for (const p of fs.readFileSync(list, 'utf8').split('\n')) {
      if (!p.startsWith('/') || p === '/.' || p === '/') continue;
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) { warnings.push(`${e.at}: ${e.label}: ${p} is listed by package ${name} but missing on this host (removed by hand, or diverted); skipped`); continue; }
      if (st.isDirectory() || st.isSymbolicLink()) { placer.place(p, { dirs: true, dangling: true }); continue; }
      const real = placer.place(p);
      if (real !== undefined && placer.isElf(real)) placer.program(p, 0, real);
    }
  }
}
