// The article's Apache jail: a miniature Unix root holding Debian's apache2 and nothing
// it does not need. `npx jail make ROOT=/var/virtual/apache` builds it; every later run
// changes only what changed. Variables: ROOT (required), ADDR, PORT, HOSTNAME, SITE (a host
// directory to serve instead of the built-in index page), SHELL=no (leave the shell out).

import { defineJail, text } from 'jail';
import { layout, devices, users, nss, dns, timezone, shell, apache, service } from 'jail/recipes';

export default defineJail(({ ADDR = '127.0.0.1', PORT = '8080', HOSTNAME = 'www.jail.test', SITE, SHELL = 'yes' }) => [
  // 1. the directory structure, and 2. the conventional links (mirroring this host's merged /usr)
  layout(),
  // 3. the devices the service needs, and no more
  devices('null', 'zero', 'random', 'urandom'),
  // 4. the system files: trimmed accounts, name service, resolver, time zone, hostname
  users({ 'www-data': { uid: 33, gid: 33, home: '/var/www', shell: '/usr/sbin/nologin' } }),
  nss({ hostname: HOSTNAME }),
  dns(),
  timezone(),
  text('/etc/hostname', `${HOSTNAME}\n`),
  // the service itself, with its configuration generated for the jail
  apache({ listen: `${ADDR}:${PORT}`, serverName: HOSTNAME, index: SITE ? { site: SITE } : undefined }),
  // started at boot by the jail's rc.d, under runtime's 300 s of CPU (the article's `ulimit -t 300`) against runaways
  service('apache', {
    start: ['/usr/sbin/apache2', '-f', '/etc/apache2/apache2.conf', '-k', 'start'],
    stop: ['/usr/sbin/apache2', '-f', '/etc/apache2/apache2.conf', '-k', 'stop'],
  }),
  // a shell and basic tools for experimenting inside the jail (SHELL=no leaves them out)
  SHELL !== 'no' && shell(),
]);
