// `jail check`: audit a jail without running anything in it. check() is what the CLI,
// `jail make` (its cheap half, after every build), watch mode and tests call.
//
// The findings, and the choices behind them:
// - missing-library / missing-interpreter: every ELF file in ROOT resolved as the jail's
//   own loader would (the jail's ld.so.cache, else its ld.so.conf and the default dirs);
//   and every executable `#!` script whose interpreter is not an executable file of the
//   jail (looked up through the jail's links; for `#!/usr/bin/env X`, env only).
// - setuid: a regular file with setuid or setgid, or file capabilities (read with the
//   host's getcap; skipped with a note when there is none).
// - world-writable: a group- or world-writable directory or file, except a sticky
//   directory that lies on no path to a program, library or etc (a tmp), or that root
//   owns and lies only on the way to root-owned entries (a /tmp holding a program's
//   directory); and anything on those paths (the root, their directories, the files
//   themselves) owned by a non-root account of the jail's etc/passwd. An executable in a
//   data() directory is the service's own and puts no path under that rule.
// - device: a device node other than null 1:3, zero 1:5, full 1:7, random 1:8, urandom
//   1:9, tty 5:0, console 5:1, ptmx 5:2 (by number, wherever it lies), every block device,
//   and a /dev/<one of those names> with other numbers.
// - hardlink: a regular file with more links than names for its inode inside ROOT.
// - drift: a path the last build recorded that is no longer what it wrote (judged by
//   plan() against the record, so a jailfile edit or a host upgrade is not drift), and an
//   ELF or executable file in bin, sbin, lib*, usr/{bin,sbin,lib*}, usr/local/... that no
//   target declares, an ELF file or executable #! script no target declares anywhere
//   outside data() directories, and an etc/ld.so.preload no target declares.
// - escape-symlink: an absolute link to outside ROOT that the jailfile did not declare
//   (its own links, such as elf()'s mirrored chains and /etc/localtime, are the author's),
//   and a relative link that climbs above ROOT when the host resolves it (through the
//   links on its way) or just as written.
// - accounts: uid 0 other than root, the ids read as the jail's glibc reads them (`+0`,
//   ` 0` and `-0` are 0); a uid or gid field that is not plain digits, or that the libc
//   skips the line for; a password hash or an empty password in etc/passwd
//   or etc/shadow (only `*`, `!`, `!!`, `!*`... pass); a login shell missing from the jail,
//   except nologin and false, whose absence refuses the login just the same.
// allow(kind, path) accepts one finding; a path ending in `/*` accepts the kind beneath a
// directory (allow() strips a trailing `/`, so `/dir/*` is how a prefix is written).
//
// The jail is hostile: ROOT is walked with lstat only, never following a symlink and
// never leaving ROOT's filesystem; only regular files are opened, without following a
// link or blocking, and only when they are still the inode lstat saw; nothing from the
// jail is run (capabilities are read by the host's getcap, account files as data).

import { printable, printableCode } from '../printable.js';
import type { Analysis } from '../make.js';
import { loadManifest, manifestPath, type Manifest } from '../manifest.js';
import { fail, jailError, ok, type Result } from '../result.js';
import type { Target } from '../targets.js';
import { checkAccounts, readAccounts } from './accounts.js';
import { checkCapabilities } from './capabilities.js';
import { collector, type Context } from './context.js';
import { checkDrift } from './drift.js';
import { checkLibraries } from './libraries.js';
import { RootReader } from './reader.js';
import { checkDevices, checkHardlinks, checkNames, checkSetuid, checkSymlinks, checkWritable } from './rules.js';
import { checkScripts } from './scripts.js';
import { FINDING_KINDS, type CheckOptions, type CheckResult, type Finding, type Node } from './types.js';
import { walkRoot } from './walk.js';

export { FINDING_KINDS } from './types.js';
export type { CheckOptions, CheckResult, Finding, FindingKind } from './types.js';

/** What check() needs of an analysis: ROOT, the install directory (for the build record), the targets and the allow() entries. */
export type CheckInput = Pick<Analysis, 'root' | 'installDir' | 'targets' | 'entries' | 'record'>;

interface Allowance { kind: string; path: string; at: string }

/**
 * allow(kind, path) accepts a finding of that kind at exactly that jail path; a path
 * ending in `/*` accepts that kind everywhere beneath the directory (`allow('setuid', '/usr/bin/*')`).
 */
export function isAllowed(f: Finding, allowances: readonly Allowance[]): boolean {
  return allowances.some((a) => a.kind === f.kind && (a.path === f.path || (a.path.endsWith('/*') && f.path.startsWith(a.path.slice(0, -1)))));
}

export function check(input: CheckInput, opts: CheckOptions = {}): Result<CheckResult> {
  const { root } = input;
  const opened = RootReader.open(root);
  if (!(opened instanceof RootReader)) {
    const why = opened.code === 'ENOENT' ? 'does not exist: there is no jail to check yet; build it with jail make'
      : opened.code === 'ELOOP' ? 'is a symlink; name the real directory'
        : opened.code === 'ENOTDIR' ? 'is not a directory' : `cannot be opened (${opened.code})`;
    return fail(jailError('bad-root', `ROOT=${root} ${why}.`, { path: root }));
  }
  const reader = opened;
  try {
    const notes: string[] = [];
    const cheap = opts.cheap === true;

    const mfile = manifestPath(input.installDir, root);
    let manifest: Manifest | undefined;
    if (!cheap) {
      const loaded = input.record ?? loadManifest(mfile, root);
      if (loaded.error) notes.push(`drift was not checked: ${loaded.error.message}`);
      else if (!loaded.found) notes.push(`drift was not checked: no record of a build of this ROOT beside the jailfile (${mfile}); run jail make first`);
      else {
        manifest = loaded.manifest;
        if (!manifest.complete) notes.push('the last build of this ROOT did not finish: drift is judged against what it recorded; run jail make');
      }
    }

    let declaredMap: Map<string, Target> | undefined;
    const declared = () => (declaredMap ??= new Map<string, Target>(input.targets.map((t) => [t.path, t])));
    if (manifest) {
      const never = input.targets.filter((t) => !t.data && manifest!.records[t.path] === undefined).length;
      if (never > 0) notes.push(`${never} declared path${never > 1 ? 's were' : ' was'} never built (the jailfile changed since the last build?); run jail make`);
    }

    let nodes: Node[];
    let truncated = false;
    /** The nodes by path, for rules that look beyond a node (where a link leads); made with the cheap nodes, or from the walk's when asked. */
    let byPath: Map<string, Node> | undefined;
    if (cheap) {
      const root: Node = { path: '/', st: reader.rootStat };
      nodes = [root];
      byPath = new Map([['/', root]]);
      for (const t of input.targets) {
        const seen = opts.observed?.get(t.path);
        const st = seen ?? reader.lstat(t.path);
        if (!st) continue;
        let n: Node;
        if (!st.isSymbolicLink()) n = { path: t.path, st };
        // A symlink the build just found right holds the declared target.
        else if (seen && t.kind === 'symlink') n = { path: t.path, st, link: t.target, declared: true };
        else { const link = reader.readlink(t.path); n = link === undefined ? { path: t.path, st } : { path: t.path, st, link }; }
        nodes.push(n);
        byPath.set(t.path, n);
      }
    } else {
      const w = walkRoot(reader, { maxEntries: opts.maxEntries });
      nodes = w.nodes;
      truncated = w.truncated;
      notes.push(...w.notes);
    }

    const { accounts, groups, members, oddIds } = readAccounts(reader);
    const out = collector();
    // Rules that look beyond a node (where a link leads) ask for what is in hand first:
    // the stats the build just took, or the walk's.
    const node = (p: string) => (byPath ??= new Map(nodes.map((n) => [n.path, n]))).get(p);
    const ctx: Context = {
      root, reader, nodes, cheap, records: manifest?.records ?? {}, accounts, groups, members, oddIds,
      dataDirs: input.entries.flatMap((e) => (e.kind === 'data' ? [e.path] : [])), add: out.add, note: (m) => notes.push(m),
      get declared() { return declared(); },
      lstat: (p) => node(p)?.st ?? reader.lstat(p),
      readlink: (p) => { const n = node(p); return n?.st.isSymbolicLink() && n.link !== undefined ? n.link : reader.readlink(p); },
    };

    checkNames(ctx);
    checkSetuid(ctx);
    checkWritable(ctx);
    checkDevices(ctx);
    checkSymlinks(ctx);
    checkAccounts(ctx);
    if (!cheap) {
      if (opts.capabilities !== false) checkCapabilities(ctx);
      if (!truncated) checkHardlinks(ctx);
      checkDrift(ctx, manifest);
      checkLibraries(ctx);
      checkScripts(ctx);
    }

    const allowances: Allowance[] = [];
    for (const e of input.entries) {
      if (e.kind !== 'allow') continue;
      if (!(FINDING_KINDS as readonly string[]).includes(e.finding)) {
        notes.push(`${e.at}: ${e.label} names no kind of finding; the kinds are ${FINDING_KINDS.join(', ')}`);
      }
      allowances.push({ kind: e.finding, path: e.path, at: e.at });
    }
    const sorted = out.findings.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
    const findings = sorted.filter((f) => !isAllowed(f, allowances));
    const allowed = sorted.filter((f) => isAllowed(f, allowances));
    return ok({ findings, allowed, notes });
  } finally {
    reader.close();
  }
}

/**
 * `KIND PATH: message; fix`, the human line of a finding. Paths and #! lines come from the
 * jail, so control characters are shown escaped: a file named with a newline must not
 * print a forged finding of its own, nor escape sequences reach the administrator's terminal.
 */
export function findingLine(f: Finding): string {
  // The advice quotes the jail's text with jsString(): its backslashes are the literal's own.
  return `${f.kind} ${printable(f.path)}: ${printable(f.message)}; ${printableCode(f.fix)}`;
}

