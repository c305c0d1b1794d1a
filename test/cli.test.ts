// The command line as a user meets it: each command's own --help, and each command
// refusing, before it does anything, a flag or target it does not take (they all share
// make's parser, and a flag of make's given to `jail run` used to be parsed and ignored).

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, rig, type Rig } from './helpers.js';

const isRoot = process.getuid?.() === 0;

describe('each command\'s --help', () => {
  let r: Rig;
  beforeAll(() => { r = rig(); });
  afterAll(() => r.cleanup());

  const COMMANDS = ['make', 'watch', 'check', 'pack', 'boot', 'stop', 'status', 'run', 'trace', 'deps'];

  it('is its own: its usage line, what it does, its exit status and its options', () => {
    const helps = new Map<string, string>();
    for (const c of COMMANDS) {
      const res = r.jail(c, '--help');
      expect(res.code, c).toBe(0);
      expect(res.stderr, c).toBe('');
      expect(res.stdout, c).toMatch(new RegExp(`^usage: jail ${c === 'make' ? '\\[make\\]' : c} `));
      expect(res.stdout, c).toMatch(/Exit status: /);
      helps.set(c, res.stdout);
      // `jail help CMD` and `-h` say the same.
      expect(r.jail('help', c).stdout, c).toBe(res.stdout);
      expect(r.jail(c, '-h').stdout, c).toBe(res.stdout);
    }
    expect(new Set(helps.values()).size).toBe(COMMANDS.length);
    const usage = (c: string) => helps.get(c)!.split('\n')[0]!;
    // The commands that evaluate the jailfile take its variables, -f and -C; stop, status and deps read none.
    for (const c of ['make', 'watch', 'check', 'pack', 'boot', 'run', 'trace']) {
      expect(usage(c), c).toContain('ROOT=DIR [VAR=value ...] [-f FILE] [-C DIR]');
    }
    for (const c of ['stop', 'status', 'deps']) expect(usage(c), c).not.toMatch(/VAR=value|-f FILE/);
    expect(helps.get('make')).toMatch(/-j N .*default 4 when ROOT is on tmpfs or ramfs, else 1/);
    expect(helps.get('watch')).toMatch(/--guard .*repair changes made inside ROOT/);
    expect(helps.get('boot')).toMatch(/--timeout SEC how long each rc script's start may take \(default 60\)/);
    expect(helps.get('boot')).toMatch(/A jail recreated from a pack, with no jailfile at hand, boots with FROM=FILE\.tar/);
    expect(helps.get('status')).toMatch(/Exit status: 0 running, 1 not running \(or running in a tree rm -rf ROOT deleted\), 2 error\./);
    for (const c of ['status', 'stop']) expect(helps.get(c), c).toMatch(/ROOT=DIR +the jail, by any path to it, a symlink to it too/);
    expect(helps.get('trace')).toMatch(/Exit status: 0 it found everything \(or --write wrote the entries\), 1 entries to add, 2 error\./);
    // A `--help` meant for the jailed command is the command's.
    expect(r.jail('run', '--', '/bin/true', '--help').stdout).not.toMatch(/^usage:/);

    // `jail --help`: every command's usage line.
    const all = r.jail('--help');
    expect(all.code).toBe(0);
    for (const c of COMMANDS) expect(all.stdout, c).toContain(usage(c).replace(/^usage: /, ''));
    expect(all.stdout).toContain('`jail COMMAND --help` for a command\'s own options.');
  });
});

describe.skipIf(!isRoot)('a flag or target a command does not take', () => {
  let r: Rig;
  beforeAll(() => {
    r = rig();
    r.jailfile(`import { defineJail, dir, elf, text, users } from 'jail';
export default defineJail(() => [
  dir(['/etc', '/usr/bin']),
  dir('/tmp', { mode: 0o1777 }),
  users({ app: { uid: 4343, gid: 4343, home: '/tmp' } }),
  elf('/usr/bin/touch'),
  text('/etc/motd', 'hello\\n'),
]);
`);
    const made = r.jail('make', `ROOT=${r.root}`);
    expect(made.code, made.stderr).toBe(0);
  });
  afterAll(() => r.cleanup());

  it('is refused with exit status 2 and one paragraph naming the command and what it does not take; nothing is done', () => {
    const touch = ['--', '/usr/bin/touch', '/tmp/ran'];
    const cases: [string[], string][] = [
      [['stop', '-n'], 'jail stop does not take -n (jail make\'s)'],
      [['status', '-q'], 'jail status does not take -q (jail make\'s, jail check\'s)'],
      [['status', '--', 'ls'], 'jail status does not take a command after -- (ls)'],
      [['boot', 'clean'], 'jail boot does not take the target clean'],
      [['boot', '-n', '--json'], 'jail boot does not take -n (jail make\'s) and --json (jail make\'s, jail check\'s, jail status\'s)'],
      [['run', '-n', ...touch], 'jail run does not take -n (jail make\'s)'],
      [['run', '-B', 'all', ...touch], 'jail run does not take -B (jail make\'s, jail watch\'s) and the target all'],
      [['trace', '-n', ...touch], 'jail trace does not take -n (jail make\'s)'],
      [['check', '-n'], 'jail check does not take -n (jail make\'s)'],
      [['check', '--explain', '-k'], 'jail check does not take -k (jail make\'s, jail watch\'s) and --explain (jail make\'s, jail watch\'s)'],
      [['watch', '-n'], 'jail watch does not take -n (jail make\'s)'],
      [['watch', '--json'], 'jail watch does not take --json (jail make\'s, jail check\'s, jail status\'s)'],
      [['make', '--guard', '--user', 'x', '-o', 'y', '--force'], 'jail make does not take --guard (jail watch\'s), --user (jail boot\'s, jail run\'s, jail trace\'s), -o (jail pack\'s) and --force'],
      [['make', '--timeout', '5', ...touch], 'jail make does not take --timeout (jail boot\'s, jail stop\'s, jail trace\'s) and a command after -- (/usr/bin/touch)'],
    ];
    const before = fingerprint(r.root);
    for (const [args, said] of cases) {
      const [c, ...rest] = args;
      const res = r.jail(c!, `ROOT=${r.root}`, ...rest);
      const line = args.join(' ');
      expect(res.code, line).toBe(2);
      expect(res.stdout, line).toBe('');
      expect(res.stderr, line).toMatch(/^jail: error: [^\n]*\n$/);
      expect(res.stderr, line).toContain(`jail: error: ${said}, and did nothing: its usage is \`jail `);
      expect(res.stderr, line).toMatch(new RegExp(`; see \`jail ${c} --help\`\\.\\n$`));
    }
    expect(fingerprint(r.root)).toEqual(before);
    expect(fs.readdirSync('/run/jail').filter((d) => d.includes(path.basename(path.dirname(r.root))))).toEqual([]);

    // What they do take still works: the same run without -n runs.
    const run = r.jail('run', `ROOT=${r.root}`, ...touch);
    expect(run.code, run.stderr).toBe(0);
    expect(fs.statSync(path.join(r.root, 'tmp/ran')).uid).toBe(4343);
    // stop and status take boot's -f, -C and variables, so one command line serves them all.
    expect(r.jail('status', `ROOT=${r.root}`, '-f', path.join(r.dir, 'jailfile.ts'), 'PORT=80').code).toBe(1);
  });

  it('a command word after an option is not a target: the error gives the command line with the command first', () => {
    const out = path.join(r.outside, 'x.tar');
    const res = r.jail('-C', r.dir, 'pack', `ROOT=${r.root}`, '-o', out);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(`jail: error: pack is a command, and the command comes first: \`jail pack -C ${r.dir} ROOT=${r.root} -o ${out}\`; see \`jail pack --help\`.\n`);
    expect(fs.existsSync(out)).toBe(false);
    // That command line works.
    const fixed = r.jail('pack', '-C', r.dir, `ROOT=${r.root}`, '-o', out);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fs.existsSync(out)).toBe(true);
  });
});
