// `jail make`: build or update the jail, printing one line per change and a summary
// (or one JSON report), with make's exit codes.

import type { Parsed } from '../args.js';
import { analyze, make } from '../make.js';
import { check, findingLine } from '../check/index.js';
import { HumanLog, jsonReport, type Output } from '../progress.js';
import type { JailError } from '../result.js';

export async function run(p: Parsed, io: Output): Promise<number> {
  const quiet = Boolean(p.make.question);
  const log = new HumanLog(io, { explain: p.explain, progress: Boolean(process.stderr.isTTY) && !p.json, quiet });
  const shown = new Set<JailError>();
  const report = await make({
    ...p.make,
    onEvent: p.json ? undefined : (e) => {
      if (e.type === 'action' && e.error) shown.add(e.error);
      log.event(e);
    },
  });
  if (p.json) io.out(jsonReport(report));
  else log.summary(report, shown);
  if (report.errors.length) return 2;
  // A pack rebuild (FROM=) would unpack the pack again to analyze it; `clean` leaves nothing to check.
  if (!report.dryRun && p.make.vars.FROM === undefined && !p.make.targets.includes('clean')) await cheapChecks(p, io);
  if (p.make.question && report.created.length + report.updated.length + report.removed.length + report.installs.length > 0) return 1;
  return 0;
}

/** After a build: the cheap checks of `jail check` on the declared targets, as `jail: finding:` lines; the exit status stays the build's. */
async function cheapChecks(p: Parsed, io: Output): Promise<void> {
  const a = await analyze(p.make);
  if (!a.ok) return;
  const r = check(a, { cheap: true });
  if (!r.ok) return;
  for (const f of r.value.findings) io.err(`jail: finding: ${findingLine(f)}`);
}
