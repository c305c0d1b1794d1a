// Cleanup that must not be skipped when Ctrl-C, a kill or a lost terminal ends the process
// mid-way (a half-written pack, a pack's files copied out for a build): it runs, and the
// signal then takes its course, unless someone else listens for it and decides.

const FATAL = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Runs `cleanup` on a fatal signal until the returned function is called. */
export function onFatalSignal(cleanup: () => void): () => void {
  const handler = (sig: NodeJS.Signals) => {
    off();
    cleanup();
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  };
  const off = () => { for (const s of FATAL) process.off(s, handler); };
  for (const s of FATAL) process.on(s, handler);
  return off;
}
