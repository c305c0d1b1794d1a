// `jail make`: load -> expand -> plan -> apply, and the report both the CLI and
// `import { make } from 'jail'` return. The only place the four steps meet.

import fs from 'node:fs';
import path from 'node:path';
import { loadJailfile } from './load.js';
import { canonicalPath, expand, flatten, throughLinks } from './expand.js';
import { prepareGlobs } from './glob.js';
import { ElfContext } from './expand-elf.js';
import { loadElfFacts, saveElfFacts } from './elf-facts-store.js';
import { plan as makePlan, type Action, type Plan } from './plan.js';
import { apply, recordingApplier, rootApplier } from './apply.js';
import { acquireLock, loadManifest, manifestPath, markBuilding, rootKey, sameVars, saveManifest, stateDir, varsToRecord } from './manifest.js';
import { packTargets } from './pack/targets.js';
import { checkRoot } from './root-path.js';
import { checkStateDir } from './state-dir.js';
import { tooLongErrors } from './path-limits.js';
import { printable } from './printable.js';
import { hostFileError, hostInputErrors, realHostPath } from './host-inputs.js';
import { claimRoot, otherOwner, releaseRoot } from './root-owner.js';
import { GROUPS, inGroup, stampHash, stampSize, type GroupName, type Target } from './targets.js';
import type { Staged } from './pack/read.js';
import type { Entry, InstallEntry } from './entries.js';
import type { Layer } from './install/layers.js';
import { JailFailure, jailError, type JailError } from './result.js';
import { runConfig, type RunConfig } from './run/config.js';
import { copyThreads, COPIES_PER_THREAD, defaultJobs } from './jobs.js';
import type { Stat } from './stat.js';

export interface MakeOptions {
  /** -f: the jailfile (default `jailfile.ts` in the working directory). */
  file?: string;
  /** -C: the directory to work from. */
  cwd?: string;
  /** VAR=value arguments; ROOT is required. */
  vars: Record<string, string>;
  /** Target words: `all` (default), `clean`, a group (`dirs links devices files etc`), or jail paths. */
  targets?: string[];
  /** -n: plan and report, write nothing. */
  dryRun?: boolean;
  /** -q: only say whether the jail is up to date: nothing is written, and the report lists what make would change (none: up to date). */
  question?: boolean;
  /** -B: rebuild every target. */
  always?: boolean;
  /** -j: how many files are written at once, a whole number 1 or more (default: 4 on tmpfs and ramfs, else 1; see jobs.ts). */
  jobs?: number;
  /** -k: build what can be built past failed targets. */
  keepGoing?: boolean;
  /** How long to wait for another build of the same ROOT (ms). */
  lockWaitMs?: number;
  /** Live events, for the CLI's lines and progress. */
  onEvent?: (e: MakeEvent) => void;
}

export type MakeEvent =
  | { type: 'action'; action: Action; dryRun: boolean; error?: JailError }
  | { type: 'start'; total: number }
  | { type: 'warning'; message: string }
  | { type: 'waiting'; pid: number }
  | { type: 'install'; name: string; status: 'running' | 'ran' | 'pending'; captured?: number };

/** `at`: the jailfile line of the entry behind the action (`jailfile.ts:12`); `entry` adds how the entry reads. */
export interface ActionReport { path: string; kind: string; reason: string; reasons: string[]; entry?: string; at?: string }

export interface Report {
  root?: string;
  /** Install steps: run now (their layer captured), or pending (-n, -q). */
  installs: { name: string; status: 'ran' | 'pending'; captured?: number }[];
  created: ActionReport[];
  updated: ActionReport[];
  removed: ActionReport[];
  upToDate: number;
  errors: JailError[];
  warnings: string[];
  /** True for -n and -q: nothing was written. */
  dryRun: boolean;
  /** What the build was made from (not in --json): later steps, such as the cheap checks, reuse it. */
  analysis?: Analysis;
  /** lstat of the targets, as this build found them right or made them (not in --json). */
  observed?: ReadonlyMap<string, Stat>;
  seconds: number;
}

function toReport(a: Action): ActionReport {
  return { path: a.path, kind: a.kind, reason: a.reasons.join('; '), reasons: a.reasons, entry: a.target ? `${a.target.at} ${a.target.label}` : undefined, at: a.target?.at };
}

type Selection = { clean: boolean; verify?: boolean; only?: (t: Target) => boolean };

function selection(words: string[], targets: readonly Target[]): Selection | JailError {
  if (words.length === 0 || (words.length === 1 && words[0] === 'all')) return { clean: false };
  if (words.includes('rebuild')) {
    if (words.length > 1) return jailError('bad-target', '`rebuild` restores the whole jail; give it alone, not with other targets.');
    return { clean: false, verify: true };
  }
  if (words.includes('clean')) {
    if (words.length > 1) return jailError('bad-target', '`clean` removes everything jail built in ROOT; give it alone, not with other targets.');
    return { clean: true };
  }
  const preds: ((t: Target) => boolean)[] = [];
  let links: Map<string, string> | undefined;
  for (const w of words) {
    if (w === 'all') { preds.push(() => true); continue; }
    if ((GROUPS as readonly string[]).includes(w)) { preds.push((t) => inGroup(t, w as GroupName)); continue; }
    if (w.startsWith('/')) {
      const p = w.length > 1 ? w.replace(/\/+$/, '') : w;
      // The path as the jail sees it: through the declared links (/lib -> usr/lib) to where
      // the files are built, each link on the way a target too.
      links ??= new Map(targets.flatMap((t) => (t.kind === 'symlink' ? [[t.path, t.target] as const] : [])));
      const chain = throughLinks(p, links) ?? [p];
      const real = chain[chain.length - 1]!;
      const via = new Set(chain.slice(0, -1));
      // `/` is the jail's root: everything lies beneath it.
      const within = real === '/' ? () => true : (t: Target) => t.path === real || t.path.startsWith(real + '/');
      const match = (t: Target) => via.has(t.path) || within(t);
      // The links on the way do not count on their own: /lib/nothing names nothing.
      const named = canonicalPath(p, links);
      if (!targets.some((t) => t.path === named || within(t))) {
        const seen = real === p ? '' : ` (${real} in the jail's declared links)`;
        return jailError('bad-target', `No target ${p}${seen}: the jailfile declares nothing at or beneath that jail path. Check the path (jail paths are as seen inside the jail, e.g. /etc/passwd).`, { path: p });
      }
      preds.push(match);
      continue;
    }
    return jailError('bad-target', `No target '${w}'. Targets are all, clean, rebuild, ${GROUPS.join(', ')}, or a jail path such as /etc/passwd.`);
  }
  return { clean: false, only: (t) => preds.some((f) => f(t)) };
}

export interface Analysis {
  /** False when something failed; `stage` says where (so -k can go on past expand errors). */
  ok: boolean;
  stage: 'root' | 'load' | 'expand' | 'done';
  file: string;
  /** The jailfile's directory: the manifest, caches and captured layers live here. */
  installDir: string;
  root: string;
  /** The variables the jailfile was evaluated with, ROOT included. */
  vars: Record<string, string>;
  /** Those of `vars` not given on the command line but taken from ROOT's build record (see analyze's `built`). */
  recorded: string[];
  /** ROOT's build record as analyze read it for those variables (`built` only): check and pack use it rather than parse it again. */
  record?: ReturnType<typeof loadManifest>;
  entries: Entry[];
  targets: Target[];
  /** Every .ts module of the jailfile, for watch mode. */
  modules: string[];
  /** Install steps with no layer captured for their inputs yet: make runs them after the build. */
  pendingInstalls: Layer[];
  /** What runs in the jail is held to (runtime(), checked with the jailfile): set once the jailfile is loaded and its runtime() is good. */
  runtime?: RunConfig;
  errors: JailError[];
  warnings: string[];
}

/**
 * Load and expand a jailfile for a ROOT: what make, check, watch and boot all start from
 * (`command` names the one run, for messages). `built`: the command reads the jail make
 * built (check, pack, boot, run, trace), so a variable not given is the one that build
 * recorded; make itself, as make does, takes a variable not given as the jailfile's default.
 */
export async function analyze(opts: Pick<MakeOptions, 'file' | 'cwd' | 'vars'>, command = 'make', built = false): Promise<Analysis> {
  const cwd = path.resolve(opts.cwd ?? '.');
  const file = path.resolve(cwd, opts.file ?? 'jailfile.ts');
  const installDir = path.dirname(file);
  const a: Analysis = { ok: false, stage: 'root', file, installDir, root: '', vars: opts.vars, recorded: [], entries: [], targets: [], modules: [], pendingInstalls: [], errors: [], warnings: [] };
  const rootCheck = checkRoot(opts.vars.ROOT, installDir, command);
  if (!rootCheck.ok) { a.errors.push(rootCheck.error); return a; }
  a.root = rootCheck.value;
  // Before anything in it is read: the records, the cached jailfile, the layers.
  const unsafe = checkStateDir(installDir, { chain: opts.vars.FROM !== undefined });
  if (unsafe) { a.errors.push(unsafe); return a; }
  // Host inputs are checked against where ROOT really is, whatever the spelling of either.
  const realRoot = realHostPath(a.root);
  a.record = built ? loadManifest(manifestPath(installDir, a.root), a.root) : undefined;
  const recorded = a.record?.manifest.vars ?? {};
  a.recorded = Object.keys(recorded).filter((k) => !Object.hasOwn(opts.vars, k));
  const vars = { ...recorded, ...opts.vars, ROOT: a.root };
  a.vars = vars;
  if (opts.vars.FROM !== undefined) {
    const from = path.resolve(cwd, opts.vars.FROM);
    const bad = hostFileError('The pack FROM=', from, realRoot, a.root);
    if (bad) { a.errors.push(bad); return a; }
    return analyzePack(a, from);
  }
  a.stage = 'load';
  const loaded = await loadJailfile(file, vars, realRoot);
  if (!loaded.ok) { a.errors.push(loaded.error); return a; }
  a.modules = loaded.value.modules;
  const flat = flatten(loaded.value.entries);
  await prepareGlobs(flat.flatMap((e) => (e.kind === 'copy' ? [e.source] : e.kind === 'elf' ? e.patterns : e.kind === 'install' ? e.inputs : [])));
  // Before any source is read; and fatal, -k or not (a ROOT that fails its check).
  a.errors.push(...hostInputErrors(flat, realRoot, a.root));
  // A bad runtime() is an error in the jailfile: refused here, as boot and run would, not first at boot.
  try { a.runtime = runConfig(flat); } catch (err) { if (err instanceof JailFailure) a.errors.push(...err.errors); else throw err; }
  if (a.errors.length) { a.stage = 'root'; return a; }
  a.stage = 'expand';
  const elf = new ElfContext(loadElfFacts(installDir), realRoot);
  const installs = flat.filter((e): e is InstallEntry => e.kind === 'install');
  // Packs, layers and install steps need tar; a jailfile without install() does not load it.
  const layers = installs.length ? await (await import('./install/layers.js')).prepareLayers(installs, installDir, a.errors) : [];
  a.pendingInstalls = layers.filter((l) => !l.pack);
  const exp = expand(loaded.value.entries, elf, layers, realRoot);
  if (elf.cache.parses > 0) saveElfFacts(installDir, elf.cache);
  a.entries = exp.entries;
  a.targets = exp.targets;
  a.warnings.push(...exp.warnings);
  a.errors.push(...exp.errors, ...tooLongErrors(a.root, exp.targets));
  if (a.errors.length) return a;
  a.stage = 'done';
  a.ok = true;
  return a;
}

/** `FROM=pack.tar`: the targets come from a pack instead of the jailfile, its files known by their hashes (copied out only by a build that writes them). */
async function analyzePack(a: Analysis, file: string): Promise<Analysis> {
  a.stage = 'load';
  a.file = file;
  const { scanPack } = await import('./pack/read.js');
  const { index, errors } = await scanPack(file);
  a.errors.push(...errors);
  if (!index) return a;
  a.stage = 'expand';
  a.targets = packTargets({ index }, file, a.errors);
  a.errors.push(...tooLongErrors(a.root, a.targets));
  if (a.errors.length) return a;
  a.stage = 'done';
  a.ok = true;
  return a;
}

/** The pack's files a plan writes, copied out of the pack (under the build lock); undefined when it writes none. */
async function stageFor(plan: Plan, file: string, installDir: string, root: string): Promise<Staged | JailError | undefined> {
  const want = new Map<string, { source: string; size: number; sha256: string }>();
  for (const a of plan.actions) {
    const t = a.target;
    if (a.op === 'remove' || t?.kind !== 'file' || t.linkTo) continue;
    const sha256 = stampHash(t.sourceStamp);
    if (sha256) want.set(t.path, { source: t.source, size: stampSize(t.sourceStamp), sha256 });
  }
  if (!want.size) return undefined;
  const { stagePack } = await import('./pack/read.js');
  return stagePack(file, want, stateDir(installDir), rootKey(root));
}

function holdsFiles(root: string): boolean {
  try { return fs.readdirSync(root).length > 0; } catch { return false; }
}

export async function make(opts: MakeOptions): Promise<Report> {
  return build(opts, true);
}

/** One report for a build and the build after its install steps: each path counted once, for what happened to it. */
function merged(first: Report, again: Report, captured: ReadonlySet<string>, seconds: number): Report {
  const acted = new Set([...again.created, ...again.updated, ...again.removed].map((a) => a.path));
  // The second build finds up to date what the first one made and what the steps captured: made now, not found so.
  const madeNow = new Set([...first.created, ...first.updated].map((a) => a.path).concat([...captured]));
  let already = again.upToDate;
  for (const p of madeNow) if (!acted.has(p)) already--;
  return {
    ...again,
    installs: [...first.installs, ...again.installs],
    created: [...first.created, ...again.created],
    updated: [...first.updated, ...again.updated],
    // A step's old files, removed as no longer declared before the step ran again (and made
    // them anew, counted as captured), are counted as removed: the lines said so, and -n too.
    removed: [...first.removed, ...again.removed],
    upToDate: Math.max(0, already),
    errors: [...first.errors, ...again.errors],
    warnings: [...first.warnings, ...again.warnings],
    seconds,
  };
}

/** `make`; without `steps`, pending install steps are left pending (the repair after a failed one). */
async function build(opts: MakeOptions, steps: boolean): Promise<Report> {
  const t0 = process.hrtime.bigint();
  const emit = opts.onEvent ?? (() => {});
  const dryRun = Boolean(opts.dryRun || opts.question);
  const report: Report = { installs: [], created: [], updated: [], removed: [], upToDate: 0, errors: [], warnings: [], dryRun, seconds: 0 };
  const done = (): Report => {
    report.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return report;
  };
  const warn = (message: string) => { report.warnings.push(message); emit({ type: 'warning', message }); };

  // The CLI refuses a bad -j as it parses it; the API's caller gets the same answer, not a silent 1.
  if (opts.jobs !== undefined && !(Number.isInteger(opts.jobs) && opts.jobs >= 1)) {
    report.errors.push(jailError('bad-jobs', `jobs: ${String(opts.jobs)} is not a number of files to write at once: give a whole number, 1 or more (-j N on the command line), or leave it out for the default (4 when ROOT is on tmpfs or ramfs, else 1). Nothing was touched.`));
    return done();
  }
  const jail = await analyze(opts);
  report.analysis = jail;
  jail.warnings.forEach(warn);
  if (jail.root) report.root = jail.root;
  report.errors.push(...jail.errors);
  if (!jail.ok && !(opts.keepGoing && jail.stage === 'expand')) return done();
  const { root, installDir } = jail;
  const exp = { targets: jail.targets };

  const sel = selection(opts.targets ?? [], exp.targets);
  if ('code' in sel) { report.errors.push(sel); return done(); }
  if (opts.vars.FROM !== undefined && !sel.verify) {
    report.errors.push(jailError('bad-target', 'FROM= names a pack to rebuild from; it goes with the rebuild target: `jail make ROOT=... rebuild FROM=jail.tar`.'));
    return done();
  }
  if (sel.clean) {
    // A running jail's services use what clean would remove; make and rebuild stay allowed
    // (rebuild is how a running jail is repaired after `rm -fr /` inside it).
    // Booted, or a process with ROOT as its root (a `jail run` command, a chroot by hand).
    let real: string | undefined;
    try { real = fs.realpathSync(root); } catch { /* no ROOT: nothing runs in it */ }
    const booted = (await import('./run/instance.js')).runningPid(root);
    const inside = booted === undefined && real !== undefined ? (await import('./run/procs.js')).rootedAt(real)[0] : undefined;
    if (booted !== undefined || inside !== undefined) {
      const why = booted !== undefined
        ? `the jail at ${root} is running (pid ${booted}); stop it with \`jail stop ROOT=${root}\` first`
        : `a process runs in the jail at ${root} (pid ${inside}, a \`jail run\` command or a chroot); let it end, or end it, first`;
      report.errors.push(jailError('running', `Refusing \`clean\`: ${why}. clean removes everything jail built in ROOT, which what runs there uses; \`jail make\` and \`rebuild\` are allowed while it runs. Nothing was touched.`, { path: root }));
      return done();
    }
  }

  const lock = dryRun ? undefined : await acquireLock(installDir, root, { waitMs: opts.lockWaitMs ?? 600_000, onWait: (pid) => emit({ type: 'waiting', pid }) });
  if (lock && 'code' in lock) { report.errors.push(lock); return done(); }
  let staged: Staged | undefined;
  try {
    const mfile = manifestPath(installDir, root);
    // One ROOT, one jailfile directory: checked under the host-wide lock, which every directory takes.
    const owned = otherOwner(root, mfile);
    if (owned) { report.errors.push(owned); return done(); }
    if (!dryRun && !sel.clean) claimRoot(root, mfile);
    const { manifest, error, lost } = loadManifest(mfile, root);
    if (error) { report.errors.push(error); return done(); }
    // Without the record, nothing in ROOT is known for jail's: what is built is judged by its
    // bytes, but what is no longer declared stays. Silent for a first build into an empty ROOT.
    if (lost && holdsFiles(root)) {
      warn(`the build record ${mfile} ${lost}, so jail does not know what it built in ${root}: files no longer declared stay there and cannot be removed (clean cannot remove them either). If ROOT may hold such files, remove it (rm -rf ${root}) and build again, or check it with \`jail check ROOT=${root}\``);
    }
    // Past an entry that failed to expand (-k), the targets are not the whole jailfile: nothing is pruned.
    const plan: Plan = makePlan(root, exp.targets, manifest, { always: opts.always, clean: sel.clean, verify: sel.verify, only: sel.only, partial: !jail.ok });
    report.upToDate = plan.upToDate;
    report.observed = plan.observed;
    emit({ type: 'start', total: plan.actions.length });
    const keptWarning = (p: string) => warn(`kept ${printable(p)}: ${sel.clean ? 'clean removes what jail built' : 'no longer declared'}, but it holds files jail did not create (a service's data?); remove it by hand if it should go`);
    plan.kept.forEach(keptWarning);
    for (const u of plan.unrestored) {
      warn(`not restored: ${u.count} of the service's files and directories in the pack, at or beneath ${printable(u.path)}: ${printable(u.path)} in ROOT is now ${u.why} (the service's doing?), and jail never writes through what a service put there. To bring them back, remove ${printable(u.path)} in ROOT by hand, then run the rebuild again`);
    }
    const leftWarning = (l: { path: string; why: string }) => warn(`left ${printable(l.path)}: ${sel.clean ? 'clean removes it' : 'no longer declared'}, but ${l.why} (a service's file?); jail removes only what it put there, so remove it by hand if it should go`);
    plan.left.forEach(leftWarning);

    const pending = steps && opts.vars.FROM === undefined && !sel.only ? jail.pendingInstalls : [];
    if (opts.question) {
      for (const a of plan.actions) (a.op === 'create' ? report.created : a.op === 'update' ? report.updated : report.removed).push(toReport(a));
      for (const l of pending) report.installs.push({ name: l.entry.name, status: 'pending' });
      return done();
    }

    // A full build records the variables it was made with (a new set replacing the old, even
    // when the jail itself did not change); a group or a path leaves the record's as they were.
    const vars = sel.clean ? undefined : sel.only ? manifest.vars : varsToRecord(opts.vars);
    const writes = plan.actions.length > 0 || plan.refresh.size > 0 || plan.forget.length > 0 || plan.sweep.length > 0 || !sameVars(vars, manifest.vars);
    // A pack's files are copied out for this build alone, under its lock, before ROOT is touched.
    if (opts.vars.FROM !== undefined && !dryRun) {
      const s = await stageFor(plan, jail.file, installDir, root);
      if (s && 'code' in s) { report.errors.push(s); return done(); }
      staged = s;
    }
    if (!dryRun && plan.actions.length > 0) {
      const marked = markBuilding(mfile);
      if (marked) { report.errors.push(marked); return done(); }
    }
    // Nothing to write (a no-op build): ROOT, a real directory, is not opened, nor its
    // filesystem asked for a -j; opening it reads the mount table, for nothing.
    const idle = plan.actions.length === 0 && plan.sweep.length === 0 && fs.lstatSync(root, { throwIfNoEntry: false })?.isDirectory() === true;
    const jobs = idle ? 1 : opts.jobs ?? defaultJobs(root);
    const threads = dryRun || idle ? 0 : copyThreads(jobs, plan);
    const applier = dryRun || idle ? recordingApplier() : rootApplier(root, threads, staged?.files);
    let result;
    try {
      result = await apply(plan, applier, {
        root,
        // With copy threads, enough copies are asked for at once to keep every thread busy.
        jobs: threads ? Math.max(jobs, threads * COPIES_PER_THREAD) : jobs,
        keepGoing: Boolean(opts.keepGoing),
        onAction: (action, error) => {
          emit({ type: 'action', action, dryRun, error });
          if (error) return;
          (action.op === 'create' ? report.created : action.op === 'update' ? report.updated : report.removed).push(toReport(action));
        },
      });
    } finally {
      applier.close();
    }
    report.errors.push(...result.errors);
    for (const { path: p, count } of result.skipped) warn(`${count} target${count > 1 ? 's' : ''} beneath ${printable(p)} skipped: ${printable(p)} could not be written (its error says why)`);
    if (result.made.size) {
      const observed = new Map(plan.observed);
      for (const [p, st] of result.made) observed.set(p, st);
      report.observed = observed;
    }
    // The plan saw the directories it keeps; one filled since (a service racing the build) is kept all the same.
    result.kept.forEach(keptWarning);
    // What a service renamed over a path after the plan judged it jail's: the same warning, and its record goes as the plan's left ones do.
    result.left.forEach(leftWarning);

    if (!dryRun && writes) {
      const dataPaths = new Set(exp.targets.filter((t) => t.data).map((t) => t.path));
      const records = { ...manifest.records };
      for (const p of plan.forget) delete records[p];
      for (const p of result.removed) delete records[p];
      for (const l of result.left) delete records[l.path];
      for (const [p, r] of plan.refresh) records[p] = r;
      for (const [p, r] of result.written) if (!dataPaths.has(p)) records[p] = r;
      for (const [p, o] of result.restamped) { const r = records[p]; if (r?.o !== undefined) records[p] = { ...r, o }; }
      // A failed write may leave a temporary file behind: the next build sweeps for it.
      const unsaved = saveManifest(mfile, { version: 1, root, complete: result.errors.length === 0, vars, records });
      if (unsaved) report.errors.push(unsaved);
    }
    staged?.remove();
    // What clean keeps (a directory holding a service's files) is left to whichever directory builds ROOT next.
    if (!dryRun && sel.clean && result.errors.length === 0) releaseRoot(root, mfile);
    if (pending.length && (dryRun || report.errors.length)) {
      for (const l of pending) { report.installs.push({ name: l.entry.name, status: 'pending' }); emit({ type: 'install', name: l.entry.name, status: 'pending' }); }
    } else if (pending.length) {
      const declared = new Set(exp.targets.map((t) => t.path));
      const { runInstallStep } = await import('./install/capture.js');
      const captured = new Set<string>();
      for (const l of pending) {
        emit({ type: 'install', name: l.entry.name, status: 'running' });
        // The step is held to the limits of what runs in this jail: analyze() checked runtime()
        // before the build (a pending step means it got that far).
        const r = await runInstallStep(l, root, installDir, declared, jail.runtime!);
        r.warnings.forEach(warn);
        report.errors.push(...r.errors);
        if (r.errors.length) break;
        for (const x of l.pack?.index.entries ?? []) captured.add(x.path);
        report.installs.push({ name: l.entry.name, status: 'ran', captured: r.captured });
        emit({ type: 'install', name: l.entry.name, status: 'ran', captured: r.captured });
      }
      // Build again. After the steps, their captured layers are targets and the files they
      // left are adopted as built. After a failed or refused step (its new files already
      // removed), errors leave ROOT as it was: a declared file the step wrote over or removed
      // is an edit to the plan, which writes it back as the jailfile says — the same repair
      // any edit gets, and far cheaper than running every step on a copy of ROOT.
      lock?.release();
      const again = await build(opts, !report.errors.length);
      return merged(report, again, captured, done().seconds);
    }
    return done();
  } finally {
    staged?.remove();
    if (lock && !('code' in lock)) lock.release();
  }
}
