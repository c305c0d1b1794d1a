// shell(): /bin/sh and a few basic utilities, with their closures, for experimenting
// inside the jail (`chroot ROOT /bin/sh`). Leave it out of a production jail.

import fs from 'node:fs';
import { elf, EntryUsageError, type Entries } from '../tasks/entries.js';
import { callSite } from '../tasks/call-site.js';

export const SHELL_TOOLS = ['/bin/sh', '/usr/bin/ls', '/usr/bin/cat', '/usr/bin/echo', '/usr/bin/id', '/usr/bin/date', '/usr/bin/getent',
  '/usr/bin/env', '/usr/bin/hostname', '/usr/bin/mkdir', '/usr/bin/rm', '/usr/bin/cp', '/usr/bin/mv', '/usr/bin/grep', '/usr/bin/head',
  '/usr/bin/tail', '/usr/bin/wc', '/usr/bin/sleep', '/usr/bin/true', '/usr/bin/false', '/usr/bin/uname', '/usr/bin/test',
  '/usr/bin/chmod', '/usr/bin/chown', '/usr/bin/ln', '/usr/bin/touch', '/usr/bin/sed', '/usr/bin/sort', '/usr/bin/tr', '/usr/bin/cut',
  '/usr/bin/readlink', '/usr/bin/dirname', '/usr/bin/basename', '/usr/bin/find'];

export function shell(extra: string[] = []): Entries {
  // A lone string would be spread into its characters.
  if (!Array.isArray(extra) || extra.some((p) => typeof p !== 'string')) {
    throw new EntryUsageError(`shell(${JSON.stringify(extra)}) takes a list of extra programs, such as shell(['/bin/bash']); got ${JSON.stringify(extra)}`, callSite());
  }
  // Tools a host lacks are skipped rather than failing the build: this is a convenience set.
  const present = SHELL_TOOLS.filter((p) => fs.existsSync(p));
  return elf(...present, ...extra);
}
