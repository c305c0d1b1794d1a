// Jail fragments a jailfile composes (`import { ... } from 'jail/recipes'`): plain
// functions returning entries, so a recipe is read and reviewed like any jailfile.

export { layout } from './layout.js';
export { devices, DEVICES } from './devices.js';
export { nss } from './nss.js';
export { dns } from './dns.js';
export { timezone } from './timezone.js';
export { shell, SHELL_TOOLS } from './shell.js';
export { service, shQuote, type ServiceOptions } from './service.js';
export { apache, apacheConfig, DEFAULT_MODULES, type ApacheOptions } from './apache.js';
export { users, groups, debianPackage } from '../tasks/entries.js';
