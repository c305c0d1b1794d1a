// Where in the jailfile an entry was declared, as `file:line`.
// Recipes are our own code, so the first stack frame outside this package is the
// jailfile line a person wrote: a frame in a transpiled module is mapped back to its .ts line.

import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { isCachedModule, originalLine } from './cached-source.js';

/** The package's own directory (dist/ and the sources): frames in here are never the answer. */
const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OWN_DIST = path.join(PACKAGE_DIR, 'dist') + path.sep;
const OWN_SOURCES = [path.join(PACKAGE_DIR, 'tasks') + path.sep, path.join(PACKAGE_DIR, 'recipes') + path.sep];

const FRAME = /\(?((?:file:\/\/)?\/[^():]+):(\d+):\d+\)?$/;

/** The first frame of a stack in a person's file (not this package's, not a dependency's), as the .ts line. */
export function personFrame(stack: string): { file: string; line: number } | undefined {
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m || m[1] === undefined) continue;
    const at = m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1];
    const orig = isCachedModule(at) ? originalLine(at, Number(m[2])) : { file: at, line: Number(m[2]) };
    if (!orig) continue;
    const { file } = orig;
    if (file.startsWith(OWN_DIST) || OWN_SOURCES.some((d) => file.startsWith(d)) || file.includes('/node_modules/')) continue;
    return orig;
  }
  return undefined;
}

export function callSite(): string {
  const f = personFrame(new Error().stack ?? '');
  return f ? `${path.relative(process.cwd(), f.file) || f.file}:${f.line}` : '(jailfile)';
}
