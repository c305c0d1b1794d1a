// Public face of the ELF reader and library resolver that the build engine calls:
// readElf for one file's facts, Resolver.closure for what the loader would open, and
// ElfFactsCache so a no-op rebuild re-reads no binaries.

import * as path from 'node:path';
import type { Result } from '../result.js';
import { readElfPath } from './elf-file.js';
import type { ElfInfo } from './elf-file.js';

export type { ElfInfo } from './elf-file.js';
export { LIMITS as ELF_LIMITS, parseElfFd } from './elf-file.js';
export { ElfFactsCache } from './cache.js';
export { Resolver, CLOSURE_LIMITS, isDst, summarize, summaryKey, unstartable } from './resolve.js';
export type { Closure, ClosureSummary, ResolverOptions } from './resolve.js';
export { parseLdCache, lookupLdCache, lookupLdCacheEntry, cacheKeyOf } from './ld-cache.js';
export { formatLdCache, libcmp } from './ld-cache-write.js';
export { openLdCache } from './ld-cache-search.js';
export type { LdCacheIndex } from './ld-cache-search.js';
export type { CacheRecord } from './ld-cache-write.js';
export type { LdCache, LdCacheEntry } from './ld-cache.js';
export { readLdConf, globInRoot } from './ld-conf.js';
export type { LdConf } from './ld-conf.js';
export { RootPaths } from './root-path.js';
export type { Lookup } from './root-path.js';
export { profileFor, genericProfile } from './platform.js';
export type { MachineProfile } from './platform.js';

/**
 * Facts of one host file (symlinks followed). null when it is not an ELF file at all
 * (a script, a text file); an error value when it is a broken ELF or unreadable.
 */
export function readElf(file: string): Result<ElfInfo | null> {
  return readElfPath(path.resolve(file));
}
