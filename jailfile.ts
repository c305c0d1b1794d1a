// The default jail: the article's miniature Unix root (its directory tree, the conventional
// link, a minimal /dev, trimmed accounts, the system files a service needs).
// `npx jail make ROOT=/var/virtual/apache` builds it; every later run changes only what changed.

import { defineJail, dir, link, device, copy, text, users } from 'jail';

export default defineJail(({ ROOT, HOSTNAME = 'jail' }) => [
  // 1. the directory structure
  dir(['/bin', '/dev', '/etc', '/sbin', '/src', '/usr/bin', '/usr/lib', '/usr/sbin', '/var/log', '/var/run', '/var/www']),
  dir('/tmp', { mode: 0o1777 }),
  // 2. the conventional symbolic links
  link('/lib', 'usr/lib'),
  // 3. the devices the service needs, and no more
  device('/dev/null', { type: 'c', major: 1, minor: 3, mode: 0o666 }),
  device('/dev/zero', { type: 'c', major: 1, minor: 5, mode: 0o666 }),
  device('/dev/random', { type: 'c', major: 1, minor: 8, mode: 0o666 }),
  device('/dev/urandom', { type: 'c', major: 1, minor: 9, mode: 0o666 }),
  // 4. the system files: trimmed accounts, the jail's own hostname, services, time zone
  users({ 'www-data': { uid: 33, gid: 33, home: '/var/www', shell: '/usr/sbin/nologin' } }),
  text('/etc/hostname', `${HOSTNAME}\n`),
  text('/etc/motd', `This is the jail at ${ROOT}.\n`),
  copy('/etc/services'),
  copy('/usr/share/zoneinfo/UTC', { to: '/etc/localtime', follow: true }),
]);
