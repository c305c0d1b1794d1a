// The state directory (.jail beside the jailfile, or in the working directory for
// `FROM=`) is checked before any command reads or writes it: it holds the build records,
// the transpiled jailfiles that are run as root, install layers and a pack's files on
// their way into ROOT. Whoever else could write it, or swap it for one of their own,
// could plant any of these, so such a directory is refused, never used.

import fs from 'node:fs';
import path from 'node:path';
import { stateDir } from './manifest.js';
import { jailError, type JailError } from './result.js';

const S_ISVTX = 0o1000;

/**
 * Makes the state directory of `installDir` if it is missing, then refuses it unless it is
 * a real directory owned by this user or root that nobody else can write. With `chain`
 * (`FROM=`: no jailfile is run, so the owner of the directories above is trusted by
 * nothing else), each directory above it must be so too, or sticky (as /tmp is): else its
 * owner, or anyone, could rename the state directory away and put their own in its place.
 * Without a jailfile that is all it takes; with one, whoever can do that can already
 * replace the jailfile, which is run as root, so the directories above are not judged.
 */
export function checkStateDir(installDir: string, opts: { chain: boolean }): JailError | undefined {
  const dir = stateDir(installDir);
  const me = process.geteuid?.() ?? 0;
  const remove = 'Remove it (look at what is in it first: someone may have planted files there), then run the command again.';
  const elsewhere = 'With FROM= the build record is kept in .jail in the working directory: run the command from a directory that only you (or root) can write.';
  try {
    fs.mkdirSync(dir, { mode: 0o755 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // No install directory, or one we cannot write: the jailfile's loading, or the first write, says so.
    if (code !== 'EEXIST') return undefined;
  }
  const st = fs.lstatSync(dir);
  const unsafe = (why: string, fix = remove) =>
    jailError('unsafe-state-dir', `The state directory ${dir} ${why}: whoever can change it could change the build records and the files a build copies into ROOT, so it is not used. ${fix} Nothing was touched.`, { path: dir });
  if (st.isSymbolicLink()) return unsafe(`is a symlink (to ${fs.readlinkSync(dir)})`);
  if (!st.isDirectory()) return unsafe('is not a directory');
  if (st.uid !== me && st.uid !== 0) return unsafe(`is owned by uid ${st.uid}, not by you or root`);
  if (st.mode & 0o022) return unsafe(`can be written by ${st.mode & 0o002 ? 'anyone' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)})`);
  if (!opts.chain) return undefined;
  let real: string;
  try { real = fs.realpathSync.native(installDir); } catch { return undefined; }
  for (let d = real; ; d = path.dirname(d)) {
    const up = fs.statSync(d);
    if (up.uid !== me && up.uid !== 0) return unsafe(`lies in ${d}, owned by uid ${up.uid}, who could put another directory in its place`, elsewhere);
    if ((up.mode & 0o022) && !(up.mode & S_ISVTX)) return unsafe(`lies in ${d}, which ${up.mode & 0o002 ? 'anyone' : 'its group'} can write (mode ${(up.mode & 0o7777).toString(8)}, not sticky), so another user could put another directory in its place`, elsewhere);
    if (d === '/') return undefined;
  }
}
