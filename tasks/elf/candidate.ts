// open_verify as a value: whether a file met while searching could be loaded next to a
// given program. The answer depends only on the tree and on the program's ELF class, byte
// order and machine, so a memoizing Resolver keeps one answer per (kind of program, path)
// instead of asking again for each of hundreds of programs.

import { type ElfFactsCache } from './cache.js';
import { peekIdent, type ElfInfo } from './elf-file.js';
import { type RootPaths } from './root-path.js';

export type Candidate =
  | { kind: 'ok'; info: ElfInfo; id: string }
  /** probe: nothing at the path (a search records it, since a file appearing there changes the answer). */
  | { kind: 'absent'; probe: boolean }
  | { kind: 'skip'; reason: string }
  | { kind: 'fatal'; reason: string };

const DF_1_PIE = 0x08000000;

/** What examining a path leaves in a closure's records: a missing path, or a file passed over. */
export type SearchEvent = { probe: string } | { skip: string; reason: string };

export function eventOf(p: string, c: Candidate): SearchEvent | undefined {
  if (c.kind === 'absent' && c.probe) return { probe: p };
  if (c.kind === 'skip') return { skip: p, reason: c.reason };
  return undefined;
}

/** Where to look: the root, its facts cache, and how to name a path in messages. */
export interface Examiner {
  readonly fsr: RootPaths;
  readonly facts: ElfFactsCache;
  describe(p: string): string;
}

/** Can the file at loader path p be loaded into program m? */
export function examine(x: Examiner, p: string, m: ElfInfo): Candidate {
  const fsr = x.fsr;
  const look = fsr.lookup(p);
  if (look.kind !== 'found') return { kind: 'absent', probe: true };
  if (look.st.isDirectory()) return { kind: 'fatal', reason: 'it is a directory (cannot read file data)' };
  if (!look.st.isFile()) return { kind: 'fatal', reason: 'it is not a regular file' };
  const r = x.facts.getWithStat(look.host, look.st, { noFollow: !fsr.isHostRoot, displayPath: x.describe(p) });
  if (!r.ok) {
    // open() failing with EACCES lets the loader continue its search.
    if (r.error.code === 'elf-unreadable') return { kind: 'absent', probe: false };
    const id = peekIdent(look.host, !fsr.isHostRoot);
    if (id && id.class !== (m.class === 64 ? 2 : 1)) return { kind: 'skip', reason: `wrong ELF class: ELFCLASS${id.class === 2 ? 64 : 32}` };
    if (id && id.endian === m.endian && id.machine !== m.machine) {
      return { kind: 'skip', reason: `wrong machine (e_machine ${id.machine}, the program has ${m.machine})` };
    }
    return { kind: 'fatal', reason: r.error.message };
  }
  const info = r.value;
  if (info === null) return { kind: 'fatal', reason: 'invalid ELF header' };
  if (info.class !== m.class) return { kind: 'skip', reason: `wrong ELF class: ELFCLASS${info.class}` };
  if (info.endian !== m.endian) return { kind: 'fatal', reason: `ELF file data encoding not ${m.endian === 'le' ? 'little' : 'big'}-endian` };
  if (info.machine !== m.machine) return { kind: 'skip', reason: `wrong machine (e_machine ${info.machine}, the program has ${m.machine})` };
  if (info.defects.length > 0) return { kind: 'fatal', reason: info.defects.join('; ') };
  // _dl_map_object_from_fd refuses a program after open_verify accepted it: the search is
  // over, and the process fails to start.
  if (info.type === 'exec') return { kind: 'fatal', reason: 'cannot dynamically load executable' };
  if ((info.flags1 & DF_1_PIE) !== 0) return { kind: 'fatal', reason: 'cannot dynamically load position-independent executable' };
  // No NT_GNU_ABI_TAG check: glibc 2.36 dropped it from open_verify with the kernel
  // version check, and loads a library whose note names another OS.
  return { kind: 'ok', info, id: `${look.st.dev}:${look.st.ino}` };
}
