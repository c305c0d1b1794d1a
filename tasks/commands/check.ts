// `jail check ROOT=... [-f FILE] [--json] [-q]`: audit a jail without running anything in
// it. One line per finding (`KIND PATH: message; fix`) and a summary, or one JSON
// document `{ "findings": [{ "kind", "path", "message", "fix" }], "vars": {...} }`. The
// jailfile is evaluated with the variables ROOT was built with, unless given; the summary
// names those it took from the build record, so a verdict is never read for the wrong ones. Exit status: 0
// clean, 1 findings, 2 error (a bad ROOT, a jailfile that does not load); with --json an
// error is also `{ "findings": [], "errors": [{ "code", "message" }] }`, as make's report has them.

import type { Parsed } from '../args.js';
import { analyze } from '../make.js';
import type { Output } from '../progress.js';
import { jailError, type JailError } from '../result.js';
import { check, findingLine } from '../check/index.js';
import { shellWord } from '../printable.js';

export async function run(p: Parsed, io: Output): Promise<number> {
  const quiet = Boolean(p.make.question);
  const failed = (errors: readonly JailError[]): number => {
    for (const e of errors) io.err(`jail: error: ${e.message}`);
    if (p.json && !quiet) io.out(JSON.stringify({ findings: [], errors }, null, 2));
    return 2;
  };
  if (p.make.targets.length > 0) {
    return failed([jailError('bad-target', `jail check takes no targets (got ${p.make.targets.join(' ')}); it audits all of ROOT.`)]);
  }
  const a = await analyze(p.make, p.command, true);
  if (!a.ok) return failed(a.errors);
  const r = check(a);
  if (!r.ok) return failed([r.error]);
  const { findings, allowed, notes } = r.value;
  if (!quiet) {
    for (const n of notes) io.err(`jail check: note: ${n}`);
    if (p.json) {
      const { ROOT: _, ...vars } = a.vars;
      io.out(JSON.stringify({ findings: findings.map((f) => ({ kind: f.kind, path: f.path, message: f.message, fix: f.fix })), vars }, null, 2));
    } else {
      for (const f of findings) io.out(findingLine(f));
      const accepted = allowed.length ? ` (${allowed.length} accepted by allow())` : '';
      const recorded = a.recorded.length ? ` (variables from the last make: ${a.recorded.map((k) => shellWord(`${k}=${a.vars[k]!}`)).join(' ')})` : '';
      io.out(findings.length === 0 ? `jail check: clean${accepted}${recorded}` : `jail check: ${findings.length} finding${findings.length > 1 ? 's' : ''}${accepted}${recorded}`);
    }
  }
  return findings.length > 0 ? 1 : 0;
}
