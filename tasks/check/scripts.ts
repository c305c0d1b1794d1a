// Executable `#!` scripts whose interpreter the jail lacks (an rc script naming /bin/sh in a
// jail without a shell): the kernel refuses to start them, as it refuses an ELF program
// whose PT_INTERP is missing. The walk read each `#!` line; here each interpreter is
// looked up once, as the kernel would after chroot(ROOT): through the jail's own links,
// absolute ones restarting at ROOT and `..` stopping there, so never leaving ROOT. For
// `#!/usr/bin/env NAME` the program env runs is looked up too, in the PATH every jailed
// command gets (a script that sets its own PATH first can allow() the finding).

import fs from 'node:fs';
import { jsString } from '../printable.js';
import { RootPaths } from '../elf/index.js';
import { JAIL_PATH, findInJailPath } from '../elf/shebang.js';
import type { Context } from './context.js';

export function checkScripts(ctx: Context): void {
  let fsr: RootPaths | undefined;
  const verdicts = new Map<string, string | undefined>();
  /** Why the kernel could not run `interp`; undefined when it could. */
  const verdict = (interp: string): string | undefined => {
    if (verdicts.has(interp)) return verdicts.get(interp);
    const look = (fsr ??= new RootPaths(ctx.root)).lookup(interp);
    const why = look.kind !== 'found' ? `is not in the jail${look.code !== 'ENOENT' ? ` (${look.code})` : ''}: the kernel cannot start it ("No such file or directory")`
      : !look.st.isFile() || (look.st.mode & 0o111n) === 0n ? `is in the jail but is not an executable file (${look.real}): the kernel cannot start it ("Permission denied")`
        : undefined;
    verdicts.set(interp, why);
    return why;
  };
  const found = new Map<string, string | undefined>();
  /** Where env finds `name` in the jail's PATH; undefined when it finds nothing. */
  const inJail = (name: string): string | undefined => {
    if (!found.has(name)) found.set(name, findInJailPath(name, (p) => verdict(p) === undefined));
    return found.get(name);
  };
  for (const n of ctx.nodes) {
    if (n.interpreter === undefined || !n.st.isFile()) continue;
    const why = verdict(n.interpreter);
    if (why !== undefined) {
      ctx.add('missing-interpreter', n.path, `its #! interpreter ${n.interpreter} ${why}`,
        `add the interpreter with elf(${jsString(n.interpreter)}), which brings its libraries, or remove the script`);
      continue;
    }
    if (n.env === undefined) continue;
    const prog = inJail(n.env);
    const envWhy = prog === undefined
      ? `is in no directory of the PATH jailed commands get (${JAIL_PATH}): env cannot start it ("No such file or directory")`
      : verdict(prog)?.replace('the kernel cannot', 'env cannot');
    if (envWhy === undefined) continue;
    // The host's program of that name, found the same way, is what elf() would bring.
    const host = findInJailPath(n.env, (p) => {
      try {
        const st = fs.statSync(p, { throwIfNoEntry: false });
        return st !== undefined && st.isFile() && (st.mode & 0o111) !== 0;
      } catch {
        return false; // a name too long, say: not there
      }
    });
    ctx.add('missing-interpreter', n.path, `its #! line has ${n.interpreter} run ${n.env}, which ${envWhy}`,
      host !== undefined
        ? `add the program with elf(${jsString(host)}), which brings its libraries, or remove the script`
        : `install ${n.env} on the host and add it with elf(), or remove the script`);
  }
}
