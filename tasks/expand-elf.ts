// elf() entries -> targets: each program, its interpreter and its library closure (read
// from the ELF files by the resolver, never by running anything), every file at its real
// host path and every symlink on the way reproduced, so the loader's paths
// (/lib64/ld-linux-x86-64.so.2, /lib/x86_64-linux-gnu/libc.so.6) work inside the jail.

import { JAIL_PATH, SHEBANG_BYTES, envProgram, findInJailPath, isScript, parseShebang, type Shebang } from './elf/shebang.js';
import fs from 'node:fs';
import { ELF_GLOB, globNaming, isGlob } from './glob.js';
import { badNameMessage } from './byte-names.js';
import type { ElfEntry } from './entries.js';
import { ElfFactsCache, Resolver, genericProfile, profileFor, unstartable, type ElfInfo } from './elf/index.js';
import type { CacheRecord } from './elf/ld-cache-write.js';
import { jailError, type JailError } from './result.js';
import { within } from './host-inputs.js';
import { sourceStampOf, type Target } from './targets.js';

/** The resolver and its stat-keyed cache of parsed ELF facts, shared by every elf() entry of a build. */
export class ElfContext {
  readonly cache: ElfFactsCache;
  /**
   * Libraries the host's loader finds only through its ld.so.cache (outside the built-in
   * directories): the jail gets its own cache with these entries, and the first entry that
   * needed one is named as its author.
   */
  readonly ldCacheRecords: CacheRecord[] = [];
  ldCacheEndian: 'le' | 'be' = 'le';
  ldCacheAuthor?: { at: string; label: string };
  /** ROOT's real path: nothing is placed from inside it (a program or library there may have been planted). */
  readonly root?: string;
  #resolver?: Resolver;
  constructor(cache?: ElfFactsCache, root?: string) {
    this.cache = cache ?? new ElfFactsCache();
    this.root = root;
  }
  get resolver(): Resolver {
    return (this.#resolver ??= new Resolver({ cache: this.cache, memoize: true }));
  }
}

const MAX_SCRIPT_DEPTH = 4;

/**
 * Whether a file is a `#!` script, and its line (when the interpreter is absolute); null
 * when it is no script (or cannot be read).
 */
function shebang(file: string): Partial<Shebang> | null {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(SHEBANG_BYTES);
    const head = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0));
    if (!isScript(head)) return null;
    return parseShebang(head) ?? {};
  } catch {
    return null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** What both elf() and debianPackage() need: host paths placed in the jail with their chains, ELF files with their closures. */
export class HostPlacer {
  constructor(
    private readonly e: { at: string; label: string; setuid?: boolean },
    private readonly ctx: ElfContext,
    private readonly add: (t: Target) => void,
    private readonly errors: JailError[],
    private readonly warnings: string[],
  ) {}

  err(msg: string, p: string): void {
    this.errors.push(jailError('elf', `${this.e.at}: ${this.e.label}: ${msg}`, { path: p, entry: this.e.at }));
  }

  #link(path: string, target: string, library: boolean): void {
    this.add({ kind: 'symlink', path, target, mode: 0o777, uid: 0, gid: 0, at: this.e.at, label: this.e.label, ...(library ? { library } : {}) });
  }

  /**
   * One host path into the jail as it is: its symlink chain, then what it ends at (a file,
   * or with `dirs` a directory). Returns the real path of a regular file.
   */
  place(p: string, opts: { dirs?: boolean; dangling?: boolean; library?: boolean; program?: boolean } = {}): string | undefined {
    const library = opts.library === true;
    // The resolver's own path walk: the same lstats its closures made, each done once per build.
    const chain = this.ctx.resolver.fsr.trace(p);
    if (chain.real === undefined || chain.st === undefined) {
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (opts.dangling && st?.isSymbolicLink()) { this.#link(p, fs.readlinkSync(p), library); return undefined; }
      const why = chain.code === 'ENOENT' ? 'does not exist' : chain.code === 'ELOOP' ? 'has too many levels of symbolic links' : `cannot be read (${chain.code})`;
      this.err(`${p} ${why}. Install what provides it, or fix the path.`, p);
      return undefined;
    }
    const real = chain.real;
    const root = this.ctx.root;
    if (root !== undefined) {
      const inside = within(real, root) ? real : chain.links.find((l) => within(l.path, root))?.path;
      if (inside !== undefined) {
        this.err(`${p}${inside === p ? '' : ` leads to ${inside}, which`} lies inside ROOT (${root}): programs and libraries come from the host, never from the jail, where anything may have been planted. Name the host's own copy, outside ROOT, or choose a ROOT elsewhere.`, p);
        return undefined;
      }
    }
    for (const l of chain.links) this.#link(l.path, l.target, library);
    // Directories a '..' climbed out of: only the final file's parents would be made otherwise.
    for (const d of chain.dirs) this.add({ kind: 'dir', path: d, mode: 0o755, uid: 0, gid: 0, at: this.e.at, label: this.e.label, implicit: true });
    const st = chain.st;
    const perm = Number(st.mode) & 0o7777;
    if (st.isDirectory() && opts.dirs) {
      this.add({ kind: 'dir', path: real, mode: perm & ~0o6000, uid: 0, gid: 0, at: this.e.at, label: this.e.label, sourceMode: true });
      return undefined;
    }
    if (!st.isFile()) { this.err(`${real} is not a regular file, so it cannot be a program or library.`, p); return undefined; }
    // Refused before it becomes a target: with -k the build goes on past expand errors,
    // and a data file (an account file, a key) must not ride in as a "program".
    if (opts.program) {
      const facts = this.ctx.cache.getWithStat(real, st);
      if (!facts.ok) { this.err(facts.error.message, p); return undefined; }
      const refused = facts.value && unstartable(facts.value, real, p);
      if (refused) { this.err(refused.message, p); return undefined; }
      if (this.isData(real, st)) {
        this.err(`${real} is neither an ELF program or library nor a #! script, so elf() will not copy it. Copy data files with copy(), or fix the path.`, p);
        return undefined;
      }
    }
    const mode = this.e.setuid ? perm : perm & ~0o6000;
    this.add({ kind: 'file', path: real, source: real, sourceStamp: sourceStampOf(st), mode, uid: 0, gid: 0, at: this.e.at, label: this.e.label, sourceMode: true, ...(library ? { library } : {}) });
    return real;
  }

  /** A regular file that is readable and neither ELF nor a `#!` script (anything else is place()'s to judge). */
  isData(p: string, st = fs.statSync(p, { bigint: true, throwIfNoEntry: false })): boolean {
    if (!st?.isFile()) return false;
    const facts = this.ctx.cache.getWithStat(p, st);
    return facts.ok && facts.value === null && shebang(p) === null;
  }

  /** A program or library with its interpreter and closure; a script with its #! interpreter's. */
  program(p: string, depth = 0, real = this.place(p, { program: true })): void {
    if (real === undefined) return;
    const facts = this.ctx.cache.get(real);
    if (!facts.ok) { this.err(facts.error.message, p); return; }
    if (facts.value === null) {
      const line = shebang(real);
      if (!line?.interpreter || depth >= MAX_SCRIPT_DEPTH) return;
      this.program(line.interpreter, depth + 1);
      const name = envProgram(line as Shebang);
      if (name !== undefined) this.#envProgram(real, line.interpreter, name, depth, p);
      return;
    }
    const closure = this.ctx.resolver.closure(p);
    if (!closure.ok) { this.err(closure.error.message, p); return; }
    const c = closure.value;
    for (const w of c.warnings) this.warnings.push(`${this.e.at}: ${this.e.label}: ${w}`);
    for (const m of c.missing) {
      this.err(`${m.chain.join(' -> ')}: not found${m.reason ? ` (${m.reason})` : ''}. Install the package that provides ${m.soname}, ` +
        'or remove the program from the entry; nothing the entry put in the jail is removed until then.', p);
    }
    if (c.interpreter) this.place(c.interpreter, { library: true });
    for (const lib of new Set([...Object.values(c.libraries), ...Object.values(c.dlopened)])) this.place(lib, { library: true });
    this.#cacheOnly(facts.value, { ...c.libraries, ...c.dlopened });
  }

  /**
   * `#!/usr/bin/env NAME`: env is only the interpreter, NAME is what runs. Found as env
   * would find it in the jail, in the PATH jailed commands get, looked up on the host
   * (symlinks followed, nothing run), and brought with its closure at that path.
   */
  #envProgram(script: string, env: string, name: string, depth: number, p: string): void {
    const found = findInJailPath(name, (q) => {
      const look = this.ctx.resolver.fsr.lookup(q);
      return look.kind === 'found' && look.st.isFile() && (look.st.mode & 0o111n) !== 0n;
    });
    if (found !== undefined) { this.program(found, depth + 1); return; }
    const fix = /[ \t]/.test(name)
      ? `The kernel passes the rest of the #! line to env as one argument: write #!${env} -S ${name} to have env split it.`
      : 'Install what provides it, or name the interpreter by its absolute path in the #! line.';
    this.err(`${script}: its #! line has ${env} run ${JSON.stringify(name)}, and no executable file of that name is in ${JAIL_PATH} ` +
      `on this host (the PATH of jailed commands), so env would not find it in the jail. ${fix}`, p);
  }

  /**
   * Libraries that came from the host's ld.so.cache and lie outside the loader's built-in
   * directories: without a cache entry the jail's loader would not look there. One found
   * through RPATH or RUNPATH does not come back from the cache lookup, or comes back at the
   * same path, where a cache entry changes nothing.
   */
  #cacheOnly(program: ElfInfo, libs: Record<string, string>): void {
    const host = this.ctx.resolver.ldCache().cache;
    if (!host) return;
    const profile = profileFor(program.class, program.endian, program.machine, program.flags) ?? genericProfile();
    const builtIn = profile.systemDirs.map((d) => d + '/');
    for (const [name, lib] of Object.entries(libs)) {
      if (name.includes('/') || builtIn.some((d) => lib.startsWith(d) && !lib.slice(d.length).includes('/'))) continue;
      const entry = host.lookup(name, profile.cacheFlagsOk, profile.cacheDefaultId, profile.legacyHwcaps);
      if (entry?.value !== lib) continue;
      this.ctx.ldCacheRecords.push({ key: name, value: lib, flags: entry.flags });
      this.ctx.ldCacheEndian = program.endian;
      this.ctx.ldCacheAuthor ??= { at: this.e.at, label: this.e.label };
    }
  }

  /** Is this host file an ELF object (read from its header, cached by stat)? */
  isElf(real: string): boolean {
    const f = this.ctx.cache.get(real);
    return f.ok && f.value !== null;
  }
}

export function expandElf(e: ElfEntry, ctx: ElfContext, add: (t: Target) => void, errors: JailError[], warnings: string[]): void {
  const placer = new HostPlacer(e, ctx, add, errors, warnings);
  for (const pattern of e.patterns) {
    if (isGlob(pattern)) {
      const { matches, badNames } = globNaming(pattern, ELF_GLOB);
      for (const b of badNames) errors.push(jailError('bad-name', `${e.at}: ${e.label}: ${badNameMessage(b, `met by the pattern ${pattern}`)}`, { path: b, entry: e.at }));
      if (matches.length === 0 && badNames.length === 0) { placer.err('the pattern matches no file on this host. Install what provides the files, fix the pattern, or remove it.', pattern); continue; }
      for (const m of matches.sort()) {
        // A pattern's match that is no program (a linker script named libc.so, a README
        // among modules) is left out; a path named on its own is refused in place().
        if (placer.isData(m)) { warnings.push(`${e.at}: ${e.label}: ${m} matches the pattern but is neither ELF nor a #! script; left out`); continue; }
        placer.program(m);
      }
    } else {
      placer.program(pattern);
    }
  }
}
