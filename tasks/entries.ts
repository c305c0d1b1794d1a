// The jailfile vocabulary: dir, link, device, copy, text, users, groups.
// Each constructor validates its arguments at once (a jailfile is untyped at run time)
// and records where it was called, so every later error can name the entry.

import { callSite } from './call-site.js';
import { FINDING_KINDS } from './check/types.js';

export type OwnerSpec = number | string | { uid: number; gid: number };

export interface Attrs {
  /** Permission bits, e.g. 0o644. */
  mode?: number;
  /** `root`, `www`, `www:www`, `80:80`, 80 or `{ uid, gid }`; names come from the jail's own users()/groups(). */
  owner?: OwnerSpec;
}

interface EntryBase {
  /** `file:line` of the jailfile call. */
  readonly at: string;
  /** How the entry reads in the jailfile, for messages: `copy('/etc/services')`. */
  readonly label: string;
}

export interface DirEntry extends EntryBase { kind: 'dir'; paths: string[]; mode?: number; owner?: OwnerSpec }
export interface LinkEntry extends EntryBase { kind: 'link'; path: string; target: string; owner?: OwnerSpec }
export interface DeviceEntry extends EntryBase {
  kind: 'device'; path: string; type: 'c' | 'b'; major: number; minor: number;
  mode?: number; owner?: OwnerSpec; dangerous: boolean;
}
export interface CopyEntry extends EntryBase {
  kind: 'copy'; source: string; to?: string; follow: boolean; setuid: boolean; mode?: number; owner?: OwnerSpec;
  /** `to` was written with a trailing '/': a directory, so a single file there is refused. */
  toDir?: boolean;
}
export interface TextEntry extends EntryBase { kind: 'text'; path: string; content: Buffer; mode?: number; owner?: OwnerSpec }

export interface UserSpec {
  uid: number; gid: number; home?: string; shell?: string; gecos?: string;
  /** Supplementary groups, by name. */
  groups?: string[];
}
export interface GroupSpec { gid: number; members?: string[] }
export interface UsersEntry extends EntryBase { kind: 'users'; users: Record<string, UserSpec> }
export interface GroupsEntry extends EntryBase { kind: 'groups'; groups: Record<string, GroupSpec> }

export interface ElfEntry extends EntryBase { kind: 'elf'; patterns: string[]; setuid: boolean }

export interface PackageEntry extends EntryBase { kind: 'package'; names: string[] }
export interface WarningEntry extends EntryBase { kind: 'warning'; message: string }

export interface AllowEntry extends EntryBase { kind: 'allow'; finding: string; path: string }

/** How `jail boot` and `jail run` confine what runs in the jail (see runtime()). */
export interface RuntimeSpec {
  /** The unprivileged user services and commands run as (default: the first non-root user of users()). */
  user?: string;
  /** RLIMIT_CPU in seconds (default 300, as the article's `ulimit -t 300`); 'unlimited' turns it off. */
  cpu?: number | 'unlimited';
  /** Most processes the jail may have at once, enforced by a cgroup (default 256); false turns it off. */
  pids?: number | false;
  /** Memory limit for the jail's cgroup, in bytes or with a K/M/G suffix (default none). */
  memory?: number | string;
  /** Mount /proc inside the jail's own PID namespace (default false). */
  proc?: boolean;
  /** Give the jail a network namespace of its own with this address on a veth pair (`10.200.0.2/24`); default: the host's network. */
  network?: { address: string; hostAddress?: string } | false;
  /** Own PID, mount, IPC and UTS namespaces (default true). */
  namespaces?: boolean;
}
export interface RuntimeEntry extends EntryBase {
  kind: 'runtime';
  spec: RuntimeSpec;
  /** From service(): the CPU seconds its rc script sets with ulimit, which the jail's hard limit must allow. */
  serviceCpu?: number | 'unlimited';
}

export interface DataEntry extends EntryBase { kind: 'data'; path: string; mode?: number; owner?: OwnerSpec }

export interface InstallEntry extends EntryBase {
  kind: 'install'; name: string; inputs: string[]; run: string[]; timeoutMs: number; env: Record<string, string>;
}

export type Entry = DirEntry | LinkEntry | DeviceEntry | CopyEntry | TextEntry | UsersEntry | GroupsEntry | ElfEntry | PackageEntry | WarningEntry | AllowEntry | RuntimeEntry | DataEntry | InstallEntry;

/** What a jailfile (or a recipe) may return: entries, nested lists of them, and falsy holes for conditionals. */
export type Entries = Entry | null | undefined | false | '' | 0 | readonly Entries[];

export type JailVars = Record<string, string | undefined> & { ROOT: string };
export type JailDefinition = (vars: JailVars) => Entries | Promise<Entries>;

const KINDS: ReadonlySet<string> = new Set<Entry['kind']>([
  'dir', 'link', 'device', 'copy', 'text', 'users', 'groups', 'elf', 'package', 'warning', 'allow', 'runtime', 'data', 'install',
]);

const MAX_DEPTH = 64;

function describe(v: unknown): string {
  if (typeof v === 'function') return 'a function (call it: recipes return entries)';
  let json: string | undefined;
  try { json = JSON.stringify(v)?.slice(0, 60); } catch { json = undefined; } // BigInts, cycles
  if (typeof v === 'object') return json === undefined ? 'an object' : `an object (${json})`;
  return `${typeof v} ${json ?? String(v)}`;
}

/**
 * Why what a jailfile returned is not a list of entries, or undefined when it is one. The
 * falsy holes of `cond && entry` are skipped (whatever cond is: a make variable given
 * empty, `VAR=`, makes `VAR && entry` the empty string): anything else that is not an
 * entry would otherwise be dropped, and a jailfile that returns nothing (a `{ ... }` arrow
 * body without `return`) would declare an empty jail, so that the build removed everything
 * in it. A value in the list has no line of its own: the entry beside it names one, else
 * the defineJail() call (`definedAt`).
 */
export function entriesProblem(value: unknown, definedAt?: string): string | undefined {
  if (value === undefined || value === null || value === false) {
    return `returned ${value === false ? 'false' : String(value)} instead of a list of entries (a \`{ ... }\` arrow body without \`return\`?). ` +
      'Return the list: `defineJail(({ ROOT }) => [ dir(...), copy(...) ])`; an empty jail is `[]`';
  }
  let before: Entry | undefined, after: Entry | undefined, bad: { v: unknown; where: string } | undefined;
  const isEntry = (v: unknown): v is Entry => {
    const e = v as { kind?: unknown; at?: unknown };
    return typeof v === 'object' && v !== null && typeof e.kind === 'string' && KINDS.has(e.kind) && typeof e.at === 'string';
  };
  const walk = (v: unknown, where: string, depth: number): string | undefined => {
    if (!v) return undefined;
    if (Array.isArray(v)) {
      if (depth > MAX_DEPTH) return `nests lists more than ${MAX_DEPTH} deep at ${where}`;
      for (let i = 0; i < v.length && !after; i++) {
        const why = walk(v[i], `${where}[${i}]`, depth + 1);
        if (why) return why;
      }
      return undefined;
    }
    if (isEntry(v)) { if (bad) after = v; else before = v; return undefined; }
    bad ??= { v, where };
    return undefined;
  };
  const deep = walk(value, '', 0);
  if (deep) return deep;
  if (!bad) return undefined;
  const { v, where } = bad;
  const near = before ? `; it comes just after ${before.label} at ${before.at}` : after ? `; it comes just before ${after.label} at ${after.at}` :
    definedAt ? `; the list is the one defineJail() at ${definedAt} returns` : '';
  return `${where ? `returned a list that holds ${describe(v)} at ${where}` : `returned ${describe(v)}`}, which is not an entry${where ? near : ''}. Entries are made by dir(), link(), copy(), text(), elf() and the ` +
    "other functions of 'jail' and 'jail/recipes'; only falsy values (false, null, undefined, '', 0) are skipped, for `cond && entry`";
}

/** Where each jailfile's defineJail() was called, for errors about the list it returns. */
const definitions = new WeakMap<object, string>();
export const definedAt = (fn: unknown): string | undefined => (typeof fn === 'function' ? definitions.get(fn) : undefined);

/** A jailfile's default export: `export default defineJail(({ ROOT }) => [...])`. */
export function defineJail(fn: JailDefinition): JailDefinition {
  const at = callSite();
  if (typeof fn !== 'function') usage('defineJail(fn)', 'expects a function of the make variables that returns the entries', at);
  definitions.set(fn, at);
  return fn;
}

/** An entry constructor was called wrongly: thrown, and reported with the jailfile line by the loader. */
export class EntryUsageError extends Error {
  constructor(message: string, readonly at: string) {
    super(message);
    this.name = 'EntryUsageError';
  }
}

function usage(label: string, what: string, at = callSite()): never {
  throw new EntryUsageError(`${label} ${what}`, at);
}

const show = (v: unknown): string => JSON.stringify(v);

/** `notRoot`: the entry makes a file, link or device, which cannot stand at the jail's root directory. */
function jailPath(label: string, p: unknown, at: string, notRoot = false): string {
  if (typeof p !== 'string' || !p.startsWith('/'))
    usage(label, `needs an absolute jail path such as '/etc/motd', got ${show(p)}`, at);
  if (p.includes('\0') || p.split('/').some((c) => c === '..' || c === '.'))
    usage(label, `has a path with '.', '..' or a NUL byte (${show(p)}); write the plain absolute path`, at);
  // Slashes alone are '/' (not the empty path, which would name ROOT by another name).
  const clean = p.length > 1 ? p.replace(/\/+/g, '/').replace(/\/$/, '') || '/' : p;
  if (notRoot && clean === '/') usage(label, "names '/', the jail's root directory; give the path of the file inside it, such as '/etc/motd'", at);
  return clean;
}

function modeOf(label: string, mode: unknown, at: string): number | undefined {
  if (mode === undefined) return undefined;
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o7777)
    usage(label, `has mode ${show(mode)}; give permission bits as a number such as 0o644`, at);
  return mode;
}

function ownerOf(label: string, owner: unknown, at: string): OwnerSpec | undefined {
  if (owner === undefined) return undefined;
  if (typeof owner === 'number' && Number.isInteger(owner) && owner >= 0) return owner;
  if (typeof owner === 'string' && /^[^:\s]+(:[^:\s]+)?$/.test(owner)) return owner;
  if (typeof owner === 'object' && owner !== null) {
    const o = owner as { uid?: unknown; gid?: unknown };
    if (Number.isInteger(o.uid) && Number.isInteger(o.gid)) return { uid: o.uid as number, gid: o.gid as number };
  }
  usage(label, `has owner ${show(owner)}; use 'user', 'user:group', 'uid:gid', a uid, or { uid, gid }`, at);
}

/** The options object of an entry or recipe, refused when it is not one or has a key not in `allowed` (a typo would be ignored). */
export function attrsOf(label: string, opts: unknown, allowed: readonly string[], at: string): Record<string, unknown> {
  if (opts === undefined) return {};
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) usage(label, `takes an options object { ${allowed.join(', ')} }, got ${show(opts)}`, at);
  for (const k of Object.keys(opts)) {
    if (!allowed.includes(k)) usage(label, `has an unknown option '${k}' (known: ${allowed.join(', ')})`, at);
  }
  return opts as Record<string, unknown>;
}

/** A boolean option: absent is false; a string such as 'no' is refused, not read as either. */
export function flagOf(label: string, name: string, v: unknown, at: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') usage(label, `needs true or false for ${name}, got ${show(v)}`, at);
  return v;
}

/** A recipe called with more arguments than it takes: the extra ones would be ignored. */
export function arityOf(label: string, args: readonly unknown[], max: number, takes: string, at: string): void {
  if (args.length > max) usage(label, `takes ${takes}, got ${args.length} argument${args.length === 1 ? '' : 's'} (${args.map(show).join(', ')})`, at);
}

/** Directories, created with mode 0755 root:root unless told otherwise. */
export function dir(paths: string | readonly string[], opts?: Attrs): DirEntry {
  const at = callSite();
  const list = typeof paths === 'string' ? [paths] : paths;
  const label = typeof paths === 'string' ? `dir(${show(paths)})` : Array.isArray(list) && list.length ? `dir([${show(list[0])}, ...])` : `dir(${show(paths)})`;
  if (!Array.isArray(list) && typeof paths !== 'string') usage(label, `takes an absolute jail path such as '/etc' or a list of them, got ${show(paths)}`, at);
  const o = attrsOf(label, opts, ['mode', 'owner'], at);
  return {
    kind: 'dir', at, label,
    paths: list.map((p) => jailPath(label, p, at)),
    mode: modeOf(label, o.mode, at), owner: ownerOf(label, o.owner, at),
  };
}

/** A symbolic link at `path` whose content is `target`, written as given (`link('/lib', 'usr/lib')`). */
export function link(path: string, target: string, opts?: { owner?: OwnerSpec }): LinkEntry {
  const at = callSite();
  const label = `link(${show(path)}, ${show(target)})`;
  if (typeof target !== 'string' || target === '' || target.includes('\0')) usage(label, 'needs a non-empty link target', at);
  const o = attrsOf(label, opts, ['owner'], at);
  return { kind: 'link', at, label, path: jailPath(label, path, at, true), target, owner: ownerOf(label, o.owner, at) };
}

/** Device numbers the kernel treats as a way out of the jail: memory, I/O ports, the kernel log. */
const FORBIDDEN_CHAR = new Set(['1:1', '1:2', '1:4', '1:11']);

/** A device node. Memory, port, kmsg and every block device are refused unless `dangerous: true`. */
export function device(
  path: string,
  opts: { type: 'c' | 'b'; major: number; minor: number; mode?: number; owner?: OwnerSpec; dangerous?: boolean },
): DeviceEntry {
  const at = callSite();
  const label = `device(${show(path)})`;
  const o = attrsOf(label, opts, ['type', 'major', 'minor', 'mode', 'owner', 'dangerous'], at);
  if (o.type !== 'c' && o.type !== 'b') usage(label, `needs type 'c' (character) or 'b' (block), got ${show(o.type)}`, at);
  for (const k of ['major', 'minor'] as const) {
    const n = o[k];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xfffff) usage(label, `needs ${k} as a whole number, got ${show(n)}`, at);
  }
  const dangerous = flagOf(label, 'dangerous', o.dangerous, at);
  const id = `${o.major}:${o.minor}`;
  if (!dangerous && (o.type === 'b' || FORBIDDEN_CHAR.has(id))) {
    usage(label, `asks for ${o.type === 'b' ? 'a block device' : `character device ${id}`}, which gives a jailed process ` +
      `the host's memory, disks, I/O ports or kernel log. Leave it out; if the service truly needs it, declare it with { dangerous: true }`, at);
  }
  return {
    kind: 'device', at, label, path: jailPath(label, path, at, true), type: o.type, major: o.major as number, minor: o.minor as number,
    mode: modeOf(label, o.mode, at), owner: ownerOf(label, o.owner, at), dangerous,
  };
}

export interface CopyOptions extends Attrs {
  /** The jail path (a file's new name, or the directory a tree or glob lands in). Defaults to the host path. */
  to?: string;
  /** Copy what a symlink points to instead of the link itself (cp -L). */
  follow?: boolean;
  /** Keep setuid/setgid bits (dropped by default). */
  setuid?: boolean;
}

/** Host files into the jail: a file, a directory tree, or a glob (`/usr/share/doc/bash/*`). */
export function copy(source: string, opts?: CopyOptions): CopyEntry {
  const at = callSite();
  const label = `copy(${show(source)})`;
  if (typeof source !== 'string' || !source.startsWith('/') || source.includes('\0'))
    usage(label, `needs an absolute host path or glob, got ${show(source)}`, at);
  const o = attrsOf(label, opts, ['to', 'follow', 'setuid', 'mode', 'owner'], at);
  return {
    kind: 'copy', at, label, source,
    to: o.to === undefined ? undefined : jailPath(label, o.to, at),
    ...(typeof o.to === 'string' && o.to.length > 1 && o.to.endsWith('/') ? { toDir: true } : {}),
    follow: flagOf(label, 'follow', o.follow, at), setuid: flagOf(label, 'setuid', o.setuid, at),
    mode: modeOf(label, o.mode, at), owner: ownerOf(label, o.owner, at),
  };
}

/** A file generated from a string or bytes (mode 0644 unless told otherwise). */
export function text(path: string, content: string | Uint8Array, opts?: Attrs): TextEntry {
  const at = callSite();
  const label = `text(${show(path)})`;
  if (typeof content !== 'string' && !(content instanceof Uint8Array)) usage(label, 'needs the content as a string or bytes', at);
  const o = attrsOf(label, opts, ['mode', 'owner'], at);
  if (typeof path === 'string' && path.length > 1 && path.endsWith('/')) usage(label, `names a directory (the path ends in '/'), but text() makes a file; write the file's path, such as '${path.replace(/\/+$/, '')}/motd'`, at);
  return {
    kind: 'text', at, label, path: jailPath(label, path, at, true),
    content: typeof content === 'string' ? Buffer.from(content) : Buffer.from(content),
    mode: modeOf(label, o.mode, at), owner: ownerOf(label, o.owner, at),
  };
}

/** The jail's accounts: etc/passwd, etc/group and etc/shadow hold root and these users only. */
export function users(spec: Record<string, UserSpec>): UsersEntry {
  const at = callSite();
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) usage('users()', `takes an object of name: { uid, gid, home, shell, gecos, groups }, got ${show(spec)}`, at);
  const label = `users({ ${Object.keys(spec).join(', ')} })`;
  for (const [name, u] of Object.entries(spec)) {
    const one = `users({ ${name} })`;
    const o = attrsOf(one, u ?? null, ['uid', 'gid', 'home', 'shell', 'gecos', 'groups'], at);
    for (const k of ['uid', 'gid'] as const) {
      if (!Number.isInteger(o[k]) || (o[k] as number) < 0) usage(one, `needs ${k} as a whole number such as 1000, got ${show(o[k])}`, at);
    }
    for (const k of ['home', 'shell', 'gecos'] as const) {
      if (o[k] !== undefined && typeof o[k] !== 'string') usage(one, `needs ${k} as a string, got ${show(o[k])}`, at);
    }
    if (o.groups !== undefined && (!Array.isArray(o.groups) || o.groups.some((g) => typeof g !== 'string'))) {
      usage(one, `needs groups as a list of group names such as ['staff'], got ${show(o.groups)}`, at);
    }
  }
  return { kind: 'users', at, label, users: { ...spec } };
}

/** Extra groups for etc/group (each user's primary group is made for it unless declared here). */
export function groups(spec: Record<string, GroupSpec>): GroupsEntry {
  const at = callSite();
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) usage('groups()', `takes an object of name: { gid, members }, got ${show(spec)}`, at);
  for (const [name, g] of Object.entries(spec)) {
    const one = `groups({ ${name} })`;
    const o = attrsOf(one, g ?? null, ['gid', 'members'], at);
    if (!Number.isInteger(o.gid) || (o.gid as number) < 0) usage(one, `needs gid as a whole number such as 50, got ${show(o.gid)}`, at);
    if (o.members !== undefined && (!Array.isArray(o.members) || o.members.some((m) => typeof m !== 'string'))) {
      usage(one, `needs members as a list of user names such as ['www-data'], got ${show(o.members)}`, at);
    }
  }
  return { kind: 'groups', at, label: `groups({ ${Object.keys(spec).join(', ')} })`, groups: { ...spec } };
}

/**
 * Programs (or dlopen'ed plugins, by glob) with everything the dynamic loader needs to
 * start them: the interpreter at its exact path and every DT_NEEDED library, found by
 * reading the ELF files (nothing is run), each at its real path with the host's symlink
 * chain. A script brings the closure of its #! interpreter. The last argument may be
 * `{ setuid: true }` to keep setuid bits.
 */
export function elf(...args: (string | { setuid?: boolean })[]): ElfEntry {
  const at = callSite();
  const last = args.at(-1);
  const opts = typeof last === 'object' && last !== null ? (args.pop() as Record<string, unknown>) : {};
  const patterns = args as string[];
  const label = `elf(${patterns.map((p) => show(p)).join(', ')})`;
  if (patterns.length === 0) usage(label, 'needs at least one program path or glob', at);
  for (const p of patterns) {
    if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0')) usage(label, `needs absolute host paths or globs, got ${show(p)}`, at);
  }
  attrsOf(label, opts, ['setuid'], at);
  return { kind: 'elf', at, label, patterns, setuid: flagOf(label, 'setuid', opts.setuid, at) };
}

/**
 * Every file of installed Debian packages, read from dpkg's own file lists (nothing is
 * run), with the closures of their ELF files.
 */
export function debianPackage(...names: string[]): PackageEntry {
  const at = callSite();
  const label = `debianPackage(${names.map((n) => show(n)).join(', ')})`;
  if (names.length === 0) usage(label, 'needs at least one package name', at);
  for (const n of names) if (typeof n !== 'string' || !/^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?$/.test(n)) usage(label, `has a bad package name ${show(n)}`, at);
  return { kind: 'package', at, label, names };
}

/** A warning printed on every build (recipes use it for what a person should know). */
export function warning(message: string): WarningEntry {
  const at = callSite();
  return { kind: 'warning', at, label: 'warning()', message: String(message) };
}

/** Accepts a reviewed `jail check` finding (`allow('setuid', '/usr/bin/ping')`) so it stops alarming. */
export function allow(finding: string, path: string): AllowEntry {
  const at = callSite();
  const label = `allow(${show(finding)}, ${show(path)})`;
  if (typeof finding !== 'string' || !(FINDING_KINDS as readonly string[]).includes(finding)) usage(label, `needs a finding kind of jail check, one of ${FINDING_KINDS.join(', ')}; got ${show(finding)}`, at);
  return { kind: 'allow', at, label, finding, path: jailPath(label, path, at) };
}

/** Confinement for `jail boot` and `jail run`; each default can be turned off here. */
export function runtime(spec: RuntimeSpec): RuntimeEntry {
  const at = callSite();
  const label = 'runtime({ ... })';
  attrsOf(label, spec, ['user', 'cpu', 'pids', 'memory', 'proc', 'network', 'namespaces'], at);
  return { kind: 'runtime', at, label, spec: { ...spec } };
}

/**
 * A directory whose contents belong to the service (uploads, a database): made by the
 * build, never emptied or pruned by it, and carried in `jail pack` so that a rebuild from
 * the pack restores them.
 */
export function data(path: string, opts?: Attrs): DataEntry {
  const at = callSite();
  const label = `data(${show(path)})`;
  const o = attrsOf(label, opts, ['mode', 'owner'], at);
  return { kind: 'data', at, label, path: jailPath(label, path, at, true), mode: modeOf(label, o.mode, at), owner: ownerOf(label, o.owner, at) };
}

/**
 * An install step, like the article's `make install` run inside the jail: `run` executes
 * chrooted in the jail (an argument list, clean environment, a timeout), and whatever it
 * adds under ROOT is captured as a layer in the install directory, keyed by the step, its
 * inputs' contents and `run`. Later builds and rebuilds replay the layer; the step runs
 * again only when an input changes.
 */
export function install(name: string, opts: { inputs: string[]; run: string[]; timeout?: number; env?: Record<string, string> }): InstallEntry {
  const at = callSite();
  const label = `install(${show(name)})`;
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) usage(label, 'needs a name of letters, digits, ., _ and -', at);
  const o = attrsOf(label, opts, ['inputs', 'run', 'timeout', 'env'], at);
  if (!Array.isArray(o.run) || o.run.length === 0 || o.run.some((w) => typeof w !== 'string')) usage(label, "needs run: the command as a list of words, e.g. ['/bin/sh', '-c', 'cd /src/app && make install']", at);
  if (!(o.run as string[])[0]!.startsWith('/')) usage(label, `needs run to start with the program's absolute path in the jail (no PATH search), e.g. '/bin/sh' or '/usr/bin/make', got ${show((o.run as string[])[0])}`, at);
  if (!Array.isArray(o.inputs) || o.inputs.some((p) => typeof p !== 'string' || !p.startsWith('/'))) usage(label, 'needs inputs: absolute host paths or globs whose contents the step depends on', at);
  const timeout = o.timeout === undefined ? 600 : o.timeout;
  if (typeof timeout !== 'number' || !(timeout > 0)) usage(label, 'has a bad timeout; give seconds', at);
  const env = (o.env ?? {}) as Record<string, string>;
  return { kind: 'install', at, label, name, inputs: o.inputs as string[], run: o.run as string[], timeoutMs: timeout * 1000, env: { ...env } };
}
