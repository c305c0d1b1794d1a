// layout(): the article's miniature Unix tree (bin dev etc sbin src tmp usr var) with the
// conventional links. On a merged-/usr host /bin, /sbin, /lib and /lib64 are links into
// usr/, and the jail mirrors them, so paths the loader and scripts use work unchanged.

import fs from 'node:fs';
import { arityOf, dir, link, type Entries } from '../tasks/entries.js';
import { callSite } from '../tasks/call-site.js';

const TOP_LEVEL = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

export function layout(...args: never[]): Entries {
  arityOf('layout()', args, 0, 'no arguments', callSite());
  const entries: Entries[] = [];
  for (const name of TOP_LEVEL) {
    const st = fs.lstatSync(`/${name}`, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) entries.push(link(`/${name}`, fs.readlinkSync(`/${name}`)));
    else if (st?.isDirectory() || name === 'bin' || name === 'sbin') entries.push(dir(`/${name}`));
  }
  entries.push(
    dir(['/dev', '/etc', '/src', '/usr', '/usr/bin', '/usr/sbin', '/usr/lib', '/var', '/var/log', '/var/run']),
    dir('/tmp', { mode: 0o1777 }),
  );
  return entries;
}
