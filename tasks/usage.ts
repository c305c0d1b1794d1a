// What each command takes: its --help text, and the flags and targets it refuses. Every
// command shares make's parser, so without this a flag of make's given to another command
// was parsed and then ignored, and the command went on for real (`jail stop -n` stopped
// the jail). Only the command line imports this module: it stays in cli.js's chunk.

import type { Parsed } from './args.js';

/** A flag or argument a command may take; `target` is a bare word, `--` a command to run. */
type Arg = '-f' | '-C' | '-n' | '-q' | '-B' | '-j' | '-k' | '--json' | '--explain' | '--user' | '-o' | '--root' | '--write'
  | '--debounce' | '--timeout' | '--guard' | '--poll' | '--force' | '--all' | 'target' | '--';

interface Spec {
  usage: string;
  /** What it does, and its exit status. */
  about: string;
  options?: string;
  takes: readonly Arg[];
  /** The command refuses what it does not take itself (pack). */
  own?: boolean;
}

const JAILFILE = `  ROOT=DIR    the jail (required); VAR=value sets any other variable of the jailfile
  -f FILE     the jailfile (default ./jailfile.ts)
  -C DIR      change to DIR first`;
const BUILT = 'Variables not given are those `jail make` recorded for ROOT.';

const MAKE_OPTIONS = `${JAILFILE}
  -n          print what would change, and why; write nothing
  -q          exit 0 if the jail is up to date, 1 if not; write nothing
  -B          rebuild every target
  -j N        write N files at once (default 4 when ROOT is on tmpfs or ramfs, else 1 as in make)
  -k          keep going past targets that fail
  --explain   print every reason and the jailfile entry behind each change
  --json      print one JSON report instead of lines`;

const TARGETS = `targets: all (default), clean, rebuild, dirs, links, devices, files, libs (what elf() brought for its
  programs: interpreters, libraries, their links, ld.so.cache), etc, or a jail path (/etc/passwd)`;

const SPECS: Record<string, Spec> = {
  make: {
    usage: 'jail [make] ROOT=DIR [VAR=value ...] [-f FILE] [-C DIR] [-n | -q] [-B] [-j N] [-k] [--explain] [--json] [target ...]',
    about: 'Build or update the jail. Exit status: 0 done or up to date, 1 not up to date (-q), 2 error.',
    options: `${MAKE_OPTIONS}\n${TARGETS}`,
    takes: ['-f', '-C', '-n', '-q', '-B', '-j', '-k', '--explain', '--json', 'target'],
  },
  watch: {
    usage: 'jail watch ROOT=DIR [VAR=value ...] [-f FILE] [-C DIR] [-B] [-j N] [-k] [--explain] [--guard] [--poll] [--debounce MS] [target ...]',
    about: 'Build, then rebuild on every change of the jailfile, its modules and its inputs, printing what changed; a jailfile that fails to load is reported and the watch goes on. Exit status: 0 once stopped (Ctrl-C finishes the build in progress first), 2 when it cannot watch (a bad ROOT).',
    options: `${JAILFILE}
  -B, -j N, -k, --explain   as for make (-B: the first build)
  --guard     also repair changes made inside ROOT as they happen
  --poll      watch by polling instead of inotify
  --debounce MS   quiet time after a change before building (default 150)
  target      what each build makes, as for make (not clean)`,
    takes: ['-f', '-C', '-B', '-j', '-k', '--explain', '--guard', '--poll', '--debounce', 'target'],
  },
  check: {
    usage: 'jail check ROOT=DIR [VAR=value ...] [-f FILE] [-C DIR] [--json] [-q]',
    about: `Audit the jail without running anything in it. ${BUILT} Exit status: 0 clean, 1 findings, 2 error.`,
    options: `${JAILFILE}
  --json      one JSON document: { "findings": [...], "vars": {...} }
  -q          print nothing; the exit status says`,
    // A target is refused by check itself, in its --json document too.
    takes: ['-f', '-C', '--json', '-q', 'target'],
  },
  pack: {
    usage: 'jail pack ROOT=DIR [VAR=value ...] [-f FILE] [-C DIR] -o FILE.tar[.gz]',
    about: `Write the built jail as one archive; \`jail make ROOT=DIR2 rebuild FROM=FILE.tar\` recreates it. ${BUILT} Exit status: 0 written, 2 error.`,
    options: `${JAILFILE}
  -o FILE     the archive to write (.tar, or .tar.gz / .tgz to compress)`,
    takes: ['-f', '-C', '-o'],
    own: true,
  },
  boot: {
    usage: 'jail boot ROOT=DIR [VAR=value ...] [-f FILE] [-C DIR] [--user NAME] [--timeout SEC]',
    about: `Start the jail's rc.d services, confined as the jailfile's runtime() says. ${BUILT} A jail recreated from a pack, with no jailfile at hand, boots with FROM=FILE.tar (and runtime()'s defaults). Exit status: 0 every service runs, 1 the jail is up but an rc script failed, 2 could not boot.`,
    options: `${JAILFILE}
  --user NAME   run the services as this account of the jail (default: runtime()'s user, else the first that is not root)
  --timeout SEC how long each rc script's start may take (default 60)`,
    takes: ['-f', '-C', '--user', '--timeout'],
  },
  stop: {
    usage: 'jail stop ROOT=DIR [--timeout SEC]',
    about: 'Run each rc script with stop, in reverse order, then end everything in the jail and take its confinement down. Needs no jailfile and trusts nothing in ROOT (it works after rm -rf ROOT). Exit status: 0 nothing of the jail runs, 2 something could not be ended.',
    options: `  ROOT=DIR      the jail, by any path to it, a symlink to it too (-f, -C and other variables are accepted, and unused)
  --timeout SEC how long each rc script's stop may take (default 30)`,
    takes: ['-f', '-C', '--timeout'],
  },
  status: {
    usage: 'jail status ROOT=DIR [--json]',
    about: 'Whether the jail runs, its confinement, its services and its processes. Needs no jailfile. Exit status: 0 running, 1 not running (or running in a tree rm -rf ROOT deleted), 2 error.',
    options: `  ROOT=DIR    the jail, by any path to it, a symlink to it too (-f, -C and other variables are accepted, and unused)
  --json      one JSON document`,
    takes: ['-f', '-C', '--json'],
  },
  run: {
    usage: 'jail run ROOT=DIR [VAR=value ...] [-f FILE] [-C DIR] [--user NAME] -- CMD [ARG ...]',
    about: `Run one command in the jail, confined as boot confines services, with this terminal's stdin, stdout and stderr. ${BUILT} Exit status: the command's (128+N when signal N ended it), 2 when it could not start.`,
    options: `${JAILFILE}
  --user NAME   run as this account of the jail (default: runtime()'s user, else the first that is not root)`,
    takes: ['-f', '-C', '--user', '--'],
  },
  trace: {
    usage: 'jail trace ROOT=DIR [VAR=value ...] [-f FILE] [-C DIR] [--user NAME] [--write FILE] [--timeout SEC] -- CMD [ARG ...]',
    about: `Run a command in the jail under the host's strace and print, as jailfile entries, what it looked for that the jail lacks and the host has. ${BUILT} Exit status: 0 it found everything (or --write wrote the entries), 1 entries to add, 2 error.`,
    options: `${JAILFILE}
  --user NAME     run as this account of the jail
  --write FILE    write the entries as a module the jailfile imports (kept and added to by later runs)
  --timeout SEC   stop the command after SEC seconds (default 60)`,
    takes: ['-f', '-C', '--user', '--write', '--timeout', '--'],
  },
  deps: {
    usage: 'jail deps [--json] [--root DIR] PATH ...',
    about: 'Print the shared libraries each program or library would load, as glibc\'s loader would, without running it. Exit status: 0 all found, 1 something missing, 2 error.',
    options: `  --json      one JSON document: { "<path>": { "interpreter", "needed", "libraries", "missing" } }
  --root DIR  resolve inside DIR, as its own loader would`,
    takes: [],
  },
};

/** `jail --help`: every command's usage, then make's options. */
export function overview(): string {
  const lines = Object.entries(SPECS).map(([name, s]) => `${name === 'make' ? 'usage: ' : '       '}${s.usage}`);
  return `${lines.join('\n')}\n       jail --version\n\nmake options:\n${SPECS.make!.options}\n\n\`jail COMMAND --help\` for a command's own options.`;
}

/** `jail CMD --help`. */
export function help(command: string): string {
  const s = SPECS[command]!;
  return `usage: ${s.usage}\n\n${s.about}\n${s.options ? `\noptions:\n${s.options}\n` : ''}`.replace(/\n$/, '');
}

/** The commands `jail CMD` names. */
export const COMMAND_NAMES: readonly string[] = Object.keys(SPECS);

/** What of the command line `command` does not take, as `-n`, `--guard`, `the target clean`: in the order given to the parser's fields. */
function given(p: Parsed): { arg: Arg; shown: string }[] {
  const m = p.make;
  const out: { arg: Arg; shown: string }[] = [];
  const add = (on: unknown, arg: Arg, shown: string = arg) => { if (on !== undefined && on !== false) out.push({ arg, shown }); };
  add(m.file, '-f'); add(m.cwd, '-C'); add(m.dryRun, '-n'); add(m.question, '-q'); add(m.always, '-B'); add(m.jobs, '-j'); add(m.keepGoing, '-k');
  add(p.json || undefined, '--json'); add(p.explain || undefined, '--explain');
  for (const k of p.options.keys()) add(true, k as Arg);
  for (const t of m.targets) add(true, 'target', `the target ${t}`);
  if (p.rest.length) add(true, '--', `a command after -- (${p.rest[0]})`);
  return out;
}

/** Commands that take each flag, for the hint: `--guard is jail watch's`. */
function takenBy(arg: Arg): string[] {
  return Object.entries(SPECS).filter(([, s]) => s.takes.includes(arg)).map(([n]) => `jail ${n}`);
}

/** One sentence naming what `p.command` does not take, or undefined when it takes all it was given. */
export function refused(p: Parsed): string | undefined {
  const s = SPECS[p.command];
  if (!s || s.own) return undefined;
  const wrong = given(p).filter((g) => !s.takes.includes(g.arg));
  if (!wrong.length) return undefined;
  const what = wrong.map((w) => {
    if (w.arg === 'target' || w.arg === '--') return w.shown;
    const others = takenBy(w.arg);
    return others.length ? `${w.shown} (${others.join('\'s, ')}'s)` : w.shown;
  });
  const list = what.length === 1 ? what[0]! : `${what.slice(0, -1).join(', ')} and ${what[what.length - 1]}`;
  return `jail ${p.command} does not take ${list}, and did nothing: its usage is \`${s.usage}\``;
}
