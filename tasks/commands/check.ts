// `jail check ROOT=... [-f FILE] [--json] [-q]`: audit a jail without running anything in
// it. One line per finding (`KIND PATH: message; fix`) and a summary, or one JSON
// document `{ "findings": [{ "kind", "path", "message", "fix" }] }`. Exit status: 0
// clean, 1 findings, 2 error (a bad ROOT, a jailfile that does not load).

import type { Parsed } from '../args.js';
import { analyze } from '../make.js';
import type { Output } from '../progress.js';
import { check, findingLine } from '../check/index.js';

export async function run(p: Parsed, io: Output): Promise<number> {
  const quiet = Boolean(p.make.question);
  if (p.make.targets.length > 0) {
    io.err(`jail check: it takes no targets (got ${p.make.targets.join(' ')}); it audits all of ROOT`);
    return 2;
  }
  const a = await analyze(p.make);
  if (!a.ok) {
    for (const e of a.errors) io.err(`jail: error: ${e.message}`);
    return 2;
  }
  const r = check(a);
  if (!r.ok) {
    io.err(`jail: error: ${r.error.message}`);
    return 2;
  }
  const { findings, allowed, notes } = r.value;
  if (!quiet) {
    for (const n of notes) io.err(`jail check: note: ${n}`);
    if (p.json) {
      io.out(JSON.stringify({ findings: findings.map((f) => ({ kind: f.kind, path: f.path, message: f.message, fix: f.fix })) }, null, 2));
    } else {
      for (const f of findings) io.out(findingLine(f));
      const accepted = allowed.length ? ` (${allowed.length} accepted by allow())` : '';
      io.out(findings.length === 0 ? `jail check: clean${accepted}` : `jail check: ${findings.length} finding${findings.length > 1 ? 's' : ''}${accepted}`);
    }
  }
  return findings.length > 0 ? 1 : 0;
}
