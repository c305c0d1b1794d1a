// Make's command-line conventions, shared by every command that works on a jail:
// VAR=value arguments are variables, bare words are targets, `--` ends the options
// (what follows is a command to run in the jail), and the flags mean what make's mean.

import type { MakeOptions } from './make.js';

export class UsageError extends Error {}

export interface Parsed {
  command: string;
  make: MakeOptions & { vars: Record<string, string>; targets: string[] };
  json: boolean;
  explain: boolean;
  /** Long options of a command: `--user www`, `--guard`, `-o FILE`. */
  options: Map<string, string | true>;
  /** Everything after `--`. */
  rest: string[];
}

/** Options that take a value, and options that are switches, beyond make's own. */
const VALUE_OPTIONS = new Set(['--user', '-o', '--root', '--write', '--debounce', '--timeout']);
const SWITCHES = new Set(['--guard', '--poll', '--force', '--all']);

export function parseArgs(command: string, argv: string[]): Parsed {
  const args = [...argv];
  const p: Parsed = { command, make: { vars: {}, targets: [] }, json: false, explain: false, options: new Map(), rest: [] };
  const value = (flag: string, inline: string): string => {
    const v = inline || args.shift();
    if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
    return v;
  };
  while (args.length) {
    const a = args.shift()!;
    if (a === '--') { p.rest = args.splice(0); break; }
    if (a === '--json') p.json = true;
    else if (a === '--explain') p.explain = true;
    else if (a === '-h' || a === '--help') p.command = 'help';
    else if (a === '--version') p.command = 'version';
    else if (VALUE_OPTIONS.has(a.split('=')[0]!)) {
      const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, ''];
      p.options.set(flag, value(flag, inline));
    } else if (SWITCHES.has(a)) p.options.set(a, true);
    else if (/^-[fCj]/.test(a)) {
      const flag = a.slice(0, 2), inline = a.slice(2);
      if (flag === '-f') p.make.file = value('-f', inline);
      else if (flag === '-C') p.make.cwd = value('-C', inline);
      else {
        const n = Number(value('-j', inline));
        if (!Number.isInteger(n) || n < 1) throw new UsageError('-j needs a whole number of parallel jobs, 1 or more');
        p.make.jobs = n;
      }
    } else if (/^-[nqBk]+$/.test(a)) {
      for (const c of a.slice(1)) {
        if (c === 'n') p.make.dryRun = true;
        else if (c === 'q') p.make.question = true;
        else if (c === 'B') p.make.always = true;
        else if (c === 'k') p.make.keepGoing = true;
      }
    } else if (a.startsWith('-')) {
      const flag = a.split('=')[0]!;
      if (a.includes('=') && (flag === '--json' || flag === '--explain' || SWITCHES.has(flag))) throw new UsageError(`${flag} takes no value (got ${a})`);
      throw new UsageError(`unknown option ${a}`);
    } else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) {
      const i = a.indexOf('=');
      p.make.vars[a.slice(0, i)] = a.slice(i + 1);
    } else {
      p.make.targets.push(a);
    }
  }
  return p;
}
