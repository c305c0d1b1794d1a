// bench/stat-floor.mjs ROOT TREE...: the least a no-op make of the bench jail can do in
// one node process, and nothing more: walk every source tree (readdir, then lstat each
// entry, readlink each symlink) and lstat the same path under ROOT. No jailfile, no plan,
// no record, no checks. bench/run.mjs times it beside `jail make` and rsync in row 2, so
// the table shows how much of the no-op is node's start-up and stat calls, which no engine
// written for node can drop, and how much is jail's own work.
//
// lstat asks for BigInt times as jail does (a stamp must be exact to the nanosecond).

import fs from 'node:fs';

const [root, ...trees] = process.argv.slice(2);
if (!root || trees.length === 0) {
  process.stderr.write('usage: node bench/stat-floor.mjs ROOT TREE...\n');
  process.exit(2);
}

let paths = 0;
const walk = (src) => {
  const st = fs.lstatSync(src, { bigint: true });
  fs.lstatSync(root + src, { bigint: true, throwIfNoEntry: false });
  paths++;
  if (st.isSymbolicLink()) fs.readlinkSync(src);
  else if (st.isDirectory()) for (const n of fs.readdirSync(src)) walk(`${src}/${n}`);
};
for (const t of trees) walk(t);
process.stdout.write(`${paths}\n`);
