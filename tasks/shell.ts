// The one place that runs host programs (mknod, strace, ip, nsenter...): always from an
// argument array, with no shell in between, a program found in a fixed PATH, a clean
// environment, an empty stdin and a timeout. No shell, because a shell run as root reads
// start-up files of its own choosing (bash sources root's ~/.bashrc whenever its stdin is
// a socket, as node's pipes are, and BASH_ENV), which can run anything and change PATH.

import fs from 'node:fs';
import { constants as osConstants } from 'node:os';

export interface RunResult { ok: true; stdout: string; stderr: string }
export interface RunFailure { ok: false; error: string; stdout: string; stderr: string; exitCode: number | null }

const CLEAN_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C' };
const SEARCH = CLEAN_ENV.PATH.split(':');

/** A program's absolute path: as given when absolute, else the first executable file of that name in the fixed PATH (never the caller's). */
export function hostProgram(name: string): string | undefined {
  if (name.startsWith('/')) return name;
  if (!name || name.includes('/')) return undefined;
  for (const dir of SEARCH) {
    const p = `${dir}/${name}`;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch { /* next */ }
  }
  return undefined;
}

/**
 * A short host command run to completion: stdin empty (or `input`), stdout and stderr
 * collected, killed (SIGKILL) after the timeout. A failure's error names the program,
 * why it failed and its stderr.
 */
export async function run(argv: readonly string[], opts: { timeoutMs?: number; input?: string; env?: Record<string, string> } = {}): Promise<RunResult | RunFailure> {
  const { spawn } = await import('node:child_process');
  const prog = hostProgram(argv[0] ?? '');
  if (!prog) return { ok: false, error: `${argv[0]} failed (not found in ${CLEAN_ENV.PATH})`, stdout: '', stderr: '', exitCode: 127 };
  return new Promise((resolve) => {
    const child = spawn(prog, argv.slice(1), {
      env: opts.env ?? { ...CLEAN_ENV }, cwd: '/', stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 30_000, killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [], err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    if (opts.input) child.stdin!.end(opts.input);
    child.stdin?.on('error', () => { /* the program did not read its input */ });
    let spawnError: NodeJS.ErrnoException | undefined;
    child.once('error', (e) => { spawnError = e; });
    child.once('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8'), stderr = Buffer.concat(err).toString('utf8');
      if (code === 0 && !spawnError) return resolve({ ok: true, stdout, stderr });
      // A program that could not be started: the statuses a shell reports for it.
      if (spawnError) return resolve({ ok: false, error: `${argv[0]} failed (${spawnError.code ?? spawnError.message})`, stdout, stderr, exitCode: spawnError.code === 'ENOENT' ? 127 : 126 });
      const why = signal ? `killed by ${signal}` : `exit status ${code}`;
      resolve({ ok: false, error: `${argv[0]} failed (${why})${stderr.trim() ? `: ${stderr.trim()}` : ''}`, stdout, stderr, exitCode: code });
    });
  });
}

/** The environment host programs get when nothing else is said. */
export const HOST_ENV: Readonly<Record<string, string>> = CLEAN_ENV;

export interface SpawnOptions {
  /** What the child gets as fds 0, 1 and 2 (no more: the chains jail builds pass on only these). */
  stdio?: [StdioSlot, StdioSlot, StdioSlot];
  /** A new session (setsid) and process group: no controlling terminal, not in the caller's job. */
  detached?: boolean;
  /** The whole environment (default: a clean PATH and C locale). */
  env?: Record<string, string>;
  /** Working directory of the child (default `/`). */
  cwd?: string;
}
export type StdioSlot = 'inherit' | 'ignore' | 'pipe' | number;

/**
 * A host program started from an argument array with no shell in between, for the
 * long-lived processes `jail boot` and `jail run` start (the init of a jail's
 * namespaces, a jailed command with the caller's terminal). The caller owns the child.
 */
export async function spawnHost(argv: readonly string[], opts: SpawnOptions = {}): Promise<import('node:child_process').ChildProcess> {
  const { spawn } = await import('node:child_process');
  if (argv.length === 0 || !argv[0]!.startsWith('/')) throw new Error(`spawnHost needs an absolute program path, got ${JSON.stringify(argv[0])}`);
  return spawn(argv[0]!, argv.slice(1), {
    stdio: opts.stdio ?? ['ignore', 'inherit', 'inherit'],
    detached: opts.detached ?? false,
    env: opts.env ?? { ...CLEAN_ENV },
    cwd: opts.cwd ?? '/',
  });
}

/** How a spawned child ended: its exit status, or 128 + the signal that killed it (as shells report it). */
export function exitStatus(child: import('node:child_process').ChildProcess): Promise<{ code: number; signal?: NodeJS.Signals }> {
  return new Promise((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      if (signal) resolve({ code: 128 + (osSignals[signal] ?? 0), signal });
      else resolve({ code: code ?? 255 });
    };
    if (child.exitCode !== null || child.signalCode !== null) return done(child.exitCode, child.signalCode);
    child.once('exit', done);
    child.once('error', () => resolve({ code: 127 }));
  });
}

const osSignals = osConstants.signals as Record<string, number>;
