// `jail make`: build or update the jail, printing one line per change and a summary
// (or one JSON report), with make's exit codes.

import type { Parsed } from '../args.js';
import { make, type Analysis, type Report } from '../make.js';
import { check, findingLine } from '../check/index.js';
import { HumanLog, jsonReport, type Output } from '../progress.js';
import type { JailError } from '../result.js';
import fs from 'node:fs';
import { declaredHostnameProblems } from '../run/hostname.js';
import { RUN_DIR, loadState } from '../run/state.js';
import { realRoot } from '../manifest.js';

export async function run(p: Parsed, io: Output): Promise<number> {
  const quiet = Boolean(p.make.question);
  // A getter: asking process.stderr whether it is a terminal makes the stream, which loads
  // Node's stream and tty modules; a build with nothing to draw never asks.
  const log = new HumanLog(io, { explain: p.explain, get progress() { return !p.json && Boolean(process.stderr.isTTY); }, quiet });
  const shown = new Set<JailError>();
  const report = await make({
    ...p.make,
    onEvent: p.json ? undefined : (e) => {
      if (e.type === 'action' && e.error) shown.add(e.error);
      log.event(e);
    },
  });
  if (p.json) io.out(jsonReport(report, { explain: p.explain }));
  else log.summary(report, shown);
  // `clean` leaves nothing to check; a pack rebuild is checked like any build. Past failed
  // targets (-k), what was built is checked all the same: `observed` says the plan was made.
  const built = report.analysis && report.observed && (!report.errors.length || p.make.keepGoing);
  if (!report.dryRun && built && !p.make.targets.includes('clean')) cheapChecks(report.analysis!, report.observed, io);
  if (report.errors.length) return 2;
  // What boot would refuse is said now, while the jailfile is being worked on.
  if (report.analysis?.ok && !p.json && !p.make.targets.includes('clean')) for (const w of declaredHostnameProblems(report.analysis.entries)) io.err(`jail: warning: ${w}`);
  if (!report.dryRun && report.root && !p.json) await warnReplacedRoot(report.root, io);
  if (p.make.question && report.created.length + report.updated.length + report.removed.length + report.installs.length > 0) return 1;
  return 0;
}

/** A booted jail of ROOT still running in the tree a `rm -rf ROOT` deleted: what was just built does not reach it. */
async function warnReplacedRoot(root: string, io: Output): Promise<void> {
  if (!fs.existsSync(RUN_DIR)) return; // nothing booted on this host: the no-op build pays for nothing more
  const real = realRoot(root);
  const state = loadState(real);
  if (!state) return; // this jail is not booted: nor is its run-time code loaded
  const { isUp, replacedRoot, replacedRootMessage } = await import('../run/instance.js');
  const replaced = isUp(state) ? replacedRoot(state, real) : undefined;
  if (replaced) io.err(`jail: warning: ${replacedRootMessage(real, replaced)}`);
}

/**
 * After a build: the cheap checks of `jail check` on the declared targets, as `jail: finding:`
 * lines; the exit status stays the build's. They reuse the build's own analysis: loading
 * and expanding the jailfile twice would double the cost of a no-op make.
 */
function cheapChecks(a: Analysis, observed: Report['observed'], io: Output): void {
  const r = check(a, { cheap: true, observed });
  if (!r.ok) return;
  for (const f of r.value.findings) io.err(`jail: finding: ${findingLine(f)}`);
}
