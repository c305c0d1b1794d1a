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

/** Where the progress line is drawn: process.stderr, or a stand-in of a given width in tests. */
export interface ProgressTerminal {
  write(text: string): unknown;
  /** Its width; 0 or undefined when the terminal does not say (then 80 is assumed). */
  readonly columns?: number;
}

/** The least time between two redraws of the progress line, ms. */
export const PROGRESS_MS = 100;

/** The progress line, cut to fit a terminal `columns` wide (leaving its last column free, where a character would wrap). */
export function progressLine(done: number, total: number, path: string, columns: number | undefined): string {
  const cols = columns || 80;
  const line = `[${done}/${total}] ${path}`;
  return line.length < cols ? line : line.slice(0, Math.max(cols - 1, 1));
}

/**
 * On a terminal with enough actions, the progress line stays at the bottom, as ninja and
 * cargo keep theirs: action lines are held, and at most every PROGRESS_MS the line is
 * erased, the held lines written, and the line drawn again beneath them. (Erasing it for
 * each action and drawing it again only 100 ms later left it on screen for microseconds.)
 * Anything else printed first writes the held lines and erases the progress line.
 */
export class HumanLog {
  #total = 0;
  #done = 0;
  #drawn = false;
  #last = -Infinity;
  #path = '';
  #held: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #term: () => ProgressTerminal;
  readonly #now: () => number;

  /**
   * `opts.progress` is read only once a build has enough actions to draw: it may be a getter
   * that asks process.stderr (see commands/make.ts). `term` and `now` stand in for stderr and
   * the clock in tests.
   */
  constructor(private readonly io: Output, private readonly opts: { explain: boolean; progress: boolean; quiet: boolean },
    more: { term?: ProgressTerminal; now?: () => number } = {}) {
    this.#term = more.term ? () => more.term! : () => process.stderr;
    this.#now = more.now ?? Date.now;
  }

  get #active(): boolean {
    return this.#total >= 20 && this.opts.progress;
  }

  /** Writes the held action lines, and erases the progress line: what is printed next lands below them. */
  #clear(): void {
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = undefined; }
    if (this.#drawn) { this.io.flush?.(); this.#term().write('\r\x1b[K'); this.#drawn = false; }
    if (this.#held.length) { for (const l of this.#held) this.io.out(l); this.#held = []; }
  }

  /** Held lines out, and the progress line drawn again beneath them. */
  #paint(): void {
    this.#clear();
    this.io.flush?.();
    const term = this.#term();
    term.write(progressLine(this.#done, this.#total, this.#path, term.columns));
    this.#drawn = true;
    this.#last = this.#now();
  }

  /** An action line on a terminal: held until the next redraw, which is now or within PROGRESS_MS. */
  #hold(line: string): void {
    this.#held.push(line);
    const wait = this.#last + PROGRESS_MS - this.#now();
    if (wait <= 0) this.#paint();
    else this.#timer ??= setTimeout(() => { this.#timer = undefined; this.#paint(); }, wait).unref();
  }

  /** The build is over: nothing held, no progress line left behind (summary() does it too). */
  end(): void {
    this.#clear();
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
        const a = e.action;
        if (e.error) { this.#clear(); this.io.err(`jail: error: ${e.error.message}`); return; }
        const verb = VERB[a.op][e.dryRun ? 1 : 0];
        const why = this.opts.explain ? a.reasons.join('; ') : a.reasons[0];
        const at = this.opts.explain && a.target ? ` [${a.target.at} ${a.target.label}]` : '';
        // A path from a pack, or a service's file in it, may hold anything a name can.
        const shown = printable(a.path);
        const line = `${verb} ${shown} (${a.kind}): ${printableCode(`${why}${at}`)}`;
        this.#path = shown;
        if (this.#active) this.#hold(line);
        else { this.#clear(); this.io.out(line); }
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
