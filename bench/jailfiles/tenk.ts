// The benchmark's ~10,000-file jail: whole trees of libraries, Perl and Python modules, time
// zones and locale sources, as a jail that embeds an interpreter would carry them.
// bench/run.mjs builds it with `jail make` and copies the same trees with cp -a, tar and
// rsync, on the same files. On Debian 12 (bookworm) the trees hold about 9,300 regular
// files and 900 symlinks; trees missing on a host are left out (the bench says which).
//
// SRC is a prefix for every source: empty (the default) copies the host's own files; the
// bench sets SRC to a staged copy of the same trees when it needs files it may modify.

import fs from 'node:fs';
import { defineJail, copy } from 'jail';

/** The trees copied, as host paths. bench/run.mjs reads this list too (one quoted path a line). */
export const TREES = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/share/perl',
  '/usr/lib/python3',
  '/usr/lib/python3.11',
  '/usr/share/zoneinfo',
  '/usr/share/i18n',
];

export default defineJail(({ SRC = '' }) =>
  TREES.filter((tree) => fs.existsSync(tree)).map((tree) => copy(`${SRC}${tree}`, { to: tree })));
