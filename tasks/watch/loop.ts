// `jail watch`: build, watch every input of the jail, and on a change build again,
// printing only what changed and why. The loop is WatchMachine (machine.ts) driven by
// chokidar events (watcher.ts) filtered by the jail's inputs (inputs.ts); a "build" is
// one in-process make() followed by a fresh look at what the jailfile now needs, and the
// watchers made anew when that moved.
//
// Our own writes into ROOT never trigger a build: ROOT is not an input, so the input
// watcher ignores it. With --guard, ROOT is watched too (through its parent, so `rm -rf
// ROOT` is seen). Events from ROOT that arrive while a build runs are not acted on
// (they are mostly the build's own writes); instead, after any build that wrote into
// ROOT, the guard watcher is made anew, and one check build follows. make is idempotent
// and a build with nothing to do writes nothing, so the check ends the cycle: it repairs
// whatever was tampered with in between, and is silent when there was nothing.
//
// Whenever a watcher is (re)made, changes made while it was not yet watching could be
// missed, so a check build follows that too. Check builds print only what they change.

import fs from 'node:fs';
import path from 'node:path';
import { analyze, make, type Analysis, type MakeOptions, type Report } from '../make.js';
import { stateDir } from '../manifest.js';
import { HumanLog, type Output } from '../progress.js';
import type { JailError } from '../result.js';
import { GuardInputs, WatchInputs, mergeSpecs, specOf, type InputSpec } from './inputs.js';
import { WatchMachine, type StateName } from './machine.js';
import { DirWatcher } from './watcher.js';

export const DEFAULT_DEBOUNCE_MS = 150;
/**
 * chokidar reports a file's `change` at most once per 50 ms and drops (does not delay) the
 * ones in between. A build that starts at least that long after the last reported event
 * still sees the dropped change; a shorter debounce could build just before it and never
 * hear of it again. So the debounce never goes below this.
 */
export const MIN_DEBOUNCE_MS = 60;
/** Check builds in a row that may each change ROOT before watch stops asking for more. */
const MAX_CHECK_STREAK = 3;
export const DEFAULT_POLL_MS = 100;
/** The least wait before the check build that follows a change-driven build when polling. */
const POLL_CHECK_MIN_MS = 500;
/** JAIL_WATCH_DEBUG=1 prints every transition of the loop, with a timestamp, on stderr. */
const DEBUG = Boolean(process.env.JAIL_WATCH_DEBUG);

export interface WatchOptions {
  /** What every build is: the jailfile, the variables (ROOT), targets, -j, -k, -B. */
  make: MakeOptions;
  io: Output;
  /** Watch ROOT too and repair what is changed there. */
  guard?: boolean;
  /** Poll instead of inotify (network filesystems, or when inotify watches run out). */
  poll?: boolean;
  /** Polling interval, ms. */
  interval?: number;
  /** Quiet time after the last change before a build, ms. */
  debounceMs?: number;
  explain?: boolean;
  /** A progress line on stderr (a terminal). */
  progress?: boolean;
}

/** The changes that led to the next build. */
interface Batch {
  /** Input paths that changed. */
  inputs: Set<string>;
  /** Paths in a glob's directory: globby decides whether they matter when the timer runs out. */
  maybe: Set<string>;
  /** Paths in ROOT that changed (--guard). */
  guard: Set<string>;
  /** Why a check build was asked for (a watcher made anew, a build that wrote into ROOT). */
  check: string[];
}

const emptyBatch = (): Batch => ({ inputs: new Set(), maybe: new Set(), guard: new Set(), check: [] });
const EMPTY_SPEC: InputSpec = { exact: [], trees: [], globs: [] };

function inode(p: string): string {
  const st = fs.lstatSync(p, { bigint: true, throwIfNoEntry: false });
  return st ? `${st.dev}:${st.ino}` : '-';
}

function real(p: string): string {
  try { return fs.realpathSync(p); } catch { return p; }
}

export class JailWatch {
  readonly #opts: WatchOptions;
  readonly #io: Output;
  readonly #machine: WatchMachine;
  readonly #log: HumanLog;
  #pending = emptyBatch();
  #timer: NodeJS.Timeout | undefined;
  /** Polling only: the check build that follows a change-driven build (see #run). */
  #pollCheck: NodeJS.Timeout | undefined;
  #polling: boolean;
  #forceRecreate = false;

  /** The last jailfile that loaded and expanded: kept while the jailfile is broken. */
  #goodSpec: InputSpec | undefined;
  #goodTargets: { path: string }[] | undefined;
  #inputs: WatchInputs | undefined;
  #inputW: DirWatcher | undefined;
  #guard: GuardInputs | undefined;
  #guardW: DirWatcher | undefined;
  #rootIno = '';
  /** ROOT changed while a build ran: look once more when it is over. */
  #rootDirty = false;
  #announced = false;
  #lastErrors = '';
  #fatal: unknown;

  #builds = 0;
  #lastReport: Report | undefined;
  #running: Promise<void> | undefined;
  #stopped!: () => void;
  /** Resolves when the loop has stopped (after stop(), once a running build is finished). */
  readonly done: Promise<void>;

  constructor(opts: WatchOptions) {
    this.#opts = opts;
    this.#io = opts.io;
    this.#polling = Boolean(opts.poll);
    this.#log = new HumanLog(opts.io, { explain: Boolean(opts.explain), progress: Boolean(opts.progress), quiet: false });
    this.done = new Promise((resolve) => { this.#stopped = resolve; });
    this.#machine = new WatchMachine(Math.max(MIN_DEBOUNCE_MS, opts.debounceMs ?? DEFAULT_DEBOUNCE_MS), {
      arm: (ms) => {
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => this.#fire('timer'), ms);
      },
      disarm: () => clearTimeout(this.#timer),
      relevant: () => this.#relevant(),
      build: () => this.#build(),
      stopped: () => { void this.#close(); },
    });
  }

  /** The first build; watching starts as soon as it is done. */
  start(): void {
    this.#machine.startWithBuild();
  }

  /** Ends the loop: a build in progress is finished first. Resolves when stopped. */
  stop(): Promise<void> {
    this.#fire('stop');
    return this.done;
  }

  get state(): StateName {
    return this.#machine.state;
  }

  /** How many builds have run (check builds included). */
  get builds(): number {
    return this.#builds;
  }

  get lastReport(): Report | undefined {
    return this.#lastReport;
  }

  /** A bug (an impossible transition, an exception in the loop): the command exits 2 with it. */
  get fatal(): unknown {
    return this.#fatal;
  }

  /** Resolves when no build runs or is due (tests drive the loop with it). */
  async settled(): Promise<void> {
    for (;;) {
      const s = this.#machine.state;
      if (s === 'idle' || s === 'stopped') return;
      if (this.#running) await this.#running;
      else await new Promise((r) => setTimeout(r, 10));
    }
  }

  #fire(event: 'change' | 'timer' | 'done' | 'stop'): void {
    try {
      const from = this.#machine.state;
      this.#machine.fire(event);
      if (DEBUG) this.#io.err(`jail: debug: ${(performance.now() / 1000).toFixed(3)} ${from} --${event}--> ${this.#machine.state}`);
    } catch (err) {
      this.#die(err);
    }
  }

  #die(err: unknown): void {
    if (this.#fatal === undefined) this.#fatal = err;
    this.#io.err(`jail: internal error (a bug in jail, please report it): ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    void this.#close();
  }

  // ---- events -------------------------------------------------------------------------

  #onInput(p: string, attrib: boolean): void {
    const r = this.#inputs?.classify(p, attrib) ?? 'no';
    if (DEBUG) this.#io.err(`jail: debug: ${(performance.now() / 1000).toFixed(3)} input ${r} ${p}`);
    if (r === 'no') return;
    (r === 'yes' ? this.#pending.inputs : this.#pending.maybe).add(p);
    this.#fire('change');
  }

  #onGuard(p: string, attrib: boolean): void {
    if (!this.#guard || this.#guard.classify(p, attrib) === 'no') return;
    const s = this.#machine.state;
    if (s === 'stopped') return;
    if (s === 'running' || s === 'queued' || s === 'stopping') { this.#rootDirty = true; return; }
    this.#pending.guard.add(p);
    this.#fire('change');
  }

  #onError(err: NodeJS.ErrnoException): void {
    const code = err.code;
    if (code === 'ENOSPC' || code === 'EMFILE') {
      if (this.#polling) return;
      this.#polling = true;
      this.#forceRecreate = true;
      this.#io.err(code === 'ENOSPC'
        ? 'jail: warning: the kernel has no inotify watches left (ENOSPC). Raise the limit with `sysctl fs.inotify.max_user_watches=524288` ' +
          '(and a line in /etc/sysctl.d/ to keep it); until then jail watches by polling, which costs more CPU and notices changes later.'
        : 'jail: warning: too many open files for inotify (EMFILE); raise `ulimit -n` or `sysctl fs.inotify.max_user_instances`. Watching by polling instead.');
      this.#requestCheck('polling');
      return;
    }
    this.#io.err(`jail: warning: watching: ${err.message ?? String(err)}`);
  }

  #requestCheck(why: string): void {
    this.#pending.check.push(why);
    this.#fire('change');
  }

  #relevant(): boolean {
    const b = this.#pending;
    if (b.inputs.size || b.guard.size || b.check.length) return true;
    const hit = b.maybe.size ? this.#inputs?.confirm(b.maybe) : undefined;
    if (hit) { b.inputs.add(hit); return true; }
    this.#pending = emptyBatch();
    return false;
  }

  // ---- one build ----------------------------------------------------------------------

  #build(): void {
    const batch = this.#pending;
    this.#pending = emptyBatch();
    this.#rootDirty = false;
    this.#running = this.#run(batch)
      .catch((err: unknown) => this.#io.err(`jail: internal error during a build (a bug in jail, please report it): ${err instanceof Error ? err.stack ?? err.message : String(err)}`))
      .finally(() => {
        this.#running = undefined;
        this.#fire('done');
      });
  }

  async #run(batch: Batch): Promise<void> {
    const first = this.#builds === 0;
    // A build is worth a summary when a person caused it; check builds speak only of what they change.
    const visible = first || batch.inputs.size > 0;
    if (batch.inputs.size) {
      const [one] = batch.inputs;
      const more = batch.inputs.size > 1 ? ` and ${batch.inputs.size - 1} more` : '';
      this.#io.err(`jail: ${one} changed${more}; rebuilding`);
    } else if (batch.guard.size) {
      const [one] = batch.guard;
      const more = batch.guard.size > 1 ? ` and ${batch.guard.size - 1} more` : '';
      this.#io.err(`jail: ${one} changed in ROOT${more}; repairing`);
    }
    const shown = new Set<JailError>();
    const report = await make({
      ...this.#opts.make,
      // -B rebuilds everything once; on every build it would also write ROOT each time, and
      // with --guard each write asks for a check build that writes again.
      always: first && Boolean(this.#opts.make.always),
      onEvent: (e) => {
        if (e.type === 'warning' && !visible) return;
        if (e.type === 'action' && e.error) shown.add(e.error);
        this.#log.event(e);
      },
    });
    this.#log.end(); // a build without a summary leaves no progress line nor held lines behind
    this.#builds++;
    this.#lastReport = report;
    const wrote = report.created.length + report.updated.length + report.removed.length > 0;
    const errors = JSON.stringify(report.errors.map((e) => e.message));
    if (visible || wrote || (report.errors.length > 0 && errors !== this.#lastErrors)) this.#log.summary(report, shown);
    this.#lastErrors = errors;
    if (first && report.errors.some((e) => e.code === 'bad-root')) {
      // ROOT comes from the command line: no edit can fix it while we watch.
      this.#fatal = report.errors.find((e) => e.code === 'bad-root');
      this.#fire('stop');
      return;
    }
    if (this.#machine.state === 'stopping') return;
    // A check build that writes asks for another check (--guard). Something that rewrites
    // ROOT as fast as we repair it (or a bug) would make that a loop: after a few in a row,
    // wait for the next real change instead.
    const checkOnly = batch.inputs.size === 0 && batch.guard.size === 0 && !first;
    this.#checkStreak = checkOnly && wrote ? this.#checkStreak + 1 : 0;
    if (this.#checkStreak === MAX_CHECK_STREAK) {
      this.#io.err(`jail: warning: the last ${MAX_CHECK_STREAK} check builds each had to change ROOT again: something keeps rewriting it. Not checking again until the next change.`);
    }
    await this.#reconcile(wrote, this.#checkStreak < MAX_CHECK_STREAK, report.analysis);
    // chokidar's poller can lose a write that lands just after a build (seen under load: the
    // file changed, no event ever came). When polling, a build caused by a change is followed,
    // a few polls later, by one check build, which finds any such write by its stamp. A check
    // build schedules none, so an idle watch stays idle.
    if (this.#polling && batch.inputs.size > 0) {
      clearTimeout(this.#pollCheck);
      this.#pollCheck = setTimeout(() => {
        if (this.#machine.state !== 'stopping' && this.#machine.state !== 'stopped') this.#requestCheck('a poll may have missed a write');
      }, Math.max(POLL_CHECK_MIN_MS, 5 * this.#interval));
    }
  }

  #checkStreak = 0;

  /** A fresh look at what the jailfile needs, and the watchers made anew when that moved. */
  async #reconcile(wrote: boolean, mayCheckRoot: boolean, built?: Analysis): Promise<void> {
    // The build's own analysis, when it got that far: loading and expanding twice per rebuild doubled its cost.
    const a = built ?? await analyze(this.#opts.make);
    let spec: InputSpec;
    if (a.ok) {
      spec = specOf(a);
      this.#goodSpec = spec;
      this.#goodTargets = a.targets;
    } else if (a.stage === 'expand') {
      // Entries are known, some sources are not (yet): watch for them, and for what the last good jail needed.
      spec = mergeSpecs(specOf(a), this.#goodSpec ?? EMPTY_SPEC);
    } else {
      spec = mergeSpecs(this.#goodSpec ?? EMPTY_SPEC, { exact: [a.file, ...a.modules], trees: [], globs: [] });
    }
    const root = a.root ? real(a.root) : '';
    const excluded = [root, real(stateDir(a.installDir))].filter(Boolean);
    const inputs = new WatchInputs(spec, excluded);
    const remakeInputs = this.#forceRecreate || !this.#inputW || inputs.signature !== this.#inputs?.signature;
    const remakeGuard = Boolean(this.#opts.guard && root) && (this.#forceRecreate || !this.#guardW || wrote || inode(root) !== this.#rootIno);
    this.#forceRecreate = false;
    this.#inputs = inputs;
    if (this.#opts.guard && root) this.#guard = new GuardInputs(root, this.#goodTargets ?? a.targets);

    if (remakeInputs) {
      await this.#inputW?.close();
      if (this.#machine.state === 'stopping') return;
      this.#inputW = this.#watcher(inputs.roots, (p, s) => this.#inputs?.ignored(p, s) ?? true, (p, attrib) => this.#onInput(p, attrib));
      await this.#inputW.ready;
    }
    if (remakeGuard && this.#guard) {
      await this.#guardW?.close();
      if (this.#machine.state === 'stopping') return;
      this.#rootIno = inode(root);
      this.#guardW = this.#watcher([this.#guard.parent], (p, s) => this.#guard?.ignored(p, s) ?? true, (p, attrib) => this.#onGuard(p, attrib));
      await this.#guardW.ready;
    }
    if (remakeInputs) this.#requestCheck('inputs watched anew');
    else if (mayCheckRoot && (remakeGuard || this.#rootDirty)) this.#requestCheck(remakeGuard ? 'ROOT watched anew' : 'ROOT changed during the build');

    if (!this.#announced || remakeInputs) {
      const dirs = inputs.roots.length;
      const line = `jail: watching ${inputs.size} input${inputs.size === 1 ? '' : 's'} beneath ${dirs} director${dirs === 1 ? 'y' : 'ies'}` +
        `${this.#guard ? `, and guarding ${root}` : ''}${this.#polling ? ` (polling every ${this.#interval} ms)` : ''}; Ctrl-C to stop`;
      if (!this.#announced || line !== this.#lastAnnounce) this.#io.err(line);
      this.#lastAnnounce = line;
      this.#announced = true;
    }
  }

  #lastAnnounce = '';

  get #interval(): number {
    return this.#opts.interval ?? DEFAULT_POLL_MS;
  }

  #watcher(roots: readonly string[], ignored: (p: string, s?: fs.Stats) => boolean, onEvent: (p: string, attrib: boolean) => void): DirWatcher {
    return new DirWatcher({
      roots,
      ignored,
      polling: this.#polling,
      interval: this.#interval,
      onEvent: (event, p) => onEvent(path.resolve(p), event === 'attrib'),
      onError: (err) => this.#onError(err),
    });
  }

  async #close(): Promise<void> {
    clearTimeout(this.#timer);
    clearTimeout(this.#pollCheck);
    const ws = [this.#inputW, this.#guardW];
    this.#inputW = this.#guardW = undefined;
    await Promise.all(ws.map((w) => w?.close()));
    this.#stopped();
  }
}
