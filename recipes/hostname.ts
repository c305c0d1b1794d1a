// A host name as the recipes write it into etc/hosts, etc/hostname and the Apache
// configuration: a line-based file takes anything after the name as more of the file, so
// `HOSTNAME='a b\n1.2.3.4 evil'` must be refused, not written.

import { EntryUsageError } from '../tasks/entries.js';

/** RFC 1123 labels: letters, digits and inner hyphens, 63 bytes each, 253 in all, an optional final dot. */
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** `name` when it is a host name; else the entry's usage error, at the jailfile line `at`. */
export function hostName(label: string, name: string, at: string): string {
  const bare = typeof name === 'string' && name.endsWith('.') ? name.slice(0, -1) : name;
  if (typeof bare !== 'string' || bare.length === 0 || bare.length > 253 || !bare.split('.').every((l) => LABEL.test(l))) {
    throw new EntryUsageError(`${label}: ${JSON.stringify(name)} is not a host name (letters, digits, hyphens and dots, such as www.example.org)`, at);
  }
  return name;
}
