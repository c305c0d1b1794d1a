// The one place that runs host programs (mknod today; chroot and friends later), always
// as an argument array through zx's quoting, with a clean environment and a timeout.
// zx is loaded on first use, so a build that runs nothing does not pay for it.

import { constants as osConstants } from 'node:os';

export interface RunResult { ok: true; stdout: string; stderr: string }
export interface RunFailure { ok: false; error: string; stdout: string; stderr: string; exitCode: number | null }

const CLEAN_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C' };

export async function run(argv: readonly string[], opts: { timeoutMs?: number; input?: string; env?: Record<string, string> } = {}): Promise<RunResult | RunFailure> {
  const { $ } = await import('zx');
  // An empty stdin, never the caller's: bash reads ~/.bashrc when its stdin is a socket.
  const p = $({ quiet: true, nothrow: true, env: opts.env ?? CLEAN_ENV, timeout: opts.timeoutMs ?? 30_000, input: opts.input ?? '', verbose: false })`${argv}`;
  const out = await p;
  if (out.exitCode === 0) return { ok: true, stdout: out.stdout, stderr: out.stderr };
  const why = out.signal ? `killed by ${out.signal}` : `exit status ${out.exitCode}`;
  return { ok: false, error: `${argv[0]} failed (${why})${out.stderr.trim() ? `: ${out.stderr.trim()}` : ''}`, stdout: out.stdout, stderr: out.stderr, exitCode: out.exitCode };
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

/**
 * A short host command from an argument array, without a shell and without loading zx
 * (which costs a jail run a noticeable fraction of a second): clean environment, timeout,
 * the same result shape as run().
 */
export async function runFile(argv: readonly string[], opts: { timeoutMs?: number } = {}): Promise<RunResult | RunFailure> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { env: { ...CLEAN_ENV }, timeout: opts.timeoutMs ?? 30_000, killSignal: 'SIGKILL', cwd: '/', encoding: 'utf8', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve({ ok: true, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { code?: number | string; signal?: string; killed?: boolean };
      const why = e.signal ? `killed by ${e.signal}` : typeof e.code === 'number' ? `exit status ${e.code}` : String(e.code ?? e.message);
      resolve({ ok: false, error: `${argv[0]} failed (${why})${stderr.trim() ? `: ${stderr.trim()}` : ''}`, stdout, stderr, exitCode: typeof e.code === 'number' ? e.code : null });
    });
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
