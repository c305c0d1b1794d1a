// `jail watch ROOT=... [-f FILE] [--guard] [--poll] [--debounce MS]`: build, then rebuild
// on every change of the jailfile, its modules and the host files it copies, printing only
// what changed. Ctrl-C (or SIGTERM) finishes a build in progress and exits 0. --debounce
// is the quiet time after a change before building (default 150 ms, at least 60 ms).

import type { Parsed } from '../args.js';
import type { Output } from '../progress.js';
import { DEFAULT_DEBOUNCE_MS, JailWatch } from '../watch/loop.js';
import { guarded, rootOnly } from '../run/cli.js';

/**
 * The debounce the options ask for, or what is wrong with them. Returned, not thrown as
 * args.ts's UsageError: importing args.ts here would move it out of the command line's own
 * module into a chunk that every command, `--version` too, then loads on its own.
 */
function debounceOf(p: Parsed): { ms: number } | { wrong: string } {
  if (p.make.targets.includes('clean')) return { wrong: 'watch builds; `clean` belongs to `jail make`' };
  const v = p.options.get('--debounce');
  if (v === undefined) return { ms: DEFAULT_DEBOUNCE_MS };
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < 0 || n > 60_000) return { wrong: '--debounce needs a whole number of milliseconds (0 to 60000)' };
  return { ms: n };
}

export async function run(p: Parsed, io: Output): Promise<number> {
  const d = debounceOf(p);
  if ('wrong' in d) { io.err(`jail watch: ${d.wrong}`); return 2; }
  // ROOT comes from the command line, and no edit of the jailfile can fix it: a bad one is
  // refused before anything is built or watched, in words that name this command.
  return guarded(io, () => { rootOnly(p); return watch(p, io, d.ms); });
}

async function watch(p: Parsed, io: Output, debounceMs: number): Promise<number> {

  const w = new JailWatch({
    make: p.make,
    io,
    guard: p.options.has('--guard'),
    poll: p.options.has('--poll'),
    debounceMs,
    explain: p.explain,
    progress: Boolean(process.stderr.isTTY),
  });

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      io.err(`jail: ${sig} again: leaving now; the next build finishes what this one did not`);
      process.exit(130);
    }
    if (w.state === 'running' || w.state === 'queued') io.err('jail: finishing the build in progress, then stopping');
    void w.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    w.start();
    await w.done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return w.fatal === undefined ? 0 : 2;
}
