// The `jail` module: what a jailfile imports, and make() for running a build from code.

export { defineJail, dir, link, device, copy, text, users, groups, elf, debianPackage, warning } from './entries.js';
export type { Entry, Entries, JailVars, JailDefinition, Attrs, CopyOptions, OwnerSpec, UserSpec, GroupSpec } from './entries.js';
export { make } from './make.js';
export type { MakeOptions, Report, ActionReport, MakeEvent } from './make.js';
export type { JailError } from './result.js';
