// File names that are not valid UTF-8. Linux names are bytes; jail's paths are JS strings,
// and Node decodes a bad byte to U+FFFD, so the name read back names no file and an
// entry in ROOT would vanish from every walk of it. Such a name is carried instead with
// each bad byte as a lone surrogate U+DC80-U+DCFF (Python's "surrogateescape"): valid
// UTF-8 never decodes to a lone surrogate, so the string names exactly one byte string,
// printable() shows the byte as \xNN, and bytesOf() gives fs the name's real bytes.

import fs from 'node:fs';
import { printable } from './printable.js';

const strict = new TextDecoder('utf-8', { fatal: true });

/** An escaped byte: a low surrogate of the range, not the second half of a pair. */
const ESCAPED = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** Does this name or path hold a byte that is not UTF-8 (as nameOf() carries it)? */
export const hasRawBytes = (s: string): boolean => ESCAPED.test(s);

/** Length of the valid UTF-8 sequence at `i`, or 0 when the byte there starts none. */
function seqLength(b: Buffer, i: number): number {
  const c = b[i]!;
  const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n <= 1 || i + n > b.length) return n === 1 ? 1 : 0;
  try { strict.decode(b.subarray(i, i + n)); return n; } catch { return 0; }
}

/** A name read as bytes, as a string: itself when it is UTF-8, else with each bad byte escaped. */
export function nameOf(raw: Buffer): string {
  const s = raw.toString('utf8');
  if (!s.includes('\uFFFD') || Buffer.from(s).equals(raw)) return s;
  let out = '';
  for (let i = 0; i < raw.length;) {
    const n = seqLength(raw, i);
    if (n === 0) { out += String.fromCharCode(0xdc00 + raw[i]!); i++; continue; }
    out += raw.toString('utf8', i, i + n);
    i += n;
  }
  return out;
}

/** What to hand fs for a name or path nameOf() made: the string itself, or its real bytes. */
export function bytesOf(s: string): string | Buffer {
  if (!ESCAPED.test(s)) return s;
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc80 || c > 0xdcff || (i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff)) continue;
    parts.push(Buffer.from(s.slice(from, i)), Buffer.of(c - 0xdc00));
    from = i + 1;
  }
  parts.push(Buffer.from(s.slice(from)));
  return Buffer.concat(parts);
}

/** `dir` + '/' + `name`, as a path fs takes: a Buffer when the name holds raw bytes. */
export function joinBytes(dir: string, name: string): string | Buffer {
  const n = bytesOf(name);
  return typeof n === 'string' ? `${dir}/${n}` : Buffer.concat([Buffer.from(`${dir}/`), n]);
}

/**
 * The names in a directory, none lost to decoding: read as strings (Node's fast path) and,
 * only when one may hold a bad byte, again as bytes.
 */
export function readNames(dir: string | Buffer): string[] {
  const names = fs.readdirSync(dir);
  if (!names.some((n) => n.includes('\uFFFD'))) return names;
  return fs.readdirSync(dir, { encoding: 'buffer' }).map(nameOf);
}

/**
 * When a host path read as text names nothing (ENOENT) and holds U+FFFD: the path with the
 * bytes it really has (escaped as nameOf() does) if one of its names is not UTF-8, else undefined.
 */
export function hostBadName(p: string): string | undefined {
  if (!p.includes('\uFFFD')) return undefined;
  const parts = p.split('/');
  for (let i = 1; i < parts.length; i++) {
    if (!parts[i]!.includes('\uFFFD')) continue;
    const dir = parts.slice(0, i).join('/') || '/';
    let raw: Buffer[];
    try { raw = fs.readdirSync(dir, { encoding: 'buffer' }); } catch { return undefined; }
    const hit = raw.find((b) => b.toString('utf8') === parts[i] && !Buffer.from(parts[i]!).equals(b));
    if (hit) return `${dir === '/' ? '' : dir}/${nameOf(hit)}`;
  }
  return undefined;
}

/** Why a host name hostBadName() found cannot go into the jail, and what to do; `found`: how the entry met it, if not by naming it. */
export function badNameMessage(bad: string, found: string): string {
  return `the host name ${printable(bad)} is not valid UTF-8 (shown escaped)${found ? ` (${found})` : ''}; ` +
    `jail's paths are UTF-8 text, so it cannot copy it. Rename it on the host, or narrow the pattern so it is left out.`;
}
