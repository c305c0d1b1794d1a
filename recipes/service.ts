// service(name, { start, stop }): an etc/rc.d/NNname.sh script with start, stop and
// restart, like the article's 50apache.sh, whose `ulimit -t 300` is the jail's own CPU
// limit (runtime()'s, 300 s by default), which boot sets before the script runs. The
// script runs under /bin/sh, so the service brings it: a jail without shell() still boots.
//
// Limits of its own (limits.cpu, files, core) are set by the script, inside the jail, as
// the jail user, who can lower a hard limit but never raise one: so a service with its
// own CPU limit also tells runtime() of it, and boot sets the jail's hard limit to the
// largest asked (see run/config.ts). Without one the script sets no CPU limit, and the
// service keeps runtime()'s. A limit the script still cannot set fails its start, and
// boot reports that instead of ok.

import { attrsOf, elf, text, EntryUsageError, type Entries, type RuntimeEntry } from '../tasks/entries.js';
import { callSite } from '../tasks/call-site.js';

export interface ServiceOptions {
  /** The command that starts the service, as an argument list (run inside the jail). */
  start: string[];
  /** The command that stops it. */
  stop: string[];
  /** Limits for ulimit: CPU seconds (default: runtime()'s, itself 300 by default as in the article), open files, core size (default 0). */
  limits?: { cpu?: number | 'unlimited'; files?: number; core?: number };
  /** Two digits: the order the rc scripts run in (default 50). */
  order?: number;
}

/** Quotes one word for the jail's /bin/sh (POSIX single quotes: nothing inside is special). */
export function shQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function service(name: string, opts: ServiceOptions): Entries {
  const at = callSite();
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) throw new EntryUsageError(`service(${JSON.stringify(name)}): a service name is lower-case letters, digits, - and _`, at);
  attrsOf(`service(${JSON.stringify(name)})`, opts ?? null, ['start', 'stop', 'limits', 'order'], at);
  attrsOf(`service(${JSON.stringify(name)}, { limits })`, opts.limits, ['cpu', 'files', 'core'], at);
  for (const k of ['start', 'stop'] as const) {
    if (!Array.isArray(opts?.[k]) || opts[k].length === 0 || opts[k].some((w) => typeof w !== 'string')) {
      throw new EntryUsageError(`service(${JSON.stringify(name)}): ${k} must be a command as a list of words, e.g. ['/usr/sbin/apache2ctl', '${k}']`, at);
    }
  }
  const order = opts.order ?? 50;
  if (!Number.isInteger(order) || order < 0 || order > 99) throw new EntryUsageError(`service(${JSON.stringify(name)}): order must be 0 to 99`, at);
  const cpu = opts.limits?.cpu;
  const whole = (k: 'cpu' | 'files' | 'core', v: unknown, min: number) => {
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= min) && !(k === 'cpu' && v === 'unlimited')) {
      throw new EntryUsageError(`service(${JSON.stringify(name)}): limits.${k} must be a whole number${min ? ', at least 1' : ''}${k === 'cpu' ? ", or 'unlimited'" : ''}, got ${JSON.stringify(v)}`, at);
    }
  };
  whole('cpu', opts.limits?.cpu, 1);
  whole('files', opts.limits?.files, 1);
  whole('core', opts.limits?.core, 0);
  const lines = [
    '#!/bin/sh',
    `# ${name}: started at boot by jail, inside the jail. Generated from the jailfile; edits are overwritten.`,
    `# prevent runaways; a limit that cannot be set is a failed start, not a silent one`,
    ...(cpu !== undefined ? [`ulimit -t ${cpu} || exit 1`] : []),
    `ulimit -c ${opts.limits?.core ?? 0} || exit 1`,
    ...(opts.limits?.files ? [`ulimit -n ${opts.limits.files} || exit 1`] : []),
    'case "${1:-start}" in',
    `  start) echo "Starting ${name}"; exec ${opts.start.map(shQuote).join(' ')} ;;`,
    `  stop) echo "Stopping ${name}"; exec ${opts.stop.map(shQuote).join(' ')} ;;`,
    `  restart) "$0" stop; exec "$0" start ;;`,
    `  *) echo "usage: $0 [start|stop|restart]" >&2; exit 1 ;;`,
    'esac',
    '',
  ];
  // The same /bin/sh as shell()'s: identical declarations of one path merge.
  const script = text(`/etc/rc.d/${String(order).padStart(2, '0')}${name}.sh`, lines.join('\n'), { mode: 0o755 });
  if (cpu === undefined) return [elf('/bin/sh'), script];
  const limit: RuntimeEntry = { kind: 'runtime', at, label: `service(${JSON.stringify(name)})`, spec: {}, serviceCpu: cpu };
  return [elf('/bin/sh'), script, limit];
}
