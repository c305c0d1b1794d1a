// devices(...names): MAKEDEV for jails. Only pseudo-devices a service may need, by name,
// with the numbers Linux gives them; the ones that reach the host's memory, ports or
// kernel log must be asked for one at a time with { dangerous: true }.

import { attrsOf, device, dir, EntryUsageError, flagOf, type Entries } from '../tasks/entries.js';
import { callSite } from '../tasks/call-site.js';

interface Dev { major: number; minor: number; mode: number; dangerous?: true }

export const DEVICES: Record<string, Dev> = {
  null: { major: 1, minor: 3, mode: 0o666 },
  zero: { major: 1, minor: 5, mode: 0o666 },
  full: { major: 1, minor: 7, mode: 0o666 },
  random: { major: 1, minor: 8, mode: 0o666 },
  urandom: { major: 1, minor: 9, mode: 0o666 },
  tty: { major: 5, minor: 0, mode: 0o666 },
  console: { major: 5, minor: 1, mode: 0o600 },
  ptmx: { major: 5, minor: 2, mode: 0o666 },
  mem: { major: 1, minor: 1, mode: 0o640, dangerous: true },
  kmem: { major: 1, minor: 2, mode: 0o640, dangerous: true },
  port: { major: 1, minor: 4, mode: 0o640, dangerous: true },
  kmsg: { major: 1, minor: 11, mode: 0o644, dangerous: true },
};

export function devices(...args: (string | { dangerous?: boolean })[]): Entries {
  const at = callSite();
  // An array is a list of names written as one argument, not the options: it would build nothing.
  const list = args.find((a) => Array.isArray(a)) as unknown[] | undefined;
  if (list) {
    throw new EntryUsageError(`devices(${JSON.stringify(list)}) takes the device names as separate arguments, not a list: ` +
      `devices(${list.map((n) => JSON.stringify(n)).join(', ')})`, at);
  }
  const last = args.at(-1);
  const opts = typeof last === 'object' && last !== null ? (args.pop() as { dangerous?: boolean }) : {};
  const names = args as string[];
  attrsOf(`devices(${names.map((n) => JSON.stringify(n)).join(', ')})`, opts, ['dangerous'], at);
  flagOf(`devices(${names.map((n) => JSON.stringify(n)).join(', ')})`, 'dangerous', opts.dangerous, at);
  const out: Entries[] = [];
  for (const name of names) {
    const d = DEVICES[name];
    if (!d) {
      throw new EntryUsageError(`devices(${JSON.stringify(name)}): no such device; known: ${Object.keys(DEVICES).filter((n) => !DEVICES[n]!.dangerous).join(', ')}`, at);
    }
    if (d.dangerous && !(opts.dangerous === true && names.length === 1)) {
      throw new EntryUsageError(`devices(${JSON.stringify(name)}) is refused: /dev/${name} (${d.major}:${d.minor}) gives a jailed process the host's ` +
        `${name === 'kmsg' ? 'kernel log' : name === 'port' ? 'I/O ports' : 'memory'}, a way out of the jail. Leave it out; if the service truly needs it, ` +
        `ask for it alone: devices(${JSON.stringify(name)}, { dangerous: true })`, at);
    }
    out.push(device(`/dev/${name}`, { type: 'c', major: d.major, minor: d.minor, mode: d.mode, dangerous: d.dangerous === true }));
    if (name === 'ptmx') out.push(dir('/dev/pts'));
  }
  return out;
}
