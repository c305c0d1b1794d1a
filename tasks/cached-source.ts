// Maps a line of a transpiled jailfile module (.jail/cache/<hash>.mjs) back to the .ts file
// and line a person wrote, from the module's inline source map. Node's own source-map
// support would do the same for every frame of every stack, parsing the maps of the tool's
// own modules too: tens of milliseconds a build, for the one frame an entry needs. The
// table is decoded once, when the module is made (load.ts), and kept beside it as
// <hash>.lines.json; a module without one has its map decoded when first asked.

import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A module's inline source map, as esbuild ends it: the base64 JSON is group 1. */
export const INLINE_MAP = /\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/;
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

interface LineTable {
  /** The .ts file the module was transpiled from. */
  source: string;
  /**
   * Per generated line (0-based): its mapped segments as pairs, generated column (0-based)
   * then original line (1-based), in column order. A line can hold code of several
   * original lines (esbuild prints `users({ ... })` on one line however it was written, and
   * starts a line with the tail of the one before), so the column picks the segment.
   */
  lines: number[][];
}

const tables = new Map<string, LineTable | null>();

export function isCachedModule(file: string): boolean {
  return file.includes('/.jail/cache/') && file.endsWith('.mjs');
}

/**
 * The original `file` and `line` of a frame (1-based line and column, as V8 counts) in a
 * cached module; undefined when it cannot tell.
 */
export function originalLine(file: string, line: number, column: number): { file: string; line: number } | undefined {
  let t = tables.get(file);
  if (t === undefined) {
    t = readTable(file);
    tables.set(file, t);
  }
  const segs = t?.lines[line - 1];
  if (!t || !segs?.length) return undefined;
  // The segment the column lies in: the last that starts at or before it.
  let orig = segs[1]!;
  for (let i = 2; i < segs.length && segs[i]! <= column - 1; i += 2) orig = segs[i + 1]!;
  return { file: t.source, line: orig };
}

/** The .ts file a cached module was made from; undefined when it cannot tell. */
export function originalSource(file: string): string | undefined {
  let t = tables.get(file);
  if (t === undefined) {
    t = readTable(file);
    tables.set(file, t);
  }
  return t?.source;
}

/** Where the line table of a cached module is kept. */
export function linesFile(module: string): string {
  return module.replace(/\.mjs$/, '.lines.json');
}

/** The line table of a cached module, as linesFile() keeps it. */
export function lineTableJson(moduleText: string): string | undefined {
  const t = tableOf(moduleText);
  return t ? JSON.stringify({ source: t.source, lines: t.lines }) : undefined;
}

function readTable(file: string): LineTable | null {
  try {
    const t = JSON.parse(fs.readFileSync(linesFile(file), 'utf8')) as { source?: unknown; lines?: unknown };
    if (typeof t.source === 'string' && Array.isArray(t.lines) && t.lines.every((l) => Array.isArray(l))) return { source: t.source, lines: t.lines as number[][] };
  } catch { /* none kept (or unreadable): decode the module's own map */ }
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch { return null; }
  return tableOf(text);
}

function tableOf(text: string): LineTable | null {
  const m = INLINE_MAP.exec(text);
  if (!m?.[1]) return null;
  let map: { sources?: unknown; mappings?: unknown };
  try { map = JSON.parse(Buffer.from(m[1], 'base64').toString('utf8')) as typeof map; } catch { return null; }
  const src = Array.isArray(map.sources) ? map.sources[0] : undefined;
  if (typeof src !== 'string' || typeof map.mappings !== 'string') return null;
  const source = src.startsWith('file://') ? fileURLToPath(src) : src;
  return { source, lines: decodeLines(map.mappings) };
}

/**
 * Each generated line's segments as (column, original line) pairs. The generated column is
 * a delta within its line; the fields after it are deltas carried across lines (source map
 * v3). A segment that names the same original line as the one before it adds nothing.
 */
function decodeLines(mappings: string): number[][] {
  const out: number[][] = [];
  let srcLine = 0;
  for (const group of mappings.split(';')) {
    const pairs: number[] = [];
    let col = 0;
    for (const seg of group.split(',')) {
      if (seg === '') continue;
      const f = vlq(seg);
      col += f[0] ?? 0;
      if (f.length < 4) continue;
      srcLine += f[2]!;
      if (pairs[pairs.length - 1] !== srcLine + 1) pairs.push(col, srcLine + 1);
    }
    out.push(pairs);
  }
  return out;
}

function vlq(seg: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (let i = 0; i < seg.length; i++) {
    const d = B64.indexOf(seg[i]!);
    if (d < 0) return out;
    value += (d & 31) << shift;
    if (d & 32) { shift += 5; continue; }
    out.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0;
    shift = 0;
  }
  return out;
}
