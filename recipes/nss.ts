// nss(): name-service files written for the jail, never the host's: a host nsswitch.conf
// naming sss, systemd or resolve makes lookups fail inside a jail that lacks them.

import { attrsOf, text, type Entries } from '../tasks/entries.js';
import { callSite } from '../tasks/call-site.js';
import { hostName } from './hostname.js';

export function nss(opts: { hostname?: string } = {}): Entries {
  const at = callSite();
  attrsOf('nss({ ... })', opts, ['hostname'], at);
  const host = opts.hostname ? ` ${hostName('nss({ hostname })', opts.hostname, at)}` : '';
  return [
    text('/etc/nsswitch.conf', [
      'passwd:   files', 'group:    files', 'shadow:   files', 'hosts:    files dns',
      'networks: files', 'protocols: files', 'services: files', '',
    ].join('\n')),
    text('/etc/host.conf', 'multi on\n'),
    text('/etc/hosts', `127.0.0.1\tlocalhost${host}\n::1\tlocalhost ip6-localhost ip6-loopback\n`),
  ];
}
