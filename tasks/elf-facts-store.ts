// Parsed ELF facts survive between builds in the install directory, keyed by each file's
// stat, so a no-op build of a jail full of programs re-reads no binary.

import fs from 'node:fs';
import path from 'node:path';
import { ElfFactsCache } from './elf/index.js';
import { stateDir } from './manifest.js';

const FILE = 'elf-facts.json';

export function loadElfFacts(installDir: string): ElfFactsCache {
  try {
    return ElfFactsCache.fromJSON(JSON.parse(fs.readFileSync(path.join(stateDir(installDir), FILE), 'utf8')));
  } catch {
    return new ElfFactsCache();
  }
}

export function saveElfFacts(installDir: string, cache: ElfFactsCache): void {
  try {
    const file = path.join(stateDir(installDir), FILE);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(cache.toJSON()));
    fs.renameSync(tmp, file);
  } catch {
    // Only speed is lost: the facts are read again next time.
  }
}
