// The `jail` module: what a jailfile imports, and make() for running a build from code.

export { defineJail, dir, link, device, copy, text, users, groups, elf, debianPackage, warning, allow, runtime, data, install } from './entries.js';
export type { Entry, Entries, JailVars, JailDefinition, Attrs, CopyOptions, OwnerSpec, UserSpec, GroupSpec, RuntimeSpec } from './entries.js';
export { make, analyze } from './make.js';
export type { MakeOptions, Report, ActionReport, MakeEvent, Analysis } from './make.js';
export type { JailError } from './result.js';
export { check, FINDING_KINDS } from './check/index.js';
export type { CheckInput, CheckOptions, CheckResult, Finding, FindingKind } from './check/index.js';
