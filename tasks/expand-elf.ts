// elf() entries -> targets: each program, its interpreter and its library closure (read
// from the ELF files by the resolver, never by running anything), every file at its real
// host path and every symlink on the way reproduced, so the loader's paths
// (/lib64/ld-linux-x86-64.so.2, /lib/x86_64-linux-gnu/libc.so.6) work inside the jail.

import fs from 'node:fs';
import { globbySync, isDynamicPattern } from 'globby';
import type { ElfEntry } from './entries.js';
import { hostChain } from './host-chain.js';
import { ElfFactsCache, Resolver } from './elf/index.js';
import { jailError, type JailError } from './result.js';
import { stampOf, type Target } from './targets.js';

/** The resolver and its stat-keyed cache of parsed ELF facts, shared by every elf() entry of a build. */
export class ElfContext {
  readonly cache: ElfFactsCache;
  #resolver?: Resolver;
  constructor(cache?: ElfFactsCache) {
    this.cache = cache ?? new ElfFactsCache();
  }
  get resolver(): Resolver {
    return (this.#resolver ??= new Resolver({ cache: this.cache }));
  }
}

const MAX_SCRIPT_DEPTH = 4;

/** The interpreter a `#!` script names, if the file is one. */
function shebang(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(256);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const head = buf.subarray(0, n).toString('latin1');
    if (!head.startsWith('#!')) return undefined;
    const word = head.slice(2).split('\n')[0]!.trim().split(/\s+/)[0];
    return word && word.startsWith('/') ? word : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function expandElf(e: ElfEntry, ctx: ElfContext, add: (t: Target) => void, errors: JailError[], warnings: string[]): void {
  const err = (msg: string, p: string) => errors.push(jailError('elf', `${e.at}: ${e.label}: ${msg}`, { path: p, entry: e.at }));

  /** One host path into the jail as-is: its symlink chain, then the real file. */
  const place = (p: string): string | undefined => {
    const chain = hostChain(p);
    if (!chain.ok) { err(`${chain.error}. Install what provides it, or fix the path.`, p); return undefined; }
    for (const l of chain.value.links) add({ kind: 'symlink', path: l.path, target: l.target, mode: 0o777, uid: 0, gid: 0, at: e.at, label: e.label });
    const st = chain.value.stat;
    if (!st.isFile()) { err(`${chain.value.real} is not a regular file, so it cannot be a program or library.`, p); return undefined; }
    let mode = Number(st.mode) & 0o7777;
    if (!e.setuid) mode &= ~0o6000;
    add({ kind: 'file', path: chain.value.real, source: chain.value.real, sourceStamp: stampOf(st), mode, uid: 0, gid: 0, at: e.at, label: e.label });
    return chain.value.real;
  };

  const program = (p: string, depth: number): void => {
    const real = place(p);
    if (real === undefined) return;
    const facts = ctx.cache.get(real);
    if (!facts.ok) { err(facts.error.message, p); return; }
    if (facts.value === null) {
      // Not an ELF file: a script brings its interpreter; data is just copied.
      const interp = shebang(real);
      if (interp && depth < MAX_SCRIPT_DEPTH) program(interp, depth + 1);
      return;
    }
    const closure = ctx.resolver.closure(p);
    if (!closure.ok) { err(closure.error.message, p); return; }
    const c = closure.value;
    for (const w of c.warnings) warnings.push(`${e.at}: ${e.label}: ${w}`);
    for (const m of c.missing) {
      err(`${m.chain.join(' -> ')}: not found${m.reason ? ` (${m.reason})` : ''}. Install the package that provides ${m.soname}, ` +
        'or remove the program from the entry; the jail was left as it was.', p);
    }
    if (c.interpreter) place(c.interpreter);
    for (const lib of new Set(Object.values(c.libraries))) place(lib);
  };

  for (const pattern of e.patterns) {
    if (isDynamicPattern(pattern)) {
      const matches = globbySync(pattern, { onlyFiles: true, dot: true, followSymbolicLinks: false, absolute: true, unique: true });
      if (matches.length === 0) { err('the pattern matches no file on this host. Install what provides the files, fix the pattern, or remove it.', pattern); continue; }
      for (const m of matches.sort()) program(m, 0);
    } else {
      program(pattern, 0);
    }
  }
}
