// `jail pack ROOT=... -o jail.tar[.gz]`: the built jail as a self-contained archive that
// `jail make ROOT=/elsewhere rebuild FROM=jail.tar` recreates with no host file at hand.
// It takes ROOT=, the make variables, -f, -C and -o; make's other flags and targets are
// refused, not ignored: pack has no dry run or report, and packs the whole jail.

import path from 'node:path';
import type { Parsed } from '../args.js';
import { analyze } from '../make.js';
import { loadManifest, manifestPath } from '../manifest.js';
import { createPack } from '../pack/create.js';
import { PackOutput, packFormat } from '../pack/output.js';
import { shellWord } from '../printable.js';
import type { Output } from '../progress.js';

/** What of the command line pack has no use for, said once; undefined when it has none. */
function unsupported(p: Parsed): string | undefined {
  if (p.make.targets.length) return `jail pack takes no targets (got ${p.make.targets.map(shellWord).join(' ')}): it packs the whole jail, once \`jail make\` has brought it up to date.`;
  const flags = [
    p.make.dryRun && '-n', p.make.question && '-q', p.make.always && '-B', p.make.keepGoing && '-k', p.make.jobs !== undefined && '-j',
    p.explain && '--explain', p.json && '--json', ...[...p.options.keys()].filter((k) => k !== '-o'),
  ].filter((f): f is string => typeof f === 'string');
  if (flags.length) return `jail pack does not take ${flags.join(', ')} (pack has no dry run, report or build of its own: it packs a jail that \`jail make\` has brought up to date); it takes ROOT=, make variables, -f FILE, -C DIR and -o FILE.`;
  if (p.rest.length) return `jail pack runs no command (got -- ${p.rest.map(shellWord).join(' ')}); it takes ROOT=, make variables, -f FILE, -C DIR and -o FILE.`;
  return undefined;
}

export async function run(p: Parsed, io: Output): Promise<number> {
  const wrong = unsupported(p);
  if (wrong) { io.err(`jail: error: ${wrong} Nothing was written.`); return 2; }
  const out = p.options.get('-o');
  if (typeof out !== 'string') { io.err('jail pack: name the archive to write with -o FILE (.tar, or .tar.gz to compress)'); return 2; }
  const file = path.resolve(p.make.cwd ?? '.', out);
  const format = packFormat(file);
  if ('code' in format) { io.err(`jail: error: ${format.message}`); return 2; }
  const output = PackOutput.open(file);
  if (!(output instanceof PackOutput)) { io.err(`jail: error: ${output.message}`); return 2; }
  try {
    const a = await analyze(p.make, p.command, true);
    for (const w of a.warnings) io.err(`jail: warning: ${w}`);
    if (!a.ok) { for (const e of a.errors) io.err(`jail: error: ${e.message}`); return 2; }
    const inside = output.outside(a.root);
    if (inside) { io.err(`jail: error: ${inside.message}`); return 2; }
    const { manifest, error } = a.record ?? loadManifest(manifestPath(a.installDir, a.root), a.root);
    if (error) { io.err(`jail: error: ${error.message}`); return 2; }
    const r = await createPack(a, manifest, a.vars, output, format);
    for (const w of r.warnings) io.err(`jail: warning: ${w}`);
    for (const n of r.notes) io.err(`jail pack: note: ${n}`);
    for (const e of r.errors) io.err(`jail: error: ${e.message}`);
    if (r.errors.length) return 2;
    io.out(`jail: packed ${r.entries} paths of ${a.root} into ${file}`);
    return 0;
  } finally {
    output.close();
  }
}
