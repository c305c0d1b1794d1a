#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
// The command line. Each command lives in tasks/commands/<name>.ts and is loaded only
// when used, so `jail --version` and a no-op make load nothing they do not need. Exit
// status: 0 done or up to date, 1 not up to date (-q) or findings, 2 error. The only
// place exceptions become exit codes.
//
// The #! line drops NODE_EXTRA_CA_CERTS: with it set, node reads and parses the whole CA
// bundle before the first line runs (80 ms on a small machine, more than a no-op make
// needs), and jail never opens a TLS connection nor hands its environment to the jail.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, UsageError, type Parsed } from './args.js';
import type { Output } from './progress.js';
import { stdio } from './stdio.js';

const USAGE = `usage: jail [make] ROOT=DIR [VAR=value ...] [options] [target ...]
       jail deps [--json] [--root DIR] ELF ...
       jail trace ROOT=DIR [-f FILE] [--user NAME] [--write FILE] [--timeout S] -- CMD [ARG ...]
       jail watch ROOT=DIR [-f FILE] [--guard] [--poll] [--debounce MS]
       jail check ROOT=DIR [-f FILE] [--json] [-q]    audit the jail: exit 0 clean, 1 findings, 2 error
       jail pack ROOT=DIR -o FILE.tar[.gz]         (then: jail make ROOT=DIR2 rebuild FROM=FILE.tar)
       jail boot ROOT=DIR [-f FILE] [--user NAME] [--timeout SEC]   start the rc.d services, confined
       jail stop ROOT=DIR [--timeout SEC]                          stop them; end everything in the jail
       jail status ROOT=DIR [--json]                               services and processes of the jail
       jail run ROOT=DIR [-f FILE] [--user NAME] -- CMD ARGS...     one command in the jail, confined
       jail --version

make options:
  -f FILE     the jailfile (default ./jailfile.ts)
  -C DIR      change to DIR first
  -n          print what would change, and why; write nothing
  -q          exit 0 if the jail is up to date, 1 if not; write nothing
  -B          rebuild every target
  -j N        write N files at once (default 4 when ROOT is on tmpfs or ramfs, else 1 as in make)
  -k          keep going past targets that fail
  --explain   print every reason and the jailfile entry behind each change
  --json      print one JSON report instead of lines

targets: all (default), clean, rebuild, dirs, links, devices, files, libs (what elf() brought for its
  programs: interpreters, libraries, their links, ld.so.cache), etc, or a jail path (/etc/passwd)`;

type Command = { run(p: Parsed, io: Output): Promise<number> };

/** Commands by name; each is imported on first use. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  make: () => import('./commands/make.js'),
  trace: () => import('./commands/trace.js'),
  watch: () => import('./commands/watch.js'),
  boot: () => import('./commands/boot.js'),
  stop: () => import('./commands/stop.js'),
  status: () => import('./commands/status.js'),
  run: () => import('./commands/run.js'),
  check: () => import('./commands/check.js'),
  pack: () => import('./commands/pack.js'),
};

function version(): string {
  const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

export async function main(argv: string[], io: Output = stdio): Promise<number> {
  const first = argv[0];
  if (first === 'deps') {
    const { runDeps } = await import('./commands/deps.js');
    return runDeps(argv.slice(1), io.out);
  }
  const named = first !== undefined && (first in COMMANDS || first === 'help' || first === 'version');
  let p: Parsed;
  const command = named ? first : 'make';
  try {
    p = parseArgs(command, named ? argv.slice(1) : argv);
  } catch (err) {
    // One paragraph: the whole usage text after it buried what was wrong.
    if (err instanceof UsageError) { io.err(`jail: error: ${err.message}; see \`jail ${command} --help\`.`); return 2; }
    throw err;
  }
  if (p.command === 'help') { io.out(USAGE); return 0; }
  if (p.command === 'version') { io.out(version()); return 0; }
  const load = COMMANDS[p.command];
  if (!load) { io.err(`jail: unknown command ${p.command}\n${USAGE}`); return 2; }
  return (await load()).run(p, io);
}

const invokedAs = process.argv[1] ? fs.realpathSync(process.argv[1]) : '';
if (invokedAs === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => { stdio.flush?.(); process.exitCode = code; },
    (err: unknown) => {
      stdio.flush?.();
      process.stderr.write(`jail: internal error (a bug in jail, please report it): ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
