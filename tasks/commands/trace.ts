// `jail trace ROOT=... [-f FILE] [--user NAME] [--write FILE] [--timeout S] -- CMD ARGS...`:
// runs CMD in the jail exactly as `jail run` does (the jail user, no_new_privs, rlimits,
// cgroup limits, namespaces, the jail's clean environment, cwd /: see run/chain.ts),
// under `strace -f` started on the host around that whole chain, and lists what the
// program looked for and did not find there although the host has it: the config file
// it fopen()s, the plugin it dlopen()s, the helper it execs. Each comes out as a jailfile
// entry to paste (`copy('/etc/foo.conf')`, `elf('/usr/lib/x/libbar.so.1')`, whose closure
// follows when built), or with --write as a module the jailfile imports.
//
// strace runs as root outside the jail and follows the chain from its first host program
// down through the drop to the jail user: a tracer attached before a process changes its
// uid stays attached, and no_new_privs does not stop it. Only the events of the jailed
// program (the process that chroots, and every process that appears after it) are read;
// the host programs before it are not the program's.
//
// This is makejail's idea (trace the running program: the only way to find what is
// loaded at run time), kept as a suggestion a person reviews rather than a build step,
// because what a trace sees depends on what the program happened to do.
//
// Exit status: 0 nothing missing (or the entries were written with --write), 1 entries
// were printed, 2 error.

import { jsString } from '../printable.js';
import { within } from '../host-inputs.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Parsed } from '../args.js';
import { analyze } from '../make.js';
import type { Output } from '../progress.js';
import { hostProgram } from '../shell.js';
import { runConfig } from '../run/config.js';
import { closeInheritedFds } from '../run/fds.js';
import { prepare } from '../run/instance.js';
import { runOnce } from '../run/once.js';
import { guarded, MAX_TIMEOUT_S, userOption } from '../run/cli.js';
import { readElf, RootPaths } from '../elf/index.js';

const DEFAULT_TIMEOUT_S = 60;
/** Paths no jail gets from the host: the kernel's, and the device nodes device() declares. */
const PSEUDO = ['/proc', '/sys', '/dev'];
/**
 * Probes the dynamic loader makes in every program, which a jail does without: with no
 * ld.so.cache the loader searches its default directories (where elf() puts libraries).
 */
const LOADER_PROBES = new Set(['/etc/ld.so.cache', '/etc/ld.so.preload']);
/** System calls that look for a path the program needs (unlink, mkdir and rename failing say nothing of the kind). */
const LOOKS = new Set([
  'open', 'openat', 'openat2', 'stat', 'lstat', 'stat64', 'lstat64', 'newfstatat', 'fstatat64', 'statx',
  'access', 'faccessat', 'faccessat2', 'execve', 'execveat', 'readlink', 'readlinkat', 'statfs', 'statfs64', 'chdir',
]);
const EXECS = new Set(['execve', 'execveat']);

export interface Miss {
  /** The path as the program named it (absolute, inside the jail). */
  path: string;
  syscall: string;
}

/** One strace line (after unfinished/resumed halves are joined). */
const LINE = /^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(?:<[^>]*>)?(?:\s+(E[A-Z0-9]+))?/;
/** The path argument: the first string, with the directory descriptor before it (decoded by -y). */
const PATH_ARG = /^(?:(AT_FDCWD|-?\d+)(?:<((?:[^>\\]|\\.)*)>)?,\s*)?"((?:[^"\\]|\\.)*)"/;

/** C string escapes as strace prints them. */
function unescape(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\') { bytes.push(...Buffer.from(c, 'utf8')); continue; }
    const n = s[++i];
    if (n === undefined) break;
    const simple: Record<string, number> = { n: 10, t: 9, r: 13, v: 11, f: 12, a: 7, b: 8, '\\': 92, '"': 34, "'": 39 };
    if (n in simple) bytes.push(simple[n]!);
    else if (n === 'x') { bytes.push(parseInt(s.slice(i + 1, i + 3), 16)); i += 2; }
    else if (/[0-7]/.test(n)) {
      const m = /^[0-7]{1,3}/.exec(s.slice(i))![0];
      bytes.push(parseInt(m, 8));
      i += m.length - 1;
    } else bytes.push(n.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The paths a traced program failed to find (ENOENT), from `strace -f -y` output: those of
 * the process that chroots, from its chroot on, and of every process that first shows up
 * after that chroot (the program's children). The host programs of the chain before it,
 * and whatever they do later, are not the program's.
 * `root` is ROOT as the host names it, to turn decoded descriptors back into jail paths.
 */
export function parseTrace(text: string, root: string): Miss[] {
  const out: Miss[] = [];
  const pending = new Map<string, string>();
  const cwd = new Map<string, string>();
  let inJail = false;
  /** Processes seen before the chroot: the host's, unless one of them chroots. */
  const host = new Set<string>();
  const jailPath = (host: string): string | undefined => {
    if (host === root) return '/';
    return host.startsWith(root + '/') ? host.slice(root.length) : undefined;
  };
  for (let line of text.split('\n')) {
    const who = /^(\d+)\s/.exec(line)?.[1];
    if (who !== undefined && !inJail) host.add(who);
    const unfinished = /^(\d+)\s+(.*) <unfinished \.\.\.>$/.exec(line);
    if (unfinished) { pending.set(unfinished[1]!, `${unfinished[1]}  ${unfinished[2]}`); continue; }
    const resumed = /^(\d+)\s+<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed) {
      const head = pending.get(resumed[1]!);
      pending.delete(resumed[1]!);
      if (head === undefined) continue;
      line = head + resumed[2];
    }
    const m = LINE.exec(line);
    if (!m) continue;
    const [, pid, call, args, ret, errno] = m as unknown as [string, string, string, string, string, string | undefined];
    if (call === 'chroot' && ret === '0') { inJail = true; host.delete(pid); continue; }
    if (!inJail || host.has(pid)) continue;
    const a = PATH_ARG.exec(args);
    if (!a) continue;
    const named = unescape(a[3]!);
    let dir = '/';
    if (a[2] !== undefined) dir = jailPath(unescape(a[2])) ?? '/';
    else if (a[1] === undefined || a[1] === 'AT_FDCWD') dir = cwd.get(pid) ?? '/';
    const p = path.posix.resolve(dir, named);
    if (call === 'chdir' && ret === '0') { cwd.set(pid, p); continue; }
    if (errno !== 'ENOENT' || !LOOKS.has(call) || named === '') continue;
    out.push({ path: p, syscall: call });
  }
  return out;
}

export interface Suggestion {
  /** The entry as a jailfile line: `copy('/etc/foo.conf')`. */
  entry: string;
  kind: 'copy' | 'elf' | 'dir';
  path: string;
}

/**
 * What to add for each miss: nothing for pseudo paths, loader probes, paths the jail has
 * (or declares) and paths the host lacks too; one entry per host file however many
 * names the program tried for it.
 */
export function suggest(misses: readonly Miss[], root: string, declared: ReadonlySet<string>): { suggestions: Suggestion[]; declaredMissing: string[]; withheld: string[] } {
  const jail = new RootPaths(root);
  const byReal = new Map<string, { names: string[]; exec: boolean }>();
  const declaredMissing = new Set<string>();
  for (const m of misses) {
    if (PSEUDO.some((d) => within(m.path, d)) || LOADER_PROBES.has(m.path)) continue;
    if (jail.lookup(m.path).kind === 'found') continue;
    if (declared.has(m.path)) { declaredMissing.add(m.path); continue; }
    let realPath: string;
    try { realPath = fs.realpathSync(m.path); } catch { continue; }
    const have = byReal.get(realPath) ?? { names: [], exec: false };
    if (!have.names.includes(m.path)) have.names.push(m.path);
    have.exec ||= EXECS.has(m.syscall);
    byReal.set(realPath, have);
  }
  const suggestions: Suggestion[] = [];
  const withheld: string[] = [];
  for (const [realPath, { names, exec }] of byReal) {
    const name = names.includes(realPath) ? realPath : names[0]!;
    const st = fs.statSync(realPath, { throwIfNoEntry: false });
    if (!st) continue;
    let kind: Suggestion['kind'];
    if (st.isDirectory()) kind = 'dir';
    else if (!st.isFile()) continue;
    // What the program asks for is its own choice, and a program in a jail may have been
    // broken into: a host file that not everyone may read (shadow, a private key) is never
    // offered, least of all to --write, which a jailfile imports unread.
    else if ((st.mode & 0o004) === 0) { withheld.push(name); continue; }
    else {
      const elf = readElf(realPath);
      kind = (elf.ok && elf.value !== null) || (exec && (st.mode & 0o111) !== 0) ? 'elf' : 'copy';
    }
    const link = name !== realPath && fs.lstatSync(name).isSymbolicLink();
    const entry = kind === 'copy' && link ? `copy(${jsString(name)}, { follow: true })` : `${kind}(${jsString(name)})`;
    suggestions.push({ entry, kind, path: name });
  }
  suggestions.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { suggestions, declaredMissing: [...declaredMissing].sort(), withheld: withheld.sort() };
}

const MARK = 'Written by `jail trace`';
const ENTRY_LINE = /^\s*((copy|elf|dir)\(.*\)),\s*$/;

/**
 * The module --write produces, with the entries of an earlier one it wrote kept (a later
 * trace of a program that now runs finds nothing, and must not drop what made it run).
 */
export function moduleText(previous: string | undefined, add: readonly Suggestion[], command: readonly string[]): string {
  const lines: string[] = [];
  for (const l of (previous ?? '').split('\n')) {
    const m = ENTRY_LINE.exec(l);
    if (m && !lines.includes(m[1]!)) lines.push(m[1]!);
  }
  for (const s of add) if (!lines.includes(s.entry)) lines.push(s.entry);
  const names = ['copy', 'dir', 'elf'].filter((n) => lines.some((l) => l.startsWith(`${n}(`)));
  return [
    `// ${MARK}: what a traced program looked for in the jail and the host has.`,
    `// Last: jail trace -- ${command.join(' ').replace(/\n/g, ' ')}`,
    // No quoted module name in these comments: the loader reads import specifiers out of the code, comments included.
    '// Review the entries, then have the jailfile import this module (its default export)',
    '// and list it among its entries: defineJail(() => [ ..., traced ]).',
    '// A later --write keeps what is here and adds what it finds.',
    names.length ? `import { ${names.join(', ')} } from 'jail';` : '',
    '',
    'export default [',
    ...lines.map((l) => `  ${l},`),
    '];',
    '',
  ].join('\n');
}

function writeModule(file: string, add: readonly Suggestion[], command: readonly string[]): string | undefined {
  let previous: string | undefined;
  try { previous = fs.readFileSync(file, 'utf8'); } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `cannot read ${file} (${(err as NodeJS.ErrnoException).code})`;
  }
  const trivial = previous !== undefined && /^\s*(export\s+default\s*\[\s*\];?)?\s*$/.test(previous);
  if (previous !== undefined && !trivial && !previous.includes(MARK)) return `${file} exists and was not written by jail trace; name another file, or delete it first`;
  const text = moduleText(previous, add, command);
  if (text === previous) return undefined;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
  return undefined;
}

export function run(p: Parsed, io: Output): Promise<number> {
  return guarded(io, () => traceInJail(p, io));
}

async function traceInJail(p: Parsed, io: Output): Promise<number> {
  closeInheritedFds();
  const command = p.rest;
  if (command.length === 0) {
    io.err('jail trace: name the command to run in the jail after `--`, e.g. jail trace ROOT=/var/virtual/apache -- /usr/sbin/apache2 -X');
    return 2;
  }
  const t = p.options.get('--timeout');
  const timeoutS = t === undefined ? DEFAULT_TIMEOUT_S : Number(t);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > MAX_TIMEOUT_S) { io.err(`jail trace: --timeout needs a number of seconds, more than 0 and at most ${MAX_TIMEOUT_S} (about 24 days)`); return 2; }

  const a = await analyze(p.make, p.command, true);
  if (!a.root || a.stage === 'load') {
    for (const e of a.errors) io.err(`jail: error: ${e.message}`);
    return 2;
  }
  for (const e of a.errors) io.err(`jail: warning: ${e.message}`);
  const st = fs.statSync(a.root, { throwIfNoEntry: false });
  if (!st?.isDirectory()) { io.err(`jail trace: ROOT ${a.root} does not exist yet; build it first: jail make ROOT=${a.root}`); return 2; }
  const strace = hostProgram('strace');
  if (!strace) { io.err('jail trace: runs the program under the host\'s strace, which is not installed here (looked in /usr/sbin, /usr/bin, /sbin, /bin). Install it: apt-get install strace.'); return 2; }
  const j = prepare(a.root, runConfig(a.entries), userOption(p));

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jail-trace-'));
  try {
    const out = path.join(tmp, 'trace');
    const log = path.join(tmp, 'output');
    const fd = fs.openSync(log, 'w', 0o600);
    let res: Awaited<ReturnType<typeof runOnce>>;
    try {
      res = await runOnce(j, {
        cmd: command, stdio: ['ignore', fd, fd], timeoutMs: timeoutS * 1000,
        wrap: [j.tools.setpriv, '--pdeathsig=KILL', '--', strace, '-f', '-qq', '-y', '-s', '4096', '-e', 'trace=%file,chroot,chdir', '-e', 'signal=none', '-o', out, '--'],
      });
    } finally {
      fs.closeSync(fd);
    }
    if (res.interrupted) return res.code;
    const said = fs.readFileSync(log, 'utf8').trim();
    let text: string;
    try { text = fs.readFileSync(out, 'utf8'); } catch {
      io.err(`jail trace: strace wrote no trace${said ? `: ${said.split('\n').slice(-10).join('\n')}` : ''}`);
      return 2;
    }
    if (res.code !== 0 || res.timedOut) {
      const why = res.timedOut ? `was stopped after ${timeoutS}s (--timeout)` : `exited with status ${res.code}`;
      io.err(`jail: ${command[0]} ${why}${said ? `; its last words:\n${said.split('\n').slice(-10).map((l) => `  ${l}`).join('\n')}` : ''}`);
    }
    const declared = new Set(a.targets.map((x) => x.path));
    const { suggestions, declaredMissing, withheld } = suggest(parseTrace(text, j.root), j.root, declared);
    for (const d of declaredMissing) io.err(`jail: ${d} is declared but missing from ROOT: run jail make ROOT=${a.root}`);
    for (const w of withheld) io.err(`jail: not suggested: ${jsString(w)}, which the program looked for, is not readable by everyone on the host (a secret?); copy it by hand if the service truly needs it`);
    if (suggestions.length === 0) {
      io.err('jail: the program found everything it looked for that the host has');
      return 0;
    }
    const file = p.options.get('--write');
    if (typeof file === 'string') {
      const target = path.resolve(p.make.cwd ?? '.', file);
      const err = writeModule(target, suggestions, command);
      if (err) { io.err(`jail trace: ${err}`); return 2; }
      io.err(`jail: wrote ${suggestions.length} entr${suggestions.length === 1 ? 'y' : 'ies'} to ${target}, listed on stdout; have the jailfile import it and list it among its entries`);
      for (const s of suggestions) io.out(`${s.entry},`);
      return 0;
    }
    io.err(`jail: the program looked for ${suggestions.length} path${suggestions.length === 1 ? '' : 's'} the jail lacks and the host has; add to the jailfile:`);
    for (const s of suggestions) io.out(`${s.entry},`);
    return 1;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
