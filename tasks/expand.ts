// Entries -> one target per jail path. Globs and directory trees become one target per
// file; every parent becomes a directory target; paths beneath a declared symlink are
// rewritten through it (`/lib/x.so` lands in `/usr/lib/x.so` when `/lib -> usr/lib`).
// Reads the host (lstat, readdir, readlink), never ROOT.

import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { COPY_GLOB, escapedPath, globBase, globSync, isGlob } from './glob.js';
import { collectAccounts, groupText, passwdText, resolveOwner, shadowText, type Accounts } from './accounts.js';
import type { CopyEntry, Entries, Entry, GroupsEntry, UsersEntry } from './entries.js';
import { jailError, type JailError } from './result.js';
import { againstRoot, realHostPath } from './host-inputs.js';
import { baseName, comparePaths, isEntryOf, octal, parentOf, sourceStampOf, type Target } from './targets.js';
import { ElfContext, expandElf } from './expand-elf.js';
import { formatLdCache } from './elf/index.js';
import { expandPackage } from './expand-package.js';
import { packTargets } from './pack/targets.js';
import type { Layer } from './install/layers.js';
import { hostBadName } from './byte-names.js';
import { printable } from './printable.js';

export interface Expansion {
  /** The jailfile's entries, flattened: commands read their own kinds (allow, install, ...) from here. */
  readonly entries: Entry[];
  /** Sorted so that every directory comes before what lies beneath it. */
  readonly targets: Target[];
  readonly errors: JailError[];
  readonly warnings: string[];
}

export function flatten(entries: Entries, out: Entry[] = []): Entry[] {
  if (Array.isArray(entries)) for (const e of entries) flatten(e as Entries, out);
  else if (entries) out.push(entries as Entry);
  return out;
}

/** Where a merged-/usr host has links into usr/ (layout() mirrors the same names). */
const MERGED_NAMES: ReadonlySet<string> = new Set(['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']);
const mergedLinks = new Map<string, string | undefined>();

/** The host's link at one of MERGED_NAMES when it leads into /usr (`usr/lib`), read once per process. */
function mergedUsrLink(p: string): string | undefined {
  if (!mergedLinks.has(p)) {
    let to: string | undefined;
    try { to = fs.readlinkSync(p); } catch { /* a real directory, or none */ }
    mergedLinks.set(p, to !== undefined && /^\/?usr\//.test(to) ? to : undefined);
  }
  return mergedLinks.get(p);
}

const EMPTY_ACCOUNTS: Accounts = { users: [{ name: 'root', uid: 0, gid: 0, home: '/root', shell: '', gecos: '', groups: [] }], groups: [{ name: 'root', gid: 0, members: [] }] };
const MAX_LINK_HOPS = 40;
const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK } = fs.constants;

/** `root`: ROOT's real path, where no followed source may lead (elf()'s is `elf.root`). */
export function expand(entryList: Entries, elf: ElfContext = new ElfContext(), layers: readonly Layer[] = [], root?: string): Expansion {
  const entries = flatten(entryList);
  const errors: JailError[] = [];
  const warnings: string[] = [];
  const byPath = new Map<string, Target>();

  const accountEntries = entries.filter((e): e is UsersEntry | GroupsEntry => e.kind === 'users' || e.kind === 'groups');
  let accounts = EMPTY_ACCOUNTS;
  let accountsOk = true;
  if (accountEntries.length) {
    const r = collectAccounts(accountEntries);
    if (r.ok) accounts = r.value;
    else { errors.push(...r.error); accountsOk = false; }
  }

  /**
   * Paths of entries whose owner did not resolve: a failed target is not built, as root or
   * otherwise, nor what lies beneath it; -k builds the rest and leaves these as they are.
   */
  const failed = new Set<string>();
  const toFailed = (t: Target) => { failed.add(t.path); };
  /** The entry's owner, and where its targets go: `add`, or `failed` when the owner does not resolve. */
  const owner = (e: Entry, spec: unknown): { o: { uid: number; gid: number }; put: (t: Target) => void } => {
    const r = resolveOwner(spec, accounts);
    if (r.ok) return { o: r.value, put: add };
    // With the accounts refused, a name is unknown because of that error, already said.
    if (accountsOk || typeof spec === 'number') errors.push(jailError('bad-owner', `${e.at}: ${e.label}: ${r.error}.`, { entry: e.at }));
    return { o: { uid: 0, gid: 0 }, put: toFailed };
  };

  /** Each conflict once, however many of its targets an entry adds (elf() adds a link for every library through it). */
  const said = new Set<string>();
  const once = (key: string, err: JailError) => { if (!said.has(key)) { said.add(key); errors.push(err); } };
  /**
   * A real directory declared where this host has a merged-/usr link, and an entry that
   * needs the link (one that makes it, or copies a host path through it): one error, as
   * the host's files beneath it live in /usr and the jail mirrors the link to keep them there.
   */
  const mergedConflict = (d: { at: string; label: string; path: string }, to: string, why: string) => once(`${d.at}\0${d.path}`, jailError('merged-usr',
    `${d.at}: ${d.label} declares ${d.path} a real directory, but this host has ${d.path} -> ${to} (merged /usr), and ${why}. ` +
    `Drop ${d.path} from the entry: the jail mirrors the link (layout() and elf() make it, or declare link('${d.path}', '${to}')), and what lies beneath it lands in /${to.replace(/^\//, '')}.`,
    { path: d.path, entry: d.at }));
  const add = (t: Target) => {
    const prev = byPath.get(t.path);
    if (!prev) { byPath.set(t.path, t); return; }
    if (prev.kind === 'dir' && t.kind === 'dir') {
      if (t.implicit) return;
      if (prev.implicit) { byPath.set(t.path, t); return; }
    }
    if (sameDeclaration(prev, t)) {
      // A program of one entry can be a library of another's closure: it is both.
      if (t.library && !prev.library) byPath.set(t.path, { ...prev, library: true });
      return;
    }
    const dirAt = prev.kind === 'dir' ? prev : t.kind === 'dir' ? t : undefined;
    const linkAt = prev.kind === 'symlink' ? prev : t.kind === 'symlink' ? t : undefined;
    const to = dirAt && linkAt && MERGED_NAMES.has(t.path) ? mergedUsrLink(t.path) : undefined;
    if (to !== undefined) { mergedConflict(dirAt!, to, `${linkAt!.label} at ${linkAt!.at} ${linkAt!.label.startsWith('link(') ? 'declares' : 'mirrors'} that link`); return; }
    once(`${t.path}\0${prev.at}\0${prev.label}\0${t.at}\0${t.label}`, jailError('conflict',
      `${t.path} is declared twice, differently: as a ${describe(prev)} by ${prev.label} at ${prev.at}, and as a ${describe(t)} by ${t.label} at ${t.at}.${differences(prev, t)} Remove one of the two entries, or make them agree.`,
      { path: t.path, entry: t.at }));
  };

  for (const e of entries) {
    switch (e.kind) {
      case 'dir': {
        const { o, put } = owner(e, e.owner);
        for (const p of e.paths) put({ kind: 'dir', path: p, mode: e.mode ?? 0o755, ...o, at: e.at, label: e.label });
        break;
      }
      case 'link': {
        const { o, put } = owner(e, e.owner);
        put({ kind: 'symlink', path: e.path, target: e.target, mode: 0o777, ...o, at: e.at, label: e.label });
        break;
      }
      case 'device': {
        if (e.dangerous) warnings.push(`${e.at}: ${e.label} is a dangerous device (${e.type} ${e.major}:${e.minor}), declared on purpose: a jailed process can use it to reach the host`);
        const { o, put } = owner(e, e.owner);
        put({ kind: 'device', path: e.path, type: e.type, major: e.major, minor: e.minor, dangerous: e.dangerous, mode: e.mode ?? 0o600, ...o, at: e.at, label: e.label });
        break;
      }
      case 'text': {
        const { o, put } = owner(e, e.owner);
        put(textTarget(e.path, e.content, e.mode ?? 0o644, o, e));
        break;
      }
      case 'copy': {
        const { o, put } = owner(e, e.owner);
        expandCopy(e, o, put, errors, warnings, root);
        break;
      }
      case 'elf':
        expandElf(e, elf, add, errors, warnings);
        break;
      case 'package':
        expandPackage(e, elf, add, errors, warnings);
        break;
      case 'warning':
        warnings.push(`${e.at}: ${e.message}`);
        break;
      case 'install': {
        const layer = layers.find((l) => l.entry === e);
        if (layer?.pack) for (const t of packTargets(layer.pack, e.at, errors)) add({ ...t, at: e.at, label: e.label });
        break;
      }
      case 'data': {
        const { o, put } = owner(e, e.owner);
        put({ kind: 'dir', path: e.path, mode: e.mode ?? 0o755, ...o, at: e.at, label: e.label });
        break;
      }
      case 'allow':
      case 'runtime':
        break;
      case 'users':
      case 'groups':
        break;
    }
  }

  // A copy of a host path beneath a merged-/usr link needs the link as much as elf() does.
  for (const name of MERGED_NAMES) {
    const d = byPath.get(name);
    if (d?.kind !== 'dir' || d.implicit) continue;
    const to = mergedUsrLink(d.path);
    const beneath = (e: CopyEntry) => isGlob(e.source) ? `${globBase(e.source)}/`.startsWith(d.path + '/') : path.posix.normalize(e.source).startsWith(d.path + '/');
    const through = to === undefined ? undefined : entries.find((e): e is CopyEntry => e.kind === 'copy' && beneath(e));
    if (through) mergedConflict(d, to!, `${through.label} at ${through.at} copies ${through.source} through that link`);
  }

  // A user's own /etc/ld.so.cache (a copy of the host's, say) wins over the generated one.
  if (elf.ldCacheRecords.length && elf.ldCacheAuthor && !byPath.has('/etc/ld.so.cache')) {
    add({ ...textTarget('/etc/ld.so.cache', formatLdCache(elf.ldCacheRecords, elf.ldCacheEndian), 0o644, { uid: 0, gid: 0 }, elf.ldCacheAuthor), library: true });
  }

  if (accountEntries.length) {
    const first = accountEntries[0]!;
    // Refused accounts are failed targets: -k does not write a passwd of root alone over the jail's.
    const put = accountsOk ? add : toFailed;
    put(textTarget('/etc/passwd', Buffer.from(passwdText(accounts)), 0o644, { uid: 0, gid: 0 }, first));
    put(textTarget('/etc/group', Buffer.from(groupText(accounts)), 0o644, { uid: 0, gid: 0 }, first));
    put(textTarget('/etc/shadow', Buffer.from(shadowText(accounts)), 0o600, { uid: 0, gid: 0 }, first));
  }

  const declared = [...byPath.values()];
  const targets = throughDeclaredLinks(declared, errors);
  // Nothing rewritten: the paths are byPath's own, each once, so withParents may start
  // from byPath instead of building the same map again.
  const same = targets === declared;
  const all = withParents(targets, errors, same ? byPath : undefined);
  return { entries, targets: failed.size ? withoutFailed(all, failed, warnings) : all, errors, warnings };
}

/**
 * `targets` less the failed ones and what lies beneath them (a parent made implicitly for
 * another entry included): as make skips a target whose prerequisite failed, one warning
 * for each failed directory says how many were skipped because of it.
 */
function withoutFailed(targets: Target[], failed: ReadonlySet<string>, warnings: string[]): Target[] {
  const skipped = new Map<string, number>();
  const kept = targets.filter((t) => {
    if (failed.has(t.path)) return false;
    for (let p = parentOf(t.path); p !== '/'; p = parentOf(p)) {
      if (failed.has(p)) { skipped.set(p, (skipped.get(p) ?? 0) + 1); return false; }
    }
    return true;
  });
  for (const [p, n] of skipped) warnings.push(`${n} target${n > 1 ? 's' : ''} beneath ${p} not built: the entry that declares ${p} failed (its error says why)`);
  return kept;
}

function textTarget(p: string, content: Buffer, mode: number, o: { uid: number; gid: number }, e: { at: string; label: string }): Target {
  return { kind: 'text', path: p, content, contentHash: createHash('sha256').update(content).digest('hex'), mode, ...o, at: e.at, label: e.label };
}

function describe(t: Target): string {
  switch (t.kind) {
    case 'dir': return `directory (${octal(t.mode)} ${t.uid}:${t.gid})`;
    case 'symlink': return `symlink to ${t.target}`;
    case 'device': return `device ${t.type} ${t.major}:${t.minor}`;
    case 'file': return `copy of ${t.source} (${octal(t.mode)})`;
    case 'text': return `generated file (${octal(t.mode)})`;
  }
}

/** What two declarations of one path of the same kind disagree on, as a sentence ('' for different kinds: describe() says). */
function differences(a: Target, b: Target): string {
  if (a.kind !== b.kind) return '';
  const out: string[] = [];
  const size = (n: number) => `${n} byte${n === 1 ? '' : 's'}`;
  if (a.kind === 'text' && b.kind === 'text' && a.contentHash !== b.contentHash) {
    out.push(`content: ${size(a.content.length)} (sha256 ${a.contentHash.slice(0, 8)}) vs ${size(b.content.length)} (sha256 ${b.contentHash.slice(0, 8)})`);
  }
  if (a.kind === 'file' && b.kind === 'file' && a.source !== b.source) out.push(`source: ${a.source} vs ${b.source}`);
  if (a.mode !== b.mode) out.push(`mode: ${octal(a.mode)} vs ${octal(b.mode)}`);
  if (a.uid !== b.uid || a.gid !== b.gid) out.push(`owner: ${a.uid}:${a.gid} vs ${b.uid}:${b.gid}`);
  return out.length ? ` They differ in ${out.join('; ')}.` : '';
}

/** Two declarations of one path that agree are one target (a library shared by two programs). */
function sameDeclaration(a: Target, b: Target): boolean {
  if (a.kind !== b.kind || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return false;
  switch (a.kind) {
    case 'dir': return true;
    case 'symlink': return a.target === (b as typeof a).target;
    case 'device': { const d = b as typeof a; return a.type === d.type && a.major === d.major && a.minor === d.minor; }
    case 'file': return a.source === (b as typeof a).source || a.sourceStamp === (b as typeof a).sourceStamp;
    case 'text': return a.contentHash === (b as typeof a).contentHash;
  }
}

function expandCopy(e: CopyEntry, o: { uid: number; gid: number }, add: (t: Target) => void, errors: JailError[], warnings: string[], root?: string): void {
  const visited = new Set<string>();
  const { uid, gid } = o;
  const { at, label } = e;
  const one = (src: string, dest: string, top: boolean): void => {
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(src, { bigint: true });
      if (e.follow && (Number(st.mode) & S_IFMT) === S_IFLNK) {
        // A link followed into the jail would read what was planted there as the host's.
        const real = root === undefined ? '' : realHostPath(src);
        const how = root === undefined ? undefined : againstRoot(real, root);
        if (how !== undefined) {
          errors.push(jailError('source-in-root', `${e.at}: ${e.label}: ${src} is a symlink to ${real}, which ${how} (${root}); with follow: true the copy would read from the jail, where anything may have been planted (a link to a host secret, say). Point the link outside ROOT, drop follow, or choose a ROOT elsewhere.`, { path: src, entry: e.at }));
          return;
        }
        st = fs.statSync(src, { bigint: true });
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Read as text, a name that is not UTF-8 names no file: say so, not that it is missing.
      const bad = code === 'ENOENT' ? hostBadName(src) : undefined;
      if (bad !== undefined) {
        errors.push(jailError('bad-name', `${e.at}: ${e.label}: the host name ${printable(bad)} is not valid UTF-8 (shown escaped)${top ? '' : ` (found while copying ${e.source})`}; ` +
          'jail\'s paths are UTF-8 text, so it cannot copy it. Rename it on the host, or narrow the copy so it is left out (a glob that does not match it).', { path: src, entry: e.at }));
        return;
      }
      errors.push(jailError('missing-source',
        `${e.at}: ${e.label}: ${code === 'ENOENT' ? `${src} does not exist on this host` : `cannot read ${src} (${code})`}` +
        `${top ? '' : ` (found while copying ${e.source})`}. Install what provides it, fix the path, or remove the entry.`,
        { path: src, entry: e.at }));
      return;
    }
    // The type is read from one Number of st_mode: BigIntStats' isFile() and the like each
    // do BigInt arithmetic, and a tree asks thousands of times.
    const stMode = Number(st.mode), type = stMode & S_IFMT;
    const perm = stMode & 0o7777;
    // Targets are written out field by field: a spread in the middle of a literal builds
    // each of the tree's thousands of objects the slow way.
    // `to: '/etc/'` names a directory: a file or link would be written as /etc itself.
    if (top && e.toDir && literal !== undefined && type !== S_IFDIR) {
      errors.push(jailError('bad-entry', `${e.at}: ${e.label}: to ends in '/', which names a directory, but ${src} is not one; give the file's path in the jail, such as '${dest}/${path.posix.basename(src)}'.`, { path: dest, entry: e.at }));
      return;
    }
    if (type === S_IFLNK) {
      let target: string;
      try { target = fs.readlinkSync(src); } catch (err) {
        // Gone or replaced since the lstat a moment ago: the host's doing, not a bug.
        errors.push(jailError('source-changed', `${e.at}: ${e.label}: the source ${src} changed during the build (it was a symlink, and reading it now fails: ${(err as NodeJS.ErrnoException).code}). Run make again.`, { path: src, entry: e.at }));
        return;
      }
      add({ kind: 'symlink', path: dest, target, mode: 0o777, uid, gid, at, label });
    } else if (type === S_IFREG) {
      let mode = e.mode ?? perm;
      if (!e.setuid) mode &= ~0o6000;
      add({ kind: 'file', path: dest, source: src, sourceStamp: sourceStampOf(st), mode, uid, gid, at, label, sourceMode: e.mode === undefined });
    } else if (type === S_IFDIR) {
      const id = `${st.dev}:${st.ino}`;
      if (visited.has(id)) { warnings.push(`${e.at}: ${e.label}: ${src} loops back to a directory already copied; skipped`); return; }
      visited.add(id);
      add({ kind: 'dir', path: dest, mode: perm & ~0o6000, uid, gid, at, label, sourceMode: true });
      let names: string[];
      try { names = fs.readdirSync(src); } catch (err) {
        errors.push(jailError('missing-source', `${e.at}: ${e.label}: cannot list ${src} (${(err as NodeJS.ErrnoException).code}).`, { path: src, entry: e.at }));
        return;
      }
      // A tree copied to where it lies on the host (the usual case) names each path once:
      // one string serves as source and destination.
      const srcDir = src === '/' ? '' : src, destDir = dest === '/' ? '' : dest;
      for (const n of names.sort()) {
        const s = `${srcDir}/${n}`;
        one(s, src === dest ? s : `${destDir}/${n}`, false);
      }
    } else {
      warnings.push(`${e.at}: ${e.label}: skipped ${src}: copy() does not copy device nodes, FIFOs or sockets (declare devices with device())`);
    }
  };

  const literal = isGlob(e.source) ? escapedPath(e.source) : e.source;
  if (literal === undefined) {
    const base = globBase(e.source);
    const matches = globSync(e.source, COPY_GLOB);
    if (matches.length === 0) {
      errors.push(jailError('missing-source', `${e.at}: ${e.label}: the pattern matches no file on this host. Install what provides the files, fix the pattern, or remove the entry.`, { path: e.source, entry: e.at }));
      return;
    }
    const destBase = e.to ?? base;
    for (const m of matches.sort()) one(m, path.posix.join(destBase, path.posix.relative(base, m)), true);
  } else {
    one(path.posix.normalize(literal).replace(/(.)\/$/, '$1'), e.to ?? path.posix.normalize(literal).replace(/(.)\/$/, '$1'), true);
  }
}

/**
 * A path beneath a declared symlink is written where the link leads, inside the jail:
 * writing through a link in ROOT is exactly what an attacker wants, so the builder
 * never does it, and the jail still sees the file at the path the jailfile named.
 */
function throughDeclaredLinks(targets: Target[], errors: JailError[]): Target[] {
  const links = new Map<string, string>();
  for (const t of targets) if (t.kind === 'symlink') links.set(t.path, t.target);
  if (links.size === 0) return targets;
  // Where a directory's children land depends only on the directory: worked out once per
  // directory (a probe child stands for them all, as only proper prefixes are rewritten).
  const landing = new Map<string, string | null>();
  // Targets come directory by directory: the last directory's answer is kept, and a path
  // in it is recognised without cutting its parent out as a new string.
  let lastDir = '', lastTo: string | null = null;
  const canonical = (p: string): string | null => {
    let dir: string, to: string | null | undefined;
    if (isEntryOf(p, lastDir)) { dir = lastDir; to = lastTo; } else {
      dir = parentOf(p);
      to = landing.get(dir);
      if (to === undefined) {
        const probe = canonicalPath(`${dir === '/' ? '' : dir}/\0`, links);
        to = probe === null ? null : parentOf(probe);
        landing.set(dir, to);
      }
      lastDir = dir; lastTo = to;
    }
    return to === null ? null : to === dir ? p : `${to === '/' ? '' : to}/${baseName(p)}`;
  };
  // Copied until the first target that moves or goes: most jails have links only where
  // nothing lies beneath them, and get their own array back.
  let out: Target[] | undefined;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!;
    const p = canonical(t.path);
    if (p === t.path) { out?.push(t); continue; }
    out ??= targets.slice(0, i);
    if (p === null) {
      errors.push(jailError('link-loop', `${t.at}: ${t.label}: ${t.path} lies beneath declared symlinks that loop. Fix the link() entries.`, { path: t.path, entry: t.at }));
      continue;
    }
    out.push({ ...t, path: p });
  }
  return out ?? targets;
}

/** Rewrites `p` through the first declared link among its proper prefixes, until none is left. */
export function canonicalPath(p: string, links: ReadonlyMap<string, string>): string | null {
  for (let hops = 0; hops <= MAX_LINK_HOPS; hops++) {
    let next: string | undefined;
    for (let i = p.indexOf('/', 1); i !== -1; i = p.indexOf('/', i + 1)) {
      const prefix = p.slice(0, i);
      const to = links.get(prefix);
      if (to !== undefined) { next = path.posix.resolve(to.startsWith('/') ? '/' : parentOf(prefix), to, p.slice(i + 1)); break; }
    }
    if (next === undefined) return p;
    p = next;
  }
  return null;
}

/**
 * A jail path as the jail resolves it through the declared links, its last component
 * too: every link passed on the way, then the real path. Null when the links loop.
 */
export function throughLinks(p: string, links: ReadonlyMap<string, string>): string[] | null {
  const via: string[] = [];
  for (let hops = 0; hops <= MAX_LINK_HOPS; hops++) {
    let next: string | undefined;
    for (let i = p.indexOf('/', 1); ; i = p.indexOf('/', i + 1)) {
      const prefix = i === -1 ? p : p.slice(0, i);
      const to = links.get(prefix);
      if (to !== undefined) {
        via.push(prefix);
        next = path.posix.resolve(to.startsWith('/') ? '/' : parentOf(prefix), to, i === -1 ? '' : p.slice(i + 1));
        break;
      }
      if (i === -1) break;
    }
    if (next === undefined) return [...via, p];
    p = next;
  }
  return null;
}

/** Adds an implicit directory for every parent nobody declared, and sorts parents first. */
export function withParents(targets: Target[], errors: JailError[], known?: Map<string, Target>): Target[] {
  /** `known`: the targets by path already, each path once (the caller's map, taken over). */
  const byPath = known ?? new Map<string, Target>();
  if (!known) for (const t of targets) {
    const prev = byPath.get(t.path);
    if (prev && !(prev.kind === 'dir' && t.kind === 'dir') && !sameDeclaration(prev, t)) {
      errors.push(jailError('conflict', `${t.path} is declared twice, differently: by ${prev.label} at ${prev.at} and by ${t.label} at ${t.at} (one of them through a declared symlink).${differences(prev, t)} Remove one of the two entries.`, { path: t.path, entry: t.at }));
      continue;
    }
    if (!prev || (prev.kind === 'dir' && prev.implicit)) byPath.set(t.path, t);
    else if (t.library && !prev.library) byPath.set(t.path, { ...prev, library: true });
  }
  // Paths come directory by directory: once a directory is known to be one, the rest of
  // its entries need no climb (nor their parents cut out as new strings).
  let knownDir = '';
  for (const t of [...byPath.values()]) {
    if (isEntryOf(t.path, knownDir)) continue;
    let p = parentOf(t.path);
    const first = p;
    for (; p !== '/'; p = parentOf(p)) {
      const have = byPath.get(p);
      if (have) {
        if (have.kind !== 'dir') {
          errors.push(jailError('conflict', `${t.label} at ${t.at} puts ${t.path} beneath ${p}, but ${have.label} at ${have.at} declares ${p} a ${describe(have)}. ` +
            (have.kind === 'symlink' ? `Name the path through the link's target instead.` : 'Remove one of the two entries.'), { path: t.path, entry: t.at }));
          break;
        }
        knownDir = first;
        break;
      }
      byPath.set(p, { kind: 'dir', path: p, mode: 0o755, uid: 0, gid: 0, at: t.at, label: t.label, implicit: true });
    }
    if (p === '/') knownDir = first;
  }
  byPath.delete('/');
  return [...byPath.values()].sort((a, b) => comparePaths(a.path, b.path));
}
