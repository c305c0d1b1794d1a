// Computes a program's shared-library closure the way glibc's ld.so (2.3x, elf/dl-load.c,
// dl-deps.c) would inside a root, without running anything: breadth-first over DT_NEEDED
// (a DT_FILTER or DT_AUXILIARY filtee processed right after the object naming it), each
// name looked up as already-loaded (name, SONAME or same file) before searching
// DT_RPATH of the loader chain, DT_RUNPATH of the requester, ld.so.cache, then the system
// directories (each directory's legacy hwcap subdirectories first). LD_LIBRARY_PATH is
// deliberately ignored: the jail runs with a clean environment.

import * as path from 'node:path';
import { fail, jailError, ok, type JailError, type Result } from '../result.js';
import { ElfFactsCache } from './cache.js';
import { eventOf, examine, type Candidate, type SearchEvent } from './candidate.js';
import { type ElfInfo, type Filtee } from './elf-file.js';
import { openLdCache, type LdCacheIndex } from './ld-cache-search.js';
import { readLdConf } from './ld-conf.js';
import { genericProfile, profileFor, type MachineProfile } from './platform.js';
import { RootPaths } from './root-path.js';

export interface Closure {
  /** The program as asked. */
  path: string;
  /** PT_INTERP of the program. */
  interpreter?: string;
  /** The program's own DT_NEEDED. */
  needed: string[];
  /** Whole closure: name as requested -> path as the loader opens it (as ldd prints it). */
  libraries: Record<string, string>;
  /** Libraries the closure will dlopen at run time (libgcc_s.so.1 for thread exit), with their own closures in `libraries`' stead. */
  dlopened: Record<string, string>;
  /** chain = [program, lib, ..., soname]; reason says why (extra). */
  missing: { soname: string; chain: string[]; reason?: string }[];
  /** Names not found that the loader does without (DT_AUXILIARY), or that only a dlopen at run time asks for (extra). */
  unneeded: Record<string, 'auxiliary' | 'dlopen'>;
  /** Candidate paths looked at that did not exist (re-resolve when one appears). */
  probes: string[];
  warnings: string[];
  // ---- extras ----
  /** Each loaded object's requested names in DT_NEEDED order (after $ORIGIN etc.), keyed by its path. */
  graph: Record<string, string[]>;
  /** Existing candidates passed over (wrong ELF class or machine). */
  skipped: { path: string; reason: string }[];
  /** Loader configuration files consulted (ld.so.cache, ld.so.preload, ld.so.conf...): a change may change the answer. */
  config: string[];
}

/** The part of a Closure that `jail deps --json` prints. */
export interface ClosureSummary {
  interpreter?: string;
  needed: string[];
  libraries: Record<string, string>;
  dlopened: Record<string, string>;
  /** The missing names, each once, in the order first met. */
  missing: string[];
  /** What the tree prints as warnings; present only when there are some. */
  warnings?: string[];
}

export function summarize(c: Closure): ClosureSummary {
  const missing = c.missing.length > 0 ? [...new Set(c.missing.map((m) => m.soname))] : [];
  const { needed, libraries, dlopened } = c;
  const s: ClosureSummary = c.interpreter !== undefined ? { interpreter: c.interpreter, needed, libraries, dlopened, missing } : { needed, libraries, dlopened, missing };
  if (c.warnings.length > 0) s.warnings = c.warnings;
  return s;
}

/**
 * Everything of a program that its summary depends on, or undefined when it may depend on
 * the program's path. Past the program's own facts, the walk reads its path only to name it
 * in messages and chains, which a summary leaves out, and to expand $ORIGIN: a program
 * naming a dynamic string token anywhere gets a walk of its own.
 */
export function summaryKey(info: ElfInfo): string | undefined {
  // Strings cut from ELF string tables hold no NUL: joined with NULs behind their counts,
  // the lists cannot run into each other.
  // A string that is not UTF-8 reads like another that is (U+FFFD): no sharing.
  if (info.undecodable.length > 0) return undefined;
  // Warnings about the program itself name it: a summary carrying them is its own.
  if (info.warnings.length > 0 || info.defects.length > 0 || (info.type !== 'exec' && info.type !== 'dyn') ||
    info.needed.length > CLOSURE_LIMITS.manyNeeded) return undefined;
  let key = `${info.class}\0${info.endian}\0${info.machine}\0${info.flags}\0${info.dynamic}\0${info.flags1}\0` +
    `${info.interpreter === undefined ? '-' : `+${info.interpreter}`}\0${info.soname === undefined ? '-' : `+${info.soname}`}`;
  const lists = [info.needed, info.dlopens, info.rpath, info.runpath];
  for (let k = 0; k < lists.length; k++) {
    const l = lists[k] as string[];
    for (let i = 0; i < l.length; i++) if ((l[i] as string).includes('$')) return undefined;
    key += `\0${l.length}\0${l.join('\0')}`;
  }
  const filtees = info.filtees;
  key += `\0${filtees.length}`;
  for (let i = 0; i < filtees.length; i++) {
    const f = filtees[i] as Filtee;
    if (f.name.includes('$')) return undefined;
    key += `\0${f.aux ? 'a' : 'f'}${f.after}\0${f.name}`;
  }
  return key;
}

/**
 * Why the kernel cannot start a program that reads as a sound ELF file: its PT_INTERP is
 * empty (the kernel opens it by name, and "" opens nothing; a library's is never read).
 */
export function unstartable(info: ElfInfo, shown: string, p: string): JailError | undefined {
  if (info.interpreter !== '') return undefined;
  return jailError('elf-corrupt', `${shown} has an empty program interpreter path (PT_INTERP), so no loader can start it and the kernel will not run it. ` +
    'Replace it with an intact copy, or relink it.', { path: p });
}

export interface ResolverOptions {
  /** Default '/': resolve as the loader would inside this root. */
  root?: string;
  cache?: ElfFactsCache;
  /** Override the loader's built-in directories (default: by machine, Debian multiarch). */
  systemDirs?: string[];
  /** Override $LIB. */
  dstLib?: string;
  /** Override $PLATFORM. */
  platform?: string;
  /** Without an ld.so.cache, search the ld.so.conf directories as ldconfig would record them (default true). */
  ldconfFallback?: boolean;
  /** Honour ROOT/etc/ld.so.preload (default true). */
  preload?: boolean;
  /** Take the tree as unchanging for this resolver's life (one build, one `jail deps` run): every stat is made once. */
  memoize?: boolean;
}

/** Bounds for hostile inputs. */
export const CLOSURE_LIMITS = { maxObjects: 10000, manyNeeded: 512 };

const DF_1_NODEFLIB = 0x800;

interface Obj {
  /** l_name: the path the loader opened (the program: the path as asked). */
  path: string;
  /**
   * l_libname: names this object answers to, the first (what messages call it) from when
   * it was loaded. The loader's scan by name is byName, which holds all of them.
   */
  names: Set<string>;
  soname?: string;
  info: ElfInfo;
  /** dev:ino, for the loader's same-file check; absent for the program. */
  id?: string;
  /** l_loader: the object whose NEEDED first brought this one in. */
  loader?: Obj;
  /** l_origin, for $ORIGIN; null when unknown; undefined until first needed (the program's takes a realpath). */
  origin: string | null | undefined;
  isMain: boolean;
  queued: boolean;
  /** The objects its dependencies mapped to, once processed (the edges findCycles walks). */
  kids?: Obj[];
  /** Tarjan's index and low-link, and whether it is on the stack (findCycles only). */
  index?: number;
  low?: number;
  onStack?: boolean;
  /** Place in the walk's queue, once queued. */
  pos?: number;
  /** The names its dependencies were requested by, once processed (its entry in the graph). */
  requested?: string[];
  /**
   * The object whose DT_FILTER or DT_AUXILIARY last placed it in the loader's list, just in
   * front of that object. Followed from an object, these links give the objects that stand
   * behind it in that list although they were processed before it.
   */
  inFrontOf?: Obj;
}

/** The object a name maps to, or why it is missing. */
type Mapped = Obj | string;

/** Where the default search (ld.so.cache or the ld.so.conf directories, then the system directories) ends for one name. */
interface DefaultSearch {
  found?: { c: Candidate; at: string };
  otherClass: boolean;
  /** Probes and skips on the way, in order, for each closure to record. */
  events: SearchEvent[];
  /** Something each closure should warn about (an ld.so.cache entry jail cannot name). */
  warning?: string;
}

/**
 * What a memoizing Resolver remembers for one kind of program (ELF class, byte order,
 * machine, e_flags: what the answers below depend on besides the tree): each examined
 * path, and the default search's outcome per name. Hundreds of programs need libc.so.6;
 * the directories are probed for the first only.
 */
interface KindMemo {
  candidates: Map<string, Candidate>;
  defaults: Map<string, DefaultSearch>;
}

/** The loader's built-in facts for one kind of program (shared by its closures when memoizing). */
interface Kind {
  profile: MachineProfile;
  /** False when the machine is not in the loader table and the generic profile stands in. */
  known: boolean;
  /** The loader's default directories, without trailing '/'. */
  systemDirs: string[];
  /** The same with a trailing '/', ready to prepend to a name. */
  systemPrefixes: string[];
  memo?: KindMemo;
}

/** $ORIGIN or ${ORIGIN} as a whole token. */
const ORIGIN_DST = /\$(\{ORIGIN\}|ORIGIN(?![A-Za-z0-9_]))/;

type DepKind = 'needed' | 'filter' | 'aux' | 'dlopen';

export class Resolver {
  readonly fsr: RootPaths;
  readonly facts: ElfFactsCache;
  private ldCacheMemo: { stamp: string; cache: LdCacheIndex | null; error?: string } | undefined;
  private kinds = new Map<string, Kind>();
  /** summary() answers by summaryKey (memoizing only). */
  private summaries = new Map<string, ClosureSummary>();
  private lastKind: { class: number; endian: string; machine: number; flags: number; kind: Kind } | undefined;

  constructor(readonly opts: ResolverOptions = {}) {
    this.fsr = new RootPaths(opts.root ?? '/');
    this.fsr.keep = opts.memoize === true;
    this.facts = opts.cache ?? new ElfFactsCache();
  }

  closure(program: string): Result<Closure> {
    const p = this.program(program);
    if (!p.ok) return p;
    return ok(new Run(this, p.value.asked, p.value.real, p.value.info).run());
  }

  /**
   * What `jail deps --json` shows of closure(program). A memoizing resolver works it out
   * once per kind of program (see summaryKey): hundreds of programs need only libc.so.6.
   */
  summary(program: string): Result<ClosureSummary> {
    const p = this.program(program);
    if (!p.ok) return p;
    const { asked, real, info } = p.value;
    const key = this.opts.memoize === true ? summaryKey(info) : undefined;
    const known = key === undefined ? undefined : this.summaries.get(key);
    if (known) return ok(known);
    const s = summarize(new Run(this, asked, real, info).run());
    // A warning naming the program (a cycle through it, a relative RPATH of its own) is not another's.
    if (key !== undefined && !s.warnings?.some((w) => w.includes(asked))) this.summaries.set(key, s);
    return ok(s);
  }

  /** The program's path as the loader sees it, and its facts; an error value for what is no ELF program. */
  private program(program: string): Result<{ asked: string; real: () => string; info: ElfInfo }> {
    this.fsr.reset();
    let asked = program;
    if (!asked.startsWith('/')) {
      if (!this.fsr.isHostRoot) {
        return fail(jailError('bad-path', `${program} is relative; inside --root ${this.fsr.root} give the program's absolute path as seen in the root.`, { path: program }));
      }
      asked = path.resolve(asked);
    }
    const look = this.fsr.lookup(asked);
    if (look.kind !== 'found') {
      return fail(jailError('elf-missing', `${this.describe(asked)} does not exist (${look.code}); check the path.`, { path: program }));
    }
    const r = this.facts.getWithStat(look.host, look.st, { noFollow: !this.fsr.isHostRoot, displayPath: this.describe(asked) });
    if (!r.ok) return r;
    if (r.value === null) {
      return fail(jailError('elf-not-elf',
        `${this.describe(asked)} is not an ELF file (a script or data file?), so it has no shared-library dependencies to resolve; ` +
        'if it is a script, resolve its #! interpreter instead.', { path: program }));
    }
    const refused = unstartable(r.value, this.describe(asked), program);
    if (refused) return fail(refused);
    // The kernel-started program's $ORIGIN comes from /proc/self/exe, i.e. its real path.
    // Asked only when a $ORIGIN needs it: few programs use one, and realpath costs a walk of the path.
    const real = (): string => (this.fsr.isHostRoot ? (this.fsr.realpath(asked) ?? asked) : look.real);
    return ok({ asked, real, info: r.value });
  }

  describe(p: string): string {
    return this.fsr.isHostRoot ? p : `${p} (in root ${this.fsr.root})`;
  }

  /** Facts for programs like main; with a memo, and made once, when the tree is taken as unchanging. */
  kindOf(main: ElfInfo): Kind {
    // Programs of a run are nearly all of one kind: the last answer, without making its key.
    const last = this.lastKind;
    if (last && last.class === main.class && last.endian === main.endian && last.machine === main.machine && last.flags === main.flags) return last.kind;
    const key = this.opts.memoize === true ? `${main.class}:${main.endian}:${main.machine}:${main.flags}` : undefined;
    const known = key === undefined ? undefined : this.kinds.get(key);
    if (known) {
      this.lastKind = { class: main.class, endian: main.endian, machine: main.machine, flags: main.flags, kind: known };
      return known;
    }
    const prof = profileFor(main.class, main.endian, main.machine, main.flags);
    const profile = prof ?? genericProfile();
    const systemDirs = (this.opts.systemDirs ?? [...profile.systemDirs]).map((d) => d.replace(/\/+$/, '') || '/');
    const kind: Kind = {
      profile,
      known: prof !== undefined,
      systemDirs,
      systemPrefixes: systemDirs.map((d) => (d.endsWith('/') ? d : d + '/')),
    };
    if (key !== undefined) {
      kind.memo = { candidates: new Map(), defaults: new Map() };
      this.kinds.set(key, kind);
      this.lastKind = { class: main.class, endian: main.endian, machine: main.machine, flags: main.flags, kind };
    }
    return kind;
  }

  /** open_verify for path p and program main, remembered in memo when given. */
  candidate(p: string, main: ElfInfo, memo: KindMemo | undefined): Candidate {
    let c = memo?.candidates.get(p);
    if (c === undefined) {
      c = examine(this, p, main);
      memo?.candidates.set(p, c);
    }
    return c;
  }

  /** ld.so.cache of the root, re-read when its stat changes. */
  ldCache(): { cache: LdCacheIndex | null; error?: string } {
    // Remembered lookups cannot see the file change: no need to stamp it again for each closure.
    if (this.ldCacheMemo && this.fsr.keep) return this.ldCacheMemo;
    const look = this.fsr.lookup('/etc/ld.so.cache');
    const stamp = look.kind === 'found' ? `${look.st.dev}:${look.st.ino}:${look.st.size}:${look.st.mtimeNs}:${look.st.ctimeNs}` : 'none';
    if (this.ldCacheMemo && this.ldCacheMemo.stamp === stamp) return this.ldCacheMemo;
    let memo: { stamp: string; cache: LdCacheIndex | null; error?: string } = { stamp, cache: null };
    if (look.kind === 'found') {
      const buf = this.fsr.readBytes('/etc/ld.so.cache', 256 * 1024 * 1024);
      if (buf) {
        const parsed = openLdCache(buf, this.describe('/etc/ld.so.cache'));
        memo = parsed.ok ? { stamp, cache: parsed.value } : { stamp, cache: null, error: parsed.error.message };
      }
    }
    this.ldCacheMemo = memo;
    // Default searches consulted the old cache.
    for (const k of this.kinds.values()) k.memo?.defaults.clear();
    return memo;
  }
}

/** One closure computation: the loader's state for one process start. */
class Run {
  /** The first loaded object answering to each name (l_libname, SONAME, or a library's opened path): _dl_map_object's scan as a lookup. */
  private byName = new Map<string, Obj>();
  /** The first loaded object per dev:ino, for the same-file check. */
  private byId = new Map<string, Obj>();
  /** Objects in the order their dependencies were processed. */
  private processed: Obj[] = [];
  private main: Obj;
  private memo: KindMemo | undefined;
  /** systemDirs with a trailing '/', ready to prepend to a name. */
  private systemPrefixes: string[];
  private profile: MachineProfile;
  private systemDirs: string[];
  private libraries = table<string>();
  private dlopened = table<string>();
  private missing: Closure['missing'] = [];
  private unneeded = table<'auxiliary' | 'dlopen'>();
  private probes: string[] = [];
  /** Made on first use, like the other sets below: most closures never need them. */
  private probeSet: Set<string> | undefined;
  private warnings: string[] = [];
  private warnSet: Set<string> | undefined;
  private skipped: Closure['skipped'] = [];
  private config: string[] = ['/etc/ld.so.cache'];
  private cache: LdCacheIndex | null;
  private fallbackDirs: string[] | undefined;
  private rpathMemo: Map<Obj, string[]> | undefined;
  private runpathMemo: Map<Obj, string[]> | undefined;
  private stopped = false;
  /** Some loaded object has DT_RPATH without DT_RUNPATH (none: the chain walk can be skipped). */
  private rpathLent = false;
  private mayCycle = false;
  /**
   * Names whose file was another name (a hard link) of an object already loaded: the
   * loader opened this path before its same-file check reused that object, so the path
   * must exist where the program runs.
   */
  private openedAs: Map<string, string> | undefined;
  /** Names a DT_NEEDED or DT_FILTER asked for in vain: the process stops at the first. */
  private failed: Set<string> | undefined;

  constructor(private r: Resolver, private asked: string, private realPath: () => string, info: ElfInfo) {
    const kind = r.kindOf(info);
    if (!kind.known) {
      this.warn(`${asked}: machine ${info.machine} (${info.class}-bit ${info.endian}) is not in the loader table; ` +
        'using generic glibc directories (/lib, /usr/lib); pass systemDirs for an exact answer');
    }
    this.profile = kind.profile;
    this.systemDirs = kind.systemDirs;
    this.systemPrefixes = kind.systemPrefixes;
    this.memo = kind.memo;
    this.main = newObj(asked, new Set(info.soname ? [info.soname] : []), info, undefined, undefined, undefined, true, true);
    const ldc = r.ldCache();
    this.cache = ldc.cache;
    if (ldc.error) this.warn(ldc.error);
  }

  run(): Closure {
    const info = this.main.info;
    this.addObj(this.main);
    this.checkMain();
    if (info.dynamic) {
      this.loadInterpreter();
      const queue: Obj[] = [this.main, ...this.preload()];
      for (let q = 0; q < queue.length; q++) (queue[q] as Obj).pos = q;
      for (let i = 0; i < queue.length && !this.stopped; i++) {
        const obj = queue[i] as Obj;
        const names: string[] = [];
        const kids: Obj[] = [];
        if (obj.info.needed.length > CLOSURE_LIMITS.manyNeeded) {
          this.warn(`${obj.path} has ${obj.info.needed.length} DT_NEEDED entries, an absurd number; check that the file is what it claims to be`);
        }
        // Indexed loops, and empty lists skipped: most of this runs before the code is optimised.
        const ws = obj.info.warnings;
        for (let w = 0; w < ws.length; w++) this.warn(`${obj.path}: ${ws[w]}`);
        // _dl_map_object_deps walks the dynamic section once: DT_NEEDED, DT_FILTER and
        // DT_AUXILIARY map in that one order. A NEEDED joins the queue's tail; a filtee goes
        // in front of its filter object (moved there if it waits further back), so it is
        // processed next, before anything queued earlier.
        const { needed, filtees, dlopens } = obj.info;
        let front: Obj[] | undefined;
        for (let j = 0, f = 0; j <= needed.length && !this.stopped; j++) {
          for (; f < filtees.length && (filtees[f] as Filtee).after <= j; f++) {
            const ft = filtees[f] as Filtee;
            const dep = this.request(obj, ft.name, ft.aux ? 'aux' : 'filter', names, kids);
            if (dep === undefined) continue;
            if (!dep.queued || ((dep.pos as number) > i && !(front ?? []).includes(dep))) {
              (front ??= []).push(dep);
              dep.queued = true;
              dep.pos = i + 1; // until putNext numbers the queue again
              dep.inFrontOf = obj;
            } else if (this.standsBehind(obj, dep)) {
              this.warn(`${obj.path} is a filtee of ${dep.path} and names it back as ${ft.aux ? 'DT_AUXILIARY' : 'DT_FILTER'} ${ft.name}: ` +
                "glibc's loader then reorders them without end and crashes at start (segmentation fault); remove one of the entries");
            }
          }
          if (j < needed.length) {
            const dep = this.request(obj, needed[j] as string, 'needed', names, kids);
            if (dep !== undefined && !dep.queued) this.enqueue(dep, queue);
          }
        }
        for (let j = 0; j < dlopens.length && !this.stopped; j++) {
          const dep = this.request(obj, dlopens[j] as string, 'dlopen', names, kids);
          if (dep !== undefined && !dep.queued) this.enqueue(dep, queue);
        }
        if (front !== undefined) this.putNext(queue, i, front);
        obj.requested = names;
        obj.kids = kids;
        this.processed.push(obj);
      }
      // Every edge leading further down the queue: the queue order is a topological order, no cycle.
      if (this.mayCycle) this.findCycles();
    }
    const processed = this.processed;
    let graph: Record<string, string[]> | undefined;
    return {
      path: this.asked,
      ...(info.interpreter !== undefined ? { interpreter: info.interpreter } : {}),
      needed: info.needed.slice(),
      libraries: this.libraries,
      dlopened: this.dlopened,
      missing: this.missing,
      unneeded: this.unneeded,
      probes: this.probes,
      warnings: this.warnings,
      // Made when first read: jail deps --json never reads it.
      get graph() {
        return (graph ??= graphOf(processed));
      },
      skipped: this.skipped,
      config: this.config,
    };
  }

  /**
   * One requested name of obj, as _dl_map_object answers it: the object it maps to
   * (recorded in the closure), or undefined when there is none (recorded as missing, or as
   * unneeded for what the loader does without).
   */
  private request(obj: Obj, raw: string, kind: DepKind, names: string[], kids: Obj[]): Obj | undefined {
    const name = this.expandName(obj, raw);
    if (name === undefined) return undefined;
    names.push(name);
    if (name === '') {
      this.warn(`${obj.path}: a ${fieldOf(kind)} entry is the empty string, which the loader takes for the program itself ` +
        '(its own entry in the loaded list has an empty name), so nothing is loaded for it; a linker never writes one: the file may be damaged');
    }
    // A name that failed stops the loader there: what later objects would find under it
    // (one without -z nodefaultlib, say) is never loaded. Unless loaded before, it stays
    // not found, as ldd shows it, and its first chain says why.
    if (this.failed?.has(name) && !this.byName.has(name)) {
      if (kind === 'aux' || kind === 'dlopen') this.unneeded[name] ??= kind === 'aux' ? 'auxiliary' : 'dlopen';
      return undefined;
    }
    const m = this.undecodable(obj, raw, kind) ?? this.mapObject(obj, name);
    if (typeof m === 'string') {
      if (kind === 'needed' || kind === 'filter') (this.failed ??= new Set()).add(name);
      if (kind === 'aux' || kind === 'dlopen') this.unneeded[name] ??= kind === 'aux' ? 'auxiliary' : 'dlopen';
      if (kind === 'dlopen') {
        this.warn(`${obj.path} will load ${name} at run time (thread exit and cancellation need it), and it was not found; threads of this program will abort in the jail`);
      } else if (kind !== 'aux') {
        this.missing.push({ soname: name, chain: [...this.chainOf(obj), name], reason: m });
      }
      return undefined;
    }
    const dep = m;
    kids.push(dep);
    // An edge back to an object queued no later than this one: only then can there be a cycle.
    if (dep.queued && (dep.pos as number) <= (obj.pos as number)) this.mayCycle = true;
    const opened = this.openedAs?.get(name) ?? dep.path;
    if (kind === 'dlopen') {
      if (this.libraries[name] === undefined) this.dlopened[name] = opened;
    } else if (!dep.isMain && this.libraries[name] === undefined) {
      this.libraries[name] = opened;
      if (this.dlopened[name] !== undefined) delete this.dlopened[name];
    }
    return dep;
  }

  /** Append a newly mapped object to the queue's tail. */
  private enqueue(dep: Obj, queue: Obj[]): void {
    dep.queued = true;
    dep.pos = queue.length;
    queue.push(dep);
    if (queue.length > CLOSURE_LIMITS.maxObjects) {
      this.warn(`more than ${CLOSURE_LIMITS.maxObjects} objects in the closure; stopped resolving`);
      this.stopped = true;
    }
  }

  /**
   * Filtees of queue[at], to be processed right after it (the loader puts them just in
   * front of it, where everything is processed already: the same order). Those that were
   * waiting further back move up.
   */
  private putNext(queue: Obj[], at: number, front: Obj[]): void {
    const rest = queue.slice(at + 1).filter((o) => !front.includes(o));
    queue.length = at + 1;
    queue.push(...front, ...rest);
    for (let q = at + 1; q < queue.length; q++) (queue[q] as Obj).pos = q;
    if (queue.length > CLOSURE_LIMITS.maxObjects) {
      this.warn(`more than ${CLOSURE_LIMITS.maxObjects} objects in the closure; stopped resolving`);
      this.stopped = true;
    }
  }

  /** Does dep stand behind obj in the loader's list though processed (obj went in front of it as a filtee)? */
  private standsBehind(obj: Obj, dep: Obj): boolean {
    for (let o = obj.inFrontOf; o !== undefined; o = o.inFrontOf) if (o === dep) return true;
    return false;
  }

  private warn(msg: string): void {
    const seen = (this.warnSet ??= new Set());
    if (!seen.has(msg)) {
      seen.add(msg);
      this.warnings.push(msg);
    }
  }

  private checkMain(): void {
    const { info, path: p } = this.main;
    if (info.type !== 'exec' && info.type !== 'dyn') this.warn(`${p} is an ELF ${info.type} file, not a program or shared library`);
    for (const d of info.defects) this.warn(`${p}: ${d}`);
    // Most entries have no '$' at all; only those are worth the pattern.
    const origin = (s: string): boolean => s.includes('$') && ORIGIN_DST.test(s);
    const usesOrigin = info.rpath.some(origin) || info.runpath.some(origin) || info.needed.some(origin);
    if (usesOrigin && info.interpreter !== undefined) {
      const which = info.runpath.length ? 'RUNPATH' : info.rpath.length ? 'RPATH' : 'NEEDED';
      this.warn(`${p} uses $ORIGIN in its ${which}: the loader finds the program's directory through /proc/self/exe, ` +
        'so /proc must be mounted inside the chroot or those entries are dropped');
    }
    // The mode matters only with $ORIGIN, which few programs use.
    const look = usesOrigin ? this.r.fsr.lookup(p) : undefined;
    if (look?.kind === 'found' && (look.st.mode & 0o6000n) !== 0n) {
      this.warn(`${p} is setuid/setgid: in secure mode the loader ignores most $ORIGIN paths and refuses $ORIGIN in NEEDED`);
    }
  }

  /** PT_INTERP (or, for a library, the loader ldd would use) is loaded before anything else. */
  private loadInterpreter(): void {
    const info = this.main.info;
    let interp = info.interpreter;
    if (interp === undefined) {
      const needsAny = info.needed.length > 0 || info.filtees.some((f) => !f.aux);
      interp = needsAny ? this.profile.interpreter : undefined;
      if (interp === undefined) return;
      const look = this.r.fsr.lookup(interp);
      if (look.kind !== 'found') return;
    }
    if (/\/ld-musl-/.test(interp)) {
      this.warn(`${this.main.path} uses the musl loader ${interp}, whose search rules (no ld.so.cache; /etc/ld-musl-*.path) differ from glibc's; this answer follows glibc`);
    }
    if (!interp.startsWith('/')) {
      this.warn(`${this.main.path} has a relative PT_INTERP (${interp}): the kernel resolves it against the current directory`);
      interp = '/' + interp;
    }
    const c = this.tryFile(interp, false);
    if (c.kind !== 'ok') {
      if (info.interpreter !== undefined) {
        const reason = c.kind === 'absent' ? 'the program interpreter does not exist' : `the program interpreter is unusable: ${c.reason}`;
        this.missing.push({ soname: info.interpreter, chain: [this.main.path, info.interpreter], reason });
      }
      return;
    }
    const names = new Set([interp]);
    if (c.info.soname) names.add(c.info.soname);
    // ld.so's own NEEDED (none in practice) are looked at only once something requests it.
    this.addObj(newObj(interp, names, c.info, c.id, undefined, originOf(interp), false, false));
  }

  /** ROOT/etc/ld.so.preload: loaded by the program before its own NEEDED. */
  private preload(): Obj[] {
    if (this.r.opts.preload === false) return [];
    this.config.push('/etc/ld.so.preload');
    const text = this.r.fsr.readText('/etc/ld.so.preload');
    if (text === undefined) return [];
    const out: Obj[] = [];
    const names = text.replace(/#[^\n]*/g, ' ').split(/[: \t\n]+/).filter((n) => n !== '');
    for (const name of names) {
      const m = this.mapObject(this.main, name);
      if (typeof m === 'string') {
        this.warn(`/etc/ld.so.preload names ${name}, which cannot be loaded (${m}); the loader ignores it with an error message`);
        continue;
      }
      this.libraries[name] ??= this.openedAs?.get(name) ?? m.path;
      if (!m.queued) {
        m.queued = true;
        out.push(m);
      }
    }
    if (out.length) this.warn(`/etc/ld.so.preload is present: its libraries are part of every closure`);
    return out;
  }

  private chainOf(obj: Obj): string[] {
    const chain: string[] = [];
    for (let o: Obj | undefined = obj; o; o = o.loader) {
      chain.unshift(o.isMain ? o.path : firstName(o));
      if (chain.length > CLOSURE_LIMITS.maxObjects) break;
    }
    if (chain[0] !== this.main.path) chain.unshift(this.main.path);
    return chain;
  }

  /** Why a requested name is not looked up: its bytes are not UTF-8 (the object's warnings say more). */
  private undecodable(obj: Obj, raw: string, kind: DepKind): string | undefined {
    if (!raw.includes('\ufffd') || !obj.info.undecodable.includes(raw)) return undefined;
    return `${fieldOf(kind)} of ${obj.path} is not valid UTF-8, which jail cannot look up (the loader may well find it)`;
  }

  /** DSTs in a NEEDED name; undefined when the loader would silently skip the entry. */
  private expandName(obj: Obj, raw: string): string | undefined {
    if (!raw.includes('$')) return raw;
    const e = this.substituteDst(obj, raw);
    if (e === '') {
      this.warn(`${obj.path}: NEEDED ${raw} expands to nothing here; the loader skips it`);
      return undefined;
    }
    return e;
  }

  /** _dl_dst_substitute: '' when a known token has no value (the element is dropped). */
  private substituteDst(obj: Obj, input: string): string {
    let out = '';
    for (let i = 0; i < input.length;) {
      if (input[i] !== '$') {
        out += input[i];
        i++;
        continue;
      }
      const rest = input.slice(i + 1);
      let len: number;
      let repl: string | null | undefined;
      if ((len = isDst(rest, 'ORIGIN')) !== 0) repl = obj.origin === undefined ? (obj.origin = originOf(this.realPath())) : obj.origin;
      else if ((len = isDst(rest, 'PLATFORM')) !== 0) repl = this.r.opts.platform ?? this.profile.platform;
      else if ((len = isDst(rest, 'LIB')) !== 0) repl = this.r.opts.dstLib ?? this.profile.dstLib;
      if (len !== 0) {
        if (repl === null || repl === undefined) return '';
        out += repl;
        i += 1 + len;
      } else {
        out += '$';
        i++;
      }
    }
    return out;
  }

  /** decompose_rpath/fillin_rpath: directories with a trailing '/', DSTs expanded, duplicates dropped. */
  private searchDirs(obj: Obj, elems: string[], what: 'RPATH' | 'RUNPATH'): string[] {
    const memo = what === 'RPATH' ? (this.rpathMemo ??= new Map()) : (this.runpathMemo ??= new Map());
    const hit = memo.get(obj);
    if (hit) return hit;
    const dirs: string[] = [];
    if (!(elems.length === 1 && elems[0] === '')) {
      const bad = obj.info.undecodable.length > 0;
      for (const el of elems) {
        // Not UTF-8: no string names the directory (the object's warnings say so).
        if (bad && el.includes('\ufffd')) continue;
        let d = el;
        if (d !== '') {
          d = d.includes('$') ? this.substituteDst(obj, d) : d;
          if (d === '') continue;
          while (d.length > 1 && d.endsWith('/')) d = d.slice(0, -1);
          if (!d.endsWith('/')) d += '/';
        }
        if (!d.startsWith('/')) {
          this.warn(`${obj.path}: ${what} entry '${el}' is relative to the current directory at run time; ignored here`);
          continue;
        }
        if (!dirs.includes(d)) dirs.push(d);
      }
    }
    memo.set(obj, dirs);
    return dirs;
  }

  /** _dl_map_object for one requested name. */
  private mapObject(loader: Obj, name: string): Mapped {
    // The loader names its link map of the program "" (l_name), and its scan of loaded
    // objects by name comes first: an empty name is the program itself.
    if (name === '') return this.main;
    // byName already answers name with this object; its names need not learn it again.
    const known = this.byName.get(name);
    if (known) return known;
    if (name.includes('/')) {
      if (!name.startsWith('/')) {
        this.warn(`${loader.path}: NEEDED ${name} is a relative path, resolved by the loader against the current directory; refused`);
        return 'relative path in NEEDED (depends on the current directory at run time)';
      }
      const c = this.tryFile(name, true);
      return this.adopt(c, name, name, loader);
    }

    let otherClass = false;
    // open_path over a list of directories: the first loadable file wins, a fatal one stops all.
    const subdirs = this.profile.legacySubdirs;
    const searchIn = (dirs: string[], bySoname = false): Mapped | undefined => {
      for (const d of dirs) {
        for (let s = 0; s < subdirs.length; s++) {
          const at = d + (subdirs[s] as string) + name;
          const c = this.tryFile(at, true);
          if (c.kind === 'skip') otherClass = true;
          // ldconfig keys its cache by SONAME, so a file whose SONAME differs would not be listed.
          if (bySoname && c.kind === 'ok' && c.info.soname !== undefined && c.info.soname !== name) continue;
          if (c.kind === 'ok' || c.kind === 'fatal') return this.adopt(c, at, name, loader);
        }
      }
      return undefined;
    };
    let m: Mapped | undefined;

    // Only an object with DT_RPATH and no DT_RUNPATH lends its RPATH down the chain.
    if (loader.info.runpath.length === 0 && this.rpathLent) {
      let didMain = false;
      for (let l: Obj | undefined = loader; l; l = l.loader) {
        if (l.info.rpath.length === 0 || l.info.runpath.length > 0) continue;
        const dirs = this.searchDirs(l, l.info.rpath, 'RPATH');
        if (dirs.length === 0) continue;
        if ((m = searchIn(dirs))) return m;
        didMain ||= l === this.main;
      }
      const mi = this.main.info;
      if (!didMain && mi.rpath.length > 0 && mi.runpath.length === 0) {
        if ((m = searchIn(this.searchDirs(this.main, mi.rpath, 'RPATH')))) return m;
      }
    }
    if (loader.info.runpath.length > 0) {
      if ((m = searchIn(this.searchDirs(loader, loader.info.runpath, 'RUNPATH')))) return m;
    }
    const nodeflib = (loader.info.flags1 & DF_1_NODEFLIB) !== 0;
    const d = this.defaultSearch(name, nodeflib);
    if (d.found) return this.adopt(d.found.c, d.found.at, name, loader);
    if (otherClass || d.otherClass) return 'only candidates of another ELF class or machine were found';
    const variant = this.hwcapsVariant(name, loader, nodeflib);
    return variant === undefined
      ? 'not found in any searched directory'
      : `not found in any searched directory; only ${variant} exists, a CPU-specific (glibc-hwcaps) variant, which jail passes over: ` +
        'a jail gets the generic library under its soname, which runs on any CPU';
  }

  /** On a failed search only: a glibc-hwcaps variant of name in a directory that was searched, which would tell the user what is there. */
  private hwcapsVariant(name: string, loader: Obj, nodeflib: boolean): string | undefined {
    const dirs: string[] = [];
    for (let l: Obj | undefined = loader; l; l = l.loader) if (l.info.runpath.length === 0) dirs.push(...this.searchDirs(l, l.info.rpath, 'RPATH'));
    if (this.main.info.runpath.length === 0) dirs.push(...this.searchDirs(this.main, this.main.info.rpath, 'RPATH'));
    dirs.push(...this.searchDirs(loader, loader.info.runpath, 'RUNPATH'));
    if (!this.cache && this.r.opts.ldconfFallback !== false) dirs.push(...this.ldconfDirs());
    if (!nodeflib) dirs.push(...this.systemPrefixes);
    for (const dir of new Set(dirs)) {
      for (const sub of this.r.fsr.readdir(dir + 'glibc-hwcaps').sort()) {
        const at = `${dir}glibc-hwcaps/${sub}/${name}`;
        if (this.r.candidate(at, this.main.info, this.memo).kind === 'ok') return at;
      }
    }
    return undefined;
  }

  /** The search after RPATH and RUNPATH, which depends only on the name: remembered per kind of program. */
  private defaultSearch(name: string, nodeflib: boolean): DefaultSearch {
    // Per closure, the first use of the ld.so.conf directories notes the files read.
    if (!this.cache && this.r.opts.ldconfFallback !== false) this.ldconfDirs();
    const key = nodeflib ? '/' + name : name; // names with '/' never come here
    let d = this.memo?.defaults.get(key);
    if (d === undefined) {
      d = this.searchDefault(name, nodeflib);
      this.memo?.defaults.set(key, d);
    }
    for (const e of d.events) this.record(e);
    if (d.warning !== undefined) this.warn(d.warning);
    return d;
  }

  private searchDefault(name: string, nodeflib: boolean): DefaultSearch {
    const events: SearchEvent[] = [];
    const subdirs = this.profile.legacySubdirs;
    let otherClass = false;
    const examine = (at: string): Candidate => {
      const c = this.r.candidate(at, this.main.info, this.memo);
      const e = eventOf(at, c);
      if (e) events.push(e);
      if (c.kind === 'skip') otherClass = true;
      return c;
    };
    let warning: string | undefined;
    if (this.cache) {
      const entry = this.cache.lookup(name, this.profile.cacheFlagsOk, this.profile.cacheDefaultId, this.profile.legacyHwcaps);
      const cached = entry?.value;
      if (entry?.undecodable) {
        warning = `${this.r.describe('/etc/ld.so.cache')} maps ${name} to a path that is not valid UTF-8 (${cached}), which jail cannot name; ` +
          'it searched on as if the entry were not there, where the loader opens that file';
      }
      if (cached !== undefined && !entry?.undecodable && !(nodeflib && this.systemPrefixes.some((d) => cached.startsWith(d)))) {
        const c = examine(cached);
        // A missing or other-class cache entry sends the loader on to the default path.
        if (c.kind === 'ok' || c.kind === 'fatal') return { found: { c, at: cached }, otherClass, events, warning };
      }
    } else if (this.r.opts.ldconfFallback !== false) {
      // ldconfig records the legacy subdirectories too, more specific entries first.
      for (const dir of this.ldconfDirs()) {
        for (const sub of subdirs) {
          const at = dir + sub + name;
          const c = examine(at);
          // ldconfig keys its cache by SONAME, so a file whose SONAME differs would not be listed.
          if (c.kind === 'ok' && c.info.soname !== undefined && c.info.soname !== name) continue;
          if (c.kind === 'ok' || c.kind === 'fatal') return { found: { c, at }, otherClass, events, warning };
        }
      }
    }
    if (!nodeflib) {
      for (const dir of this.systemPrefixes) {
        for (const sub of subdirs) {
          const at = dir + sub + name;
          const c = examine(at);
          if (c.kind === 'ok' || c.kind === 'fatal') return { found: { c, at }, otherClass, events, warning };
        }
      }
    }
    return { otherClass, events, warning };
  }

  /** Directories ldconfig would put in a cache for this root (ld.so.conf, then SLIBDIR and LIBDIR). */
  private ldconfDirs(): string[] {
    if (this.fallbackDirs) return this.fallbackDirs;
    const conf = readLdConf(this.r.fsr);
    this.config.push('/etc/ld.so.conf', ...conf.files.filter((f) => f !== '/etc/ld.so.conf'));
    for (const w of conf.warnings) this.warn(w);
    const dirs = [...conf.dirs, ...this.systemDirs.slice(0, 2)].map((d) => (d.endsWith('/') ? d : d + '/'));
    this.fallbackDirs = [...new Set(dirs)];
    // No advice to run ldconfig -r ROOT: it would write into a ROOT that may be hostile, and
    // jail make writes a jail the cache it needs (README: a jail that needs none gets none).
    const missing = `${this.r.describe('/etc/ld.so.cache')} is missing, so the loader searches only RPATH, RUNPATH and its default directories ` +
      `(${this.systemDirs.join(', ')})`;
    const extra = [...new Set(conf.dirs.map((d) => d.replace(/\/+$/, '') || '/'))].filter((d) => !this.systemDirs.includes(d));
    this.warn(extra.length === 0
      ? `${missing}, as this answer did. jail make gives a jail a cache only for libraries outside those directories, so most jails have none.`
      : `${missing}; it never reads ld.so.conf (only ldconfig does). This answer also searched ${extra.join(', ')}, as a cache made from ld.so.conf would list them: ` +
        'a library found only there is one the loader will not find. jail make gives a jail a cache of its own when elf() brings a library from such a directory.');
    return this.fallbackDirs;
  }

  /** Turn a candidate into a loaded object, honouring the loader's same-file check. */
  private adopt(c: Candidate, at: string, name: string, loader: Obj): Mapped {
    if (c.kind === 'fatal') return `the loader stops at ${at}: ${c.reason}`;
    if (c.kind === 'absent') return 'no such file';
    if (c.kind === 'skip') return `${at}: ${c.reason}`;
    const same = this.byId.get(c.id);
    if (same) {
      if (at !== same.path) (this.openedAs ??= new Map()).set(name, at);
      same.names.add(name);
      this.byName.set(name, same); // no loaded object answered to name before
      return same;
    }
    const obj = newObj(at, new Set([name]), c.info, c.id, loader, originOf(at), false, false);
    this.addObj(obj);
    return obj;
  }

  private addObj(o: Obj): void {
    // Earlier objects win a shared name, as in the loader's scan in load order.
    for (const n of o.names) if (!this.byName.has(n)) this.byName.set(n, o);
    if (!o.isMain && !this.byName.has(o.path)) this.byName.set(o.path, o);
    if (o.soname !== undefined && !this.byName.has(o.soname)) this.byName.set(o.soname, o);
    if (o.id !== undefined && !this.byId.has(o.id)) this.byId.set(o.id, o);
    if (o.info.rpath.length > 0 && o.info.runpath.length === 0) this.rpathLent = true;
  }

  /** open_verify: can this path be loaded next to the program? `record` notes probes and skips. */
  private tryFile(p: string, record: boolean): Candidate {
    const c = this.r.candidate(p, this.main.info, this.memo);
    if (record) {
      const e = eventOf(p, c);
      if (e) this.record(e);
    }
    return c;
  }

  private record(e: SearchEvent): void {
    if ('probe' in e) {
      const seen = (this.probeSet ??= new Set());
      if (!seen.has(e.probe)) {
        seen.add(e.probe);
        this.probes.push(e.probe);
      }
    } else {
      this.skipped.push({ path: e.skip, reason: e.reason });
    }
  }

  /** A strongly connected component, in the order Tarjan's walk reached it. */
  private warnCycle(comp: Obj[]): void {
    const names = comp.map((o) => (o.isMain ? o.path : firstName(o)));
    this.warn(`dependency cycle: ${[...names, names[0]].join(' -> ')} (the loader breaks it, but initialisation order within it is arbitrary)`);
  }

  /** Tarjan's SCCs over the dependency edges: report each cycle once. */
  private findCycles(): void {
    // Bookkeeping lives on the objects (they belong to this run): no per-object map lookups.
    let index = 0;
    const stack: Obj[] = [];
    const strong = (v: Obj): void => {
      // Iterative to survive deep chains; the walk's frames are two parallel arrays.
      const workV: Obj[] = [v];
      const workI: number[] = [0];
      v.index = v.low = index++;
      stack.push(v);
      v.onStack = true;
      while (workV.length) {
        const top = workV[workV.length - 1] as Obj;
        const kids = top.kids;
        const i = workI[workI.length - 1] as number;
        if (kids !== undefined && i < kids.length) {
          workI[workI.length - 1] = i + 1;
          const w = kids[i] as Obj;
          if (w.index === undefined) {
            w.index = w.low = index++;
            stack.push(w);
            w.onStack = true;
            workV.push(w);
            workI.push(0);
          } else if (w.onStack) {
            top.low = Math.min(top.low as number, w.index);
          }
          continue;
        }
        workV.pop();
        workI.pop();
        const parent = workV[workV.length - 1];
        if (parent) parent.low = Math.min(parent.low as number, top.low as number);
        if (top.low !== top.index) continue;
        if (stack[stack.length - 1] === top) {
          // A component of one object, as nearly all are: a cycle only if it needs itself.
          stack.pop();
          top.onStack = false;
          if (kids !== undefined && kids.includes(top)) this.warnCycle([top]);
          continue;
        }
        const comp: Obj[] = [];
        let w: Obj;
        do {
          w = stack.pop() as Obj;
          w.onStack = false;
          comp.push(w);
        } while (w !== top);
        this.warnCycle(comp.reverse());
      }
    };
    for (const o of this.processed) if (o.index === undefined) strong(o);
  }
}

function fieldOf(kind: DepKind): string {
  return kind === 'filter' ? 'DT_FILTER' : kind === 'aux' ? 'DT_AUXILIARY' : 'DT_NEEDED';
}

/** is_dst(): length of the token after '$' (with braces), 0 when it is not REF. */
export function isDst(input: string, ref: string): number {
  let s = input;
  let curly = false;
  if (s.startsWith('{')) {
    curly = true;
    s = s.slice(1);
  }
  if (!s.startsWith(ref)) return 0;
  const next = s[ref.length];
  if (curly && next !== '}') return 0;
  if (!curly && next !== undefined && /[A-Za-z0-9_]/.test(next)) return 0;
  return curly ? ref.length + 2 : ref.length;
}

/**
 * An empty plain object to use as a table keyed by paths or names. V8 gives each new
 * sequence of property names its own hidden class, so hundreds of closures keyed by
 * distinct paths would build thousands of them; an object made without a prototype starts
 * as a dictionary and stays one when the ordinary prototype is put back.
 */
function table<T>(): Record<string, T> {
  return Object.setPrototypeOf(Object.create(null), Object.prototype) as Record<string, T>;
}

/** Every object made with all fields in one order: one shape, so the walk's property reads stay monomorphic. */
function newObj(
  path: string, names: Set<string>, info: ElfInfo, id: string | undefined, loader: Obj | undefined,
  origin: string | null | undefined, isMain: boolean, queued: boolean,
): Obj {
  return {
    path, names, soname: info.soname, info, id, loader, origin, isMain, queued,
    kids: undefined, index: undefined, low: undefined, onStack: undefined, pos: undefined, requested: undefined,
    inFrontOf: undefined,
  };
}

/** Closure.graph: each processed object's requested names, keyed by its path, in processing order. */
function graphOf(processed: readonly Obj[]): Record<string, string[]> {
  const graph = table<string[]>();
  for (let i = 0; i < processed.length; i++) {
    const o = processed[i] as Obj;
    graph[o.path] = o.requested as string[];
  }
  return graph;
}

/** _dl_new_object's l_origin: everything before the last '/', keeping a lone leading '/'. */
function originOf(p: string): string | null {
  const i = p.lastIndexOf('/');
  if (i < 0) return null;
  return i === 0 ? '/' : p.slice(0, i);
}

function firstName(o: Obj): string {
  for (const n of o.names) return n;
  return o.path;
}
