// Whether `jail run`'s command is there to run in the jail, decided before anything starts
// by looking in ROOT as data: its path resolved as the chroot will resolve it (RootPaths:
// a link's absolute target restarts at ROOT, '..' stops there, so nothing outside ROOT is
// ever looked at), a bare name searched in the jail's PATH as execvp will. Nothing is run
// to find out. Without this, a missing program was unshare's exit 127 ("failed to
// execute"), which a caller cannot tell from the program's own 127.

import { RootPaths } from '../elf/root-path.js';
import { JAIL_PATH, findInJailPath } from '../elf/shebang.js';
import type { JailUser } from './jaildata.js';

/** Why CMD cannot be started in the jail at ROOT as `user`, in words for the error; undefined when it can be tried. */
export function commandProblem(root: string, cmd: string, user: JailUser): string | undefined {
  const paths = new RootPaths(root);
  const execBit = (mode: bigint, uid: bigint, gid: bigint) =>
    (mode & (BigInt(user.uid) === uid ? 0o100n : BigInt(user.gid) === gid ? 0o010n : 0o001n)) !== 0n;
  const runnable = (p: string) => {
    const r = paths.lookup(p);
    return r.kind === 'found' && r.st.isFile() && execBit(r.st.mode, r.st.uid, r.st.gid);
  };
  if (!cmd.includes('/')) {
    if (findInJailPath(cmd, runnable)) return undefined;
    return `${cmd} is not a program in the jail's PATH (${JAIL_PATH}) at ${root}, as ${user.name} can run it. ` +
      `Add it to the jailfile with elf('/usr/bin/${cmd}') (or copy() a script), run \`jail make\`, or name it by its path in the jail.`;
  }
  // unshare starts the command with / as its working directory.
  const jailPath = cmd.startsWith('/') ? cmd : `/${cmd}`;
  const t = paths.trace(jailPath);
  const r = paths.lookup(jailPath);
  if (r.kind === 'absent') {
    const via = t.links.length ? ` (through ${t.links.map((l) => `${l.path} -> ${l.target}`).join(', ')}, followed inside the jail as the chroot will)` : '';
    return `${jailPath} is not in the jail at ${root}${via}${r.code === 'ENOENT' ? '' : ` (${r.code})`}. ` +
      `Add it to the jailfile with elf('${jailPath}') (a program) or copy() (a script), and run \`jail make\`.`;
  }
  const shown = r.real === jailPath ? jailPath : `${jailPath} (${r.real} in the jail)`;
  if (!r.st.isFile()) return `${shown} at ${root} is ${r.st.isDirectory() ? 'a directory' : 'not a regular file'}, not a program. Name the program to run.`;
  if (!execBit(r.st.mode, r.st.uid, r.st.gid)) {
    return `${shown} at ${root} is not executable by the jail user ${user.name} (mode ${(Number(r.st.mode) & 0o7777).toString(8).padStart(4, '0')}). ` +
      'Declare it with mode: 0o755 in the jailfile and run `jail make`.';
  }
  return undefined;
}
