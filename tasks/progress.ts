// The human face of a build: one line per change with its reason, a summary line, and
// on a terminal a progress line that is redrawn in place and never left behind.

import type { MakeEvent, Report } from './make.js';
import type { JailError } from './result.js';
import { printable, printableCode } from './printable.js';

export interface Output {
  out(line: string): void;
  err(line: string): void;
  /** Writes out whatever is buffered (the CLI calls it before exiting). */
  flush?(): void;
}

const VERB = { create: ['create', 'would create'], update: ['update', 'would update'], remove: ['remove', 'would remove'] } as const;

export class HumanLog {
  #total = 0;
  #done = 0;
  #drawn = false;
  #last = 0;

  /** `opts.progress` is read only once a build has enough actions to draw: it may be a getter that asks process.stderr (see commands/make.ts). */
  constructor(private readonly io: Output, private readonly opts: { explain: boolean; progress: boolean; quiet: boolean }) {}

  #clear(): void {
    if (this.#drawn) { this.io.flush?.(); process.stderr.write('\r\x1b[K'); this.#drawn = false; }
  }

  #draw(path: string): void {
    const now = Date.now();
    if (this.#total < 20 || now - this.#last < 100 || !this.opts.progress) return;
    this.#last = now;
    this.io.flush?.();
    const cols = process.stderr.columns ?? 80;
    const line = `[${this.#done}/${this.#total}] ${path}`;
    process.stderr.write('\r\x1b[K' + line.slice(0, cols - 1));
    this.#drawn = true;
  }

  event(e: MakeEvent): void {
    switch (e.type) {
      case 'start': this.#total = e.total; this.#done = 0; return;
      case 'waiting': this.#clear(); this.io.err(`jail: waiting for another build of this ROOT (pid ${e.pid}) to finish`); return;
      case 'install':
        if (this.opts.quiet) return;
        this.#clear();
        if (e.status === 'running') this.io.out(`install ${e.name}: running the step inside the jail (no layer for its inputs yet)`);
        else if (e.status === 'ran') this.io.out(`install ${e.name}: captured ${e.captured} path${e.captured === 1 ? '' : 's'} as its layer`);
        else this.io.out(`install ${e.name}: would run (no layer for its inputs yet)`);
        return;
      case 'warning': this.#clear(); this.io.err(`jail: warning: ${e.message}`); return;
      case 'action': {
        this.#done++;
        if (this.opts.quiet) return;
        this.#clear();
        const a = e.action;
        if (e.error) { this.io.err(`jail: error: ${e.error.message}`); return; }
        const verb = VERB[a.op][e.dryRun ? 1 : 0];
        const why = this.opts.explain ? a.reasons.join('; ') : a.reasons[0];
        const at = this.opts.explain && a.target ? ` [${a.target.at} ${a.target.label}]` : '';
        // A path from a pack, or a service's file in it, may hold anything a name can.
        const shown = printable(a.path);
        this.io.out(`${verb} ${shown} (${a.kind}): ${printableCode(`${why}${at}`)}`);
        this.#draw(shown);
        return;
      }
    }
  }

  summary(r: Report, errorsShown: Set<JailError>): void {
    this.#clear();
    for (const e of r.errors) if (!errorsShown.has(e)) this.io.err(`jail: error: ${e.message}`);
    if (this.opts.quiet) return;
    const secs = r.seconds < 10 ? r.seconds.toFixed(2) : r.seconds.toFixed(1);
    const would = r.dryRun ? 'would be ' : '';
    // A step's files are its own count: made by the step, not created, updated or found up to date by the build.
    const captured = r.installs.reduce((n, i) => n + (i.captured ?? 0), 0);
    this.io.out(`jail: ${r.created.length} ${would}created, ${r.updated.length} ${would}updated, ${r.removed.length} ${would}removed, ${r.upToDate} up to date` +
      `${captured ? `, ${captured} captured by install steps` : ''} in ${secs}s` +
      (r.errors.length ? `, ${r.errors.length} error${r.errors.length > 1 ? 's' : ''}` : ''));
  }
}

/** With `explain`, each action also names its entry's jailfile line (`at`), as --explain's lines do. */
export function jsonReport(r: Report, opts: { explain?: boolean } = {}): string {
  const strip = ({ path, kind, reason, at }: { path: string; kind: string; reason: string; at?: string }) =>
    (opts.explain && at !== undefined ? { path, kind, reason, at } : { path, kind, reason });
  return JSON.stringify({
    created: r.created.map(strip), updated: r.updated.map(strip), removed: r.removed.map(strip),
    upToDate: r.upToDate, installs: r.installs, errors: r.errors, warnings: r.warnings, dryRun: r.dryRun, seconds: r.seconds,
  }, null, 2);
}
