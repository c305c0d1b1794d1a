// Whether `jail run`'s command is there to run in the jail, decided before anything starts
// by looking in ROOT as data: its path resolved as the chroot will resolve it (RootPaths:
// a link's absolute target restarts at ROOT, '..' stops there, so nothing outside ROOT is
// ever looked at), a bare name searched in the jail's PATH as execvp will. Nothing is run
// to find out. Without this, a missing program was unshare's exit 127 ("failed to
// execute"), which a caller cannot tell from the program's own 127.
//
// A command that is there can still fail the same way: execve says ENOENT when a script's
// `#!` interpreter or a program's loader (PT_INTERP) is missing. Its first bytes are read
// too, through RootReader (directories opened one by one without following links, only
// the regular file lstat saw, bounded reads), and what they name is looked up as above.

import fs from 'node:fs';
import { parseElfFd } from '../elf/elf-file.js';
import { RootPaths, type Lookup } from '../elf/root-path.js';
import { JAIL_PATH, SHEBANG_BYTES, envProgram, findInJailPath, parseShebang } from '../elf/shebang.js';
import { RootReader, openVerified, procPath, readHead } from '../check/reader.js';
import { jsString, printableCode } from '../printable.js';
import { baseName, parentOf } from '../targets.js';
import type { JailUser } from './jaildata.js';

/** Why CMD cannot be started in the jail at ROOT as `user`, in words for the error; undefined when it can be tried. */
export function commandProblem(root: string, cmd: string, user: JailUser): string | undefined {
  // Link targets, #! lines and loaders come from the jail: their controls are escaped.
  const why = problem(root, cmd, user);
  return why === undefined ? undefined : printableCode(why);
}

function problem(root: string, cmd: string, user: JailUser): string | undefined {
  const paths = new RootPaths(root);
  const execBit = (mode: bigint, uid: bigint, gid: bigint) =>
    (mode & (BigInt(user.uid) === uid ? 0o100n : BigInt(user.gid) === gid ? 0o010n : 0o001n)) !== 0n;
  const runnable = (p: string) => {
    const r = paths.lookup(p);
    return r.kind === 'found' && r.st.isFile() && execBit(r.st.mode, r.st.uid, r.st.gid);
  };
  if (!cmd.includes('/')) {
    const found = findInJailPath(cmd, runnable);
    if (found) return startProblem(paths, root, `${cmd} (${found} in the jail at ${root})`, found, runnable);
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
  return startProblem(paths, root, `${shown} at ${root}`, jailPath, runnable);
}

type Found = Extract<Lookup, { kind: 'found' }>;

/** How many interpreters deep the kernel goes (a fifth `#!` in a row is ELOOP); deeper is not judged. */
const MAX_DEPTH = 4;

/**
 * Why execve of `p`, an executable file of the jail, fails with ENOENT although it is
 * there: its `#!` interpreter (or the program `#!/usr/bin/env NAME` runs) or its loader is
 * missing, at any depth. `what` names `p` for the message. Undefined when nothing is
 * missing or the file cannot be read as it stands (the kernel then has its say).
 */
function startProblem(paths: RootPaths, root: string, what: string, p: string, runnable: (p: string) => boolean, depth = 0): string | undefined {
  const r = paths.lookup(p);
  if (r.kind !== 'found' || depth > MAX_DEPTH) return undefined;
  const start = readStart(root, r);
  if (start === undefined) return undefined;
  if (start.kind === 'elf') {
    const loader = start.loader.startsWith('/') ? start.loader : `/${start.loader}`;
    const why = absent(paths, loader);
    return why === undefined ? undefined
      : `${what} is a dynamically linked program whose loader ${loader} (its PT_INTERP) is not in the jail${why}, so the kernel cannot start it ("No such file or directory"). ` +
        `A program's loader comes with elf() of the program: declare ${p} with elf() rather than copy(), and run \`jail make\`.`;
  }
  const interp = start.line.interpreter;
  const why = absent(paths, interp);
  if (why !== undefined) {
    return `${what} is a script whose #! interpreter ${interp} is not in the jail${why}, so the kernel cannot start it ("No such file or directory"). ` +
      `Add the interpreter to the jailfile with elf(${jsString(interp)}), which brings it with its libraries, and run \`jail make\`.`;
  }
  const deeper = startProblem(paths, root, `${what} is a script whose #! interpreter ${interp}`, interp, runnable, depth + 1);
  if (deeper !== undefined) return deeper;
  const name = envProgram(start.line);
  if (name === undefined) return undefined;
  const prog = findInJailPath(name, runnable);
  if (prog === undefined || paths.lookup(prog).kind !== 'found') {
    return `${what} is a script whose #! line has ${interp} run ${name}, which is ${name.startsWith('/') ? 'not in the jail' : `in no directory of the jail's PATH (${JAIL_PATH})`}` +
      `, so env cannot start it ("No such file or directory"). ` +
      `Add it to the jailfile with elf(${jsString(name.startsWith('/') ? name : `/usr/bin/${name}`)}), which brings it with its libraries, and run \`jail make\`.`;
  }
  return startProblem(paths, root, `${what} is a script whose #! line has ${interp} run ${prog}, which`, prog, runnable, depth + 1);
}

/** '' (or the links and the errno) when the jail path is missing, as the message puts it; undefined when it is there. */
function absent(paths: RootPaths, p: string): string | undefined {
  const r = paths.lookup(p);
  if (r.kind === 'found') return undefined;
  const t = paths.trace(p);
  const via = t.links.length ? ` (through ${t.links.map((l) => `${l.path} -> ${l.target}`).join(', ')}, followed inside the jail)` : '';
  return `${via}${r.code === 'ENOENT' ? '' : ` (${r.code})`}`;
}

/**
 * What the kernel reads of a found file to start it: a program's loader (PT_INTERP) or a
 * script's `#!` line; undefined for neither, a static program, or a file that is not the
 * one looked up. A loader that is not UTF-8 cannot be looked up, so it is not judged.
 */
function readStart(root: string, r: Found): { kind: 'elf'; loader: string } | { kind: 'script'; line: NonNullable<ReturnType<typeof parseShebang>> } | undefined {
  const reader = RootReader.open(root);
  if (!('rootFd' in reader)) return undefined;
  try {
    const st = reader.lstat(r.real);
    const dir = st?.isFile() ? reader.dirFd(parentOf(r.real)) : undefined;
    const fd = dir === undefined || !st ? undefined : openVerified(procPath(dir, baseName(r.real)), st);
    if (fd === undefined) return undefined;
    try {
      const head = readHead(fd, SHEBANG_BYTES);
      if (head.length >= 4 && head.readUInt32BE(0) === 0x7f454c46) {
        const elf = parseElfFd(fd, Number(st!.size), r.real);
        const loader = elf.ok ? elf.value?.interpreter : undefined;
        return loader === undefined || elf.ok && elf.value!.undecodable.includes(loader) ? undefined : { kind: 'elf', loader };
      }
      const line = parseShebang(head);
      return line && { kind: 'script', line };
    } catch {
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    reader.close();
  }
}
