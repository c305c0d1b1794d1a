// Executable `#!` scripts whose interpreter the jail lacks (an rc script naming /bin/sh in a
// jail without a shell): the kernel refuses to start them, as it refuses an ELF program
// whose PT_INTERP is missing. The walk read each `#!` line; here each interpreter is
// looked up once, as the kernel would after chroot(ROOT): through the jail's own links,
// absolute ones restarting at ROOT and `..` stopping there, so never leaving ROOT.

import { jsString } from '../printable.js';
import { RootPaths } from '../elf/index.js';
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
  for (const n of ctx.nodes) {
    if (n.interpreter === undefined || !n.st.isFile()) continue;
    // `#!/usr/bin/env X` finds X through PATH when it runs; which PATH the service gets is
    // not knowable here, so only env itself is judged.
    const why = verdict(n.interpreter);
    if (why === undefined) continue;
    ctx.add('missing-interpreter', n.path, `its #! interpreter ${n.interpreter} ${why}`,
      `add the interpreter with elf(${jsString(n.interpreter)}), which brings its libraries, or remove the script`);
  }
}
