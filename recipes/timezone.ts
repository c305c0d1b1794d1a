// timezone(zone?): etc/localtime as a link to its zoneinfo file, and that file, so
// programs that read TZ data by name and those that read /etc/localtime agree.

import fs from 'node:fs';
import { copy, link, EntryUsageError, type Entries } from '../tasks/entries.js';
import { callSite } from '../tasks/call-site.js';

const ZONEINFO = '/usr/share/zoneinfo/';

/** The host's zone, from its /etc/localtime link; UTC when it has none. */
function hostZone(): string {
  try {
    const t = fs.readlinkSync('/etc/localtime');
    const i = t.indexOf('zoneinfo/');
    if (i >= 0) return t.slice(i + 'zoneinfo/'.length);
  } catch { /* not a link */ }
  return 'UTC';
}

export function timezone(zone?: string): Entries {
  const at = callSite();
  const z = zone ?? hostZone();
  if (!/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/.test(z)) throw new EntryUsageError(`timezone(${JSON.stringify(z)}): not a zone name such as Europe/Paris or UTC`, at);
  // A region (Europe) is a directory of zones: /etc/localtime would name a directory.
  if (fs.statSync(ZONEINFO + z, { throwIfNoEntry: false })?.isDirectory()) {
    throw new EntryUsageError(`timezone(${JSON.stringify(z)}): ${ZONEINFO}${z} is a directory of zones, not a zone; name one of them, such as ${z}/${fs.readdirSync(ZONEINFO + z).sort()[0] ?? 'Paris'}`, at);
  }
  return [
    copy(ZONEINFO + z, { follow: true, mode: 0o644 }),
    link('/etc/localtime', ZONEINFO + z),
  ];
}
