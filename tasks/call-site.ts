// Where in the jailfile an entry was declared, as `file:line`.
// Recipes are our own code, so the first stack frame outside this package is the
// jailfile line a person wrote: a frame in a transpiled module is mapped back to its .ts line.
//
// Every entry asks, so callSite() reads V8's frames as objects instead of formatting the
// stack as text and parsing it back; both ways see the same frames and pick the same one.

import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { isCachedModule, originalLine } from './cached-source.js';

/** The package's own directory (dist/ and the sources): frames in here are never the answer. */
const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OWN_DIST = path.join(PACKAGE_DIR, 'dist') + path.sep;
const OWN_SOURCES = [path.join(PACKAGE_DIR, 'tasks') + path.sep, path.join(PACKAGE_DIR, 'recipes') + path.sep];

// Anchored after `at ` or `(`: Node's own frames (`node:internal/modules/...:213:21`)
// hold a `/` too, and must not pass for a person's file.
const FRAME = /(?:^at (?:async )?|\()((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?$/;
/** A frame's file as FRAME accepts it: an absolute path or file: URL without `(`, `)` or `:`. */
const FRAME_FILE = /^(?:file:\/\/)?\/[^():]+$/;

type Line = { file: string; line: number };

/** A frame's file (an absolute path or file: URL) by what stacks print, and whether it is this package's. */
const files = new Map<string, { at: string; own: boolean }>();

function isOwn(file: string): boolean {
  return file.startsWith(OWN_DIST) || OWN_SOURCES.some((d) => file.startsWith(d)) || file.includes('/node_modules/');
}

/** The .ts line a person wrote behind a frame at `name`:`line`:`column`; undefined for this package's frames and dependencies'. */
function personLine(name: string, line: number, column: number): Line | undefined {
  let f = files.get(name);
  if (f === undefined) {
    const at = name.startsWith('file://') ? fileURLToPath(name) : name;
    f = { at, own: !isCachedModule(at) && isOwn(at) };
    files.set(name, f);
  }
  if (f.own) return undefined;
  const orig = isCachedModule(f.at) ? originalLine(f.at, line, column) : { file: f.at, line };
  if (!orig || isOwn(orig.file)) return undefined;
  return orig;
}

/** The first frame of a stack in a person's file (not this package's, not a dependency's), as the .ts line. */
export function personFrame(stack: string): Line | undefined {
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m || m[1] === undefined) continue;
    const orig = personLine(m[1], Number(m[2]), Number(m[3]));
    if (orig) return orig;
  }
  return undefined;
}

/** The frames of a `new Error()` made in callSite(), as V8's objects. */
function frames(): NodeJS.CallSite[] {
  const prepare = Error.prepareStackTrace;
  Error.prepareStackTrace = (_, sites) => sites;
  try {
    const holder: { stack?: NodeJS.CallSite[] } = {};
    // Omitting this function's frame leaves callSite()'s first, as in `new Error()` there.
    Error.captureStackTrace(holder, frames);
    return holder.stack ?? [];
  } finally {
    Error.prepareStackTrace = prepare;
  }
}

const shown = new Map<string, string>();

export function callSite(): string {
  let f: Line | undefined;
  for (const s of frames()) {
    const name = s.getScriptNameOrSourceURL();
    if (!name || s.isEval() || !FRAME_FILE.test(name)) continue;
    f = personLine(name, s.getLineNumber() ?? 0, s.getColumnNumber() ?? 0);
    if (f) break;
  }
  if (!f) return '(jailfile)';
  const cwd = process.cwd();
  const key = `${cwd}\0${f.file}`;
  let rel = shown.get(key);
  if (rel === undefined) {
    rel = path.relative(cwd, f.file) || f.file;
    shown.set(key, rel);
  }
  return `${rel}:${f.line}`;
}
