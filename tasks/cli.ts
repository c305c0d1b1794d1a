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
import { COMMAND_NAMES, help, overview, refused } from './usage.js';

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
    const opts = argv.includes('--') ? argv.slice(1, argv.indexOf('--')) : argv.slice(1);
    if (opts.some((a) => a === '-h' || a === '--help')) { io.out(help('deps')); return 0; }
    const { runDeps } = await import('./commands/deps.js');
    return runDeps(argv.slice(1), io.out);
  }
  const named = first !== undefined && (first in COMMANDS || first === 'help' || first === 'version');
  let p: Parsed;
  const command = named ? first : 'make';
  const usageError = (message: string, of = command): number => {
    // One paragraph: the whole usage text after it buried what was wrong.
    io.err(`jail: error: ${message}; see \`jail ${of === 'help' ? '' : `${of} `}--help\`.`);
    return 2;
  };
  try {
    p = parseArgs(command, named ? argv.slice(1) : argv);
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message);
    throw err;
  }
  if (p.command === 'help') {
    // `jail boot --help`, `jail help boot`: that command's; `jail --help`, `jail help`: all of them.
    const of = named && command !== 'help' ? command : p.make.targets.find((t) => COMMAND_NAMES.includes(t));
    io.out(of ? help(of) : overview());
    return 0;
  }
  if (p.command === 'version') { io.out(version()); return 0; }
  const load = COMMANDS[p.command];
  if (!load) { io.err(`jail: unknown command ${p.command}\n${overview()}`); return 2; }
  if (!named) {
    // `jail -C DIR pack ...`: a command word after an option is taken for a target.
    const word = p.make.targets.find((t) => t !== 'make' && COMMAND_NAMES.includes(t));
    if (word) {
      const rest = [...argv];
      rest.splice(argv.indexOf(word), 1);
      const { shellWord } = await import('./printable.js');
      return usageError(`${word} is a command, and the command comes first: \`${['jail', word, ...rest].map(shellWord).join(' ')}\``, word);
    }
  }
  const wrong = refused(p);
  if (wrong) return usageError(wrong);
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
