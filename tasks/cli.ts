#!/usr/bin/env node
// The command line: make's conventions (VAR=value, bare words are targets, -f -C -n -q -B
// -j -k), mapped onto make() and the other commands. Exit status: 0 done or up to date,
// 1 not up to date (-q) or findings, 2 error. The only place exceptions become exit codes.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MakeOptions } from './make.js';
import { HumanLog, jsonReport, stdio } from './progress.js';
import type { JailError } from './result.js';

const USAGE = `usage: jail [make] ROOT=DIR [VAR=value ...] [options] [target ...]
       jail deps [--json] [--root DIR] ELF ...
       jail --version

make options:
  -f FILE     the jailfile (default ./jailfile.ts)
  -C DIR      change to DIR first
  -n          print what would change, and why; write nothing
  -q          exit 0 if the jail is up to date, 1 if not; write nothing
  -B          rebuild every target
  -j N        write N files at once (default 4)
  -k          keep going past targets that fail
  --explain   print every reason and the jailfile entry behind each change
  --json      print one JSON report instead of lines

targets: all (default), clean, dirs, links, devices, files, etc, or a jail path (/etc/passwd)`;

class UsageError extends Error {}

interface Parsed { command: string; make: MakeOptions; json: boolean; explain: boolean; rest: string[] }

const COMMANDS = new Set(['make', 'deps', 'help', 'version']);

export function parseArgs(argv: string[]): Parsed {
  const args = [...argv];
  let command = 'make';
  if (args[0] && COMMANDS.has(args[0])) command = args.shift()!;
  const make: MakeOptions = { vars: {}, targets: [] };
  const parsed: Parsed = { command, make, json: false, explain: false, rest: [] };
  if (command !== 'make') { parsed.rest = args; return parsed; }
  const value = (flag: string, inline: string): string => {
    const v = inline || args.shift();
    if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
    return v;
  };
  while (args.length) {
    const a = args.shift()!;
    if (a === '--json') parsed.json = true;
    else if (a === '--explain') parsed.explain = true;
    else if (a === '-h' || a === '--help') parsed.command = 'help';
    else if (a === '--version') parsed.command = 'version';
    else if (a === '--') { make.targets!.push(...args.splice(0)); }
    else if (/^-[fCj]/.test(a)) {
      const flag = a.slice(0, 2), inline = a.slice(2);
      if (flag === '-f') make.file = value('-f', inline);
      else if (flag === '-C') make.cwd = value('-C', inline);
      else {
        const n = Number(value('-j', inline));
        if (!Number.isInteger(n) || n < 1) throw new UsageError('-j needs a whole number of parallel jobs, 1 or more');
        make.jobs = n;
      }
    } else if (/^-[nqBk]+$/.test(a)) {
      for (const c of a.slice(1)) {
        if (c === 'n') make.dryRun = true;
        else if (c === 'q') make.question = true;
        else if (c === 'B') make.always = true;
        else if (c === 'k') make.keepGoing = true;
      }
    } else if (a.startsWith('-')) {
      throw new UsageError(`unknown option ${a}`);
    } else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) {
      const i = a.indexOf('=');
      make.vars[a.slice(0, i)] = a.slice(i + 1);
    } else {
      make.targets!.push(a);
    }
  }
  return parsed;
}

function version(): string {
  const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

async function runMake(p: Parsed): Promise<number> {
  const { make } = await import('./make.js');
  const quiet = Boolean(p.make.question);
  const log = new HumanLog(stdio, { explain: p.explain, progress: Boolean(process.stderr.isTTY) && !p.json, quiet });
  const shown = new Set<JailError>();
  const report = await make({
    ...p.make,
    onEvent: p.json ? undefined : (e) => {
      if (e.type === 'action' && e.error) shown.add(e.error);
      log.event(e);
    },
  });
  if (p.json) stdio.out(jsonReport(report));
  else log.summary(report, shown);
  if (report.errors.length) return 2;
  if (p.make.question && report.created.length + report.updated.length + report.removed.length > 0) return 1;
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let p: Parsed;
  try {
    p = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) { stdio.err(`jail: ${err.message}\n${USAGE}`); return 2; }
    throw err;
  }
  switch (p.command) {
    case 'help': stdio.out(USAGE); return 0;
    case 'version': stdio.out(version()); return 0;
    case 'deps': {
      const deps = './commands/deps.js';
      const { runDeps } = (await import(deps)) as { runDeps: (args: string[], out: (line: string) => void) => number };
      return runDeps(p.rest, stdio.out);
    }
    default: return runMake(p);
  }
}

const invokedAs = process.argv[1] ? fs.realpathSync(process.argv[1]) : '';
if (invokedAs === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => {
      process.stderr.write(`jail: internal error (a bug in jail, please report it): ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
