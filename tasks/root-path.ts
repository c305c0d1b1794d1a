// ROOT is checked before anything is loaded or touched: absolute, not `/`, not a host
// system directory, not a symlink, not the directory that holds the jailfile, and neither
// inside nor around the tool's own state (/run/jail, the build locks, the install's .jail).

import fs from 'node:fs';
import path from 'node:path';
import { fail, jailError, ok, type JailError, type Result } from './result.js';
import { hostLockDir, STATE_DIR } from './manifest.js';
import { realHostPath, within } from './host-inputs.js';
import { RUN_DIR } from './run/state.js';

/** Host directories a jail must never be built over (a jail inside them, e.g. /var/virtual/x, is fine). */
const HOST_DIRS = new Set(['/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt', '/opt',
  '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/var', '/var/lib', '/var/log', '/var/tmp', '/var/run', '/usr/local']);
const HOST_TREES = ['/usr/', '/etc/', '/proc/', '/sys/', '/dev/', '/boot/'];

/** The tool's own state, which a jail must neither hold nor lie in: real paths, and what each holds. */
function toolDirs(installDir: string): [string, string][] {
  const lock = hostLockDir();
  return [
    [RUN_DIR, 'where jail keeps the record of every running jail'],
    ...(lock ? [[lock, 'where builds of one ROOT wait for each other'] as [string, string]] : []),
    [path.join(installDir, STATE_DIR), 'the install directory\'s state (build records, caches, install layers)'],
  ];
}

/** `command`: the jail command that was run, for the example in the message. */
export function checkRoot(root: string | undefined, installDir: string, command = 'make'): Result<string, JailError> {
  const bad = (why: string) => fail(jailError('bad-root', `ROOT=${root ?? ''} ${why} Nothing was touched.`, { path: root }));
  if (root === undefined || root === '') return fail(jailError('bad-root', `ROOT is required: name the jail directory as a make variable, e.g. \`jail ${command} ROOT=/var/virtual/apache\`. Nothing was touched.`));
  if (!root.startsWith('/')) return bad(`is not an absolute path; write it in full, e.g. ROOT=${path.resolve(root)}.`);
  const norm = path.posix.normalize(root).replace(/(.)\/+$/, '$1');
  if (norm === '/') return bad('is the host\'s own root; a jail must be a directory of its own, e.g. ROOT=/var/virtual/apache.');
  const scratch = norm.startsWith('/dev/shm/'); // a tmpfs of the host's: a fine place for a throwaway jail
  if (HOST_DIRS.has(norm) || (!scratch && HOST_TREES.some((t) => norm.startsWith(t)))) return bad(`is a host system directory; building a jail there would rewrite the host. Choose a directory of its own, e.g. /var/virtual/NAME.`);
  const inst = path.resolve(installDir);
  // Compared by real path too: a symlink among the parents names the same directory.
  const real = realHostPath(norm), instReal = realHostPath(inst);
  const really = real === norm ? '' : `(really ${real}) `;
  if (inst === norm || inst.startsWith(norm + '/') || within(instReal, real)) return bad(`${really}holds the jailfile's own directory (${inst}); the install directory must live outside the jail, where the jail cannot change it.`);
  for (const [dir, what] of toolDirs(instReal)) {
    if (!within(real, dir) && !within(dir, real)) continue;
    const where = real === dir ? 'is' : within(real, dir) ? 'lies inside' : 'holds';
    return bad(`${really}${where} ${dir}, ${what}: a jail there would overwrite the tool's own state, and what runs in the jail could forge it. Choose a directory of its own, e.g. /var/virtual/NAME.`);
  }
  const st = fs.lstatSync(norm, { throwIfNoEntry: false });
  if (st?.isSymbolicLink()) return bad(`is a symlink (to ${fs.readlinkSync(norm)}); name the real directory, so that what is built and what is checked are the same place.`);
  if (st && !st.isDirectory()) return bad('exists and is not a directory.');
  return ok(norm);
}
