// `jail pack ROOT=... -o jail.tar[.gz]`: the built jail as a self-contained archive that
// `jail make ROOT=/elsewhere rebuild FROM=jail.tar` recreates with no host file at hand.

import path from 'node:path';
import type { Parsed } from '../args.js';
import { analyze } from '../make.js';
import { loadManifest, manifestPath } from '../manifest.js';
import { createPack } from '../pack/create.js';
import type { Output } from '../progress.js';

export async function run(p: Parsed, io: Output): Promise<number> {
  const out = p.options.get('-o');
  if (typeof out !== 'string') { io.err('jail pack: name the archive to write with -o FILE (.tar, or .tar.gz to compress)'); return 2; }
  const a = await analyze(p.make, p.command, true);
  for (const w of a.warnings) io.err(`jail: warning: ${w}`);
  if (!a.ok) { for (const e of a.errors) io.err(`jail: error: ${e.message}`); return 2; }
  const { manifest, error } = loadManifest(manifestPath(a.installDir, a.root), a.root);
  if (error) { io.err(`jail: error: ${error.message}`); return 2; }
  const file = path.resolve(p.make.cwd ?? '.', out);
  const r = await createPack(a, manifest, a.vars, file);
  for (const w of r.warnings) io.err(`jail: warning: ${w}`);
  for (const e of r.errors) io.err(`jail: error: ${e.message}`);
  if (r.errors.length) return 2;
  io.out(`jail: packed ${r.entries} paths of ${a.root} into ${file}`);
  return 0;
}
