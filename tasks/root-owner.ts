// Which jailfile directory builds a ROOT. Each install directory keeps its own record of
// what it put in ROOT and removes only that, so a second directory building the same ROOT
// would leave the first one's files there unaccounted for, and each would undo the other's
// changes. The claim lives beside the host-wide build locks (outside ROOT and every
// install directory), names the record of the directory that built ROOT last, and holds
// while that record does: a directory moved away, removed or cleaned gives ROOT up. A
// reboot empties it; the next build writes it again.

import fs from 'node:fs';
import path from 'node:path';
import { hostLockDir, jailKey, realRoot } from './manifest.js';
import { jailError, type JailError } from './result.js';

function claimFile(root: string): string | undefined {
  const dir = hostLockDir();
  return dir && path.join(dir, `${jailKey(root)}.owner`);
}

function claimedBy(file: string): string | undefined {
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as { record?: unknown };
    return typeof c.record === 'string' ? c.record : undefined;
  } catch { return undefined; }
}

/** Another install directory's claim on ROOT, as the error a build from this one (whose record is `record`) gets; undefined when there is none. */
export function otherOwner(root: string, record: string): JailError | undefined {
  const file = claimFile(root);
  const theirs = file && claimedBy(file);
  if (!theirs || theirs === record) return undefined;
  let other: { root?: unknown; records?: unknown };
  try { other = JSON.parse(fs.readFileSync(theirs, 'utf8')) as typeof other; } catch { return undefined; }
  const holds = typeof other.records === 'object' && other.records !== null && Object.keys(other.records).length > 0;
  if (typeof other.root !== 'string' || !holds || realRoot(other.root) !== realRoot(root)) return undefined;
  const dir = path.dirname(path.dirname(theirs));
  const named = other.root === root ? '' : `, as ROOT=${other.root}`;
  const here = path.dirname(path.dirname(record)) === dir ? `this jailfile directory${named}` : `another jailfile directory, ${dir}${named}`;
  return jailError('root-owned',
    `ROOT=${root} is built from ${here} (its build record ${theirs}). Each directory records what it put in ROOT and removes only that, so building one ROOT from two ` +
    `leaves the first one's files in the jail unaccounted for, and each build undoes the other's changes. Build it from there (\`jail make -C ${dir} ROOT=${other.root}\`); ` +
    `to build it from here instead, empty it from there first (\`jail make -C ${dir} ROOT=${other.root} clean\`), or delete that record if its jailfile is gone for good. Nothing was touched.`,
    { path: root });
}

/** Records that `record`'s install directory builds ROOT (under the build lock); written only when it changes. */
export function claimRoot(root: string, record: string): void {
  const file = claimFile(root);
  if (!file || claimedBy(file) === record) return;
  try {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ record }));
    fs.renameSync(tmp, file);
  } catch { /* no lock directory here (not root, no /run): nothing to share with other directories */ }
}

/** After a clean from the directory that holds the claim: ROOT is nobody's. */
export function releaseRoot(root: string, record: string): void {
  const file = claimFile(root);
  if (file && claimedBy(file) === record) fs.rmSync(file, { force: true });
}
