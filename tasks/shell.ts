// The one place that runs host programs (mknod today; chroot and friends later), always
// as an argument array through zx's quoting, with a clean environment and a timeout.
// zx is loaded on first use, so a build that runs nothing does not pay for it.

export interface RunResult { ok: true; stdout: string; stderr: string }
export interface RunFailure { ok: false; error: string; stdout: string; stderr: string; exitCode: number | null }

const CLEAN_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C' };

export async function run(argv: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult | RunFailure> {
  const { $ } = await import('zx');
  const p = $({ quiet: true, nothrow: true, env: CLEAN_ENV, timeout: opts.timeoutMs ?? 30_000, input: opts.input, verbose: false })`${argv}`;
  const out = await p;
  if (out.exitCode === 0) return { ok: true, stdout: out.stdout, stderr: out.stderr };
  const why = out.signal ? `killed by ${out.signal}` : `exit status ${out.exitCode}`;
  return { ok: false, error: `${argv[0]} failed (${why})${out.stderr.trim() ? `: ${out.stderr.trim()}` : ''}`, stdout: out.stdout, stderr: out.stderr, exitCode: out.exitCode };
}
