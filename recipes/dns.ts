// dns(): the host's resolver configuration, by content (resolv.conf is often a symlink
// into /run, which the jail does not have), with a warning for a local stub resolver.

import fs from 'node:fs';
import { arityOf, copy, warning, type Entries } from '../tasks/entries.js';
import { callSite } from '../tasks/call-site.js';

export function dns(...args: never[]): Entries {
  arityOf('dns()', args, 0, 'no arguments', callSite());
  let content = '';
  try { content = fs.readFileSync('/etc/resolv.conf', 'utf8'); } catch { /* copy() reports the missing file */ }
  return [
    copy('/etc/resolv.conf', { follow: true, mode: 0o644 }),
    /^\s*nameserver\s+127\.0\.0\.53\b/m.test(content) &&
      warning('dns(): /etc/resolv.conf names 127.0.0.53, the host\'s local stub resolver; a jail with its own network cannot reach it. Name a real nameserver for the jail.'),
  ];
}
