// Reading a pack, which is untrusted input. The archive is parsed by node-tar (strict, with
// a decompression-ratio cap) but nothing is extracted by it: each file body is streamed to a
// numbered file in a fresh staging directory outside ROOT, checked against the index's
// size and sha256, and only the validated index decides what goes where. So `..`, absolute
// names, links, devices and hard links in the archive can only be refused, never followed.

import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Parser, type ReadEntry } from 'tar';
import { jailError, type JailError } from '../result.js';
import { FILES_PREFIX, INDEX_NAME, LIMITS, validateIndex, type PackIndex } from './format.js';

export interface ReadPack {
  index: PackIndex;
  /** Jail path -> the staged file holding its bytes. */
  staged: Map<string, string>;
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

function isCompressed(file: string): boolean {
  const head = Buffer.alloc(4);
  let n = 0;
  try {
    const fd = fs.openSync(file, 'r');
    try { n = fs.readSync(fd, head, 0, 4, 0); } finally { fs.closeSync(fd); }
  } catch { return false; } // the read below reports it
  return head.subarray(0, 2).equals(GZIP_MAGIC) || (n === 4 && head.equals(ZSTD_MAGIC));
}

export async function readPack(file: string, staging: string): Promise<{ pack?: ReadPack; errors: JailError[] }> {
  const errors: JailError[] = [];
  const refuse = (entry: string, why: string) =>
    errors.push(jailError('bad-pack', `The pack ${file} is refused: entry ${JSON.stringify(entry)} ${why}. Nothing was changed.`, { path: entry }));
  let size: number;
  try { size = fs.statSync(file).size; } catch (err) {
    return { errors: [jailError('bad-pack', `Cannot read the pack ${file} (${(err as NodeJS.ErrnoException).code}). Name an archive made by \`jail pack\` with FROM=.`, { path: file })] };
  }
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true, mode: 0o700 });

  const staged = new Map<string, { file: string; size: number; sha256: string }>();
  let indexText = '';
  let count = 0;
  let total = 0;
  // Compressed or not by its first bytes, as node-tar's Parser decides (gzip or zstd), not by its name.
  const compressed = isCompressed(file);

  await new Promise<void>((resolve) => {
    const parser = new Parser({
      strict: true,
      maxDecompressionRatio: LIMITS.ratio,
      onReadEntry: (entry: ReadEntry) => {
        const name = entry.path;
        if (++count > LIMITS.entries) { refuse(name, `makes the archive longer than ${LIMITS.entries} entries`); entry.resume(); return; }
        if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
          refuse(name, `is a ${entry.type} entry; a pack holds regular files only (links, devices and owners are in its index)`);
          entry.resume();
          return;
        }
        if (name === INDEX_NAME) {
          entry.on('data', (d: Buffer) => {
            if (indexText.length + d.length > LIMITS.indexBytes) { refuse(name, 'is too large'); return; }
            indexText += d.toString('utf8');
          });
          return;
        }
        const rel = name.startsWith(FILES_PREFIX) ? name.slice(FILES_PREFIX.length) : undefined;
        const jailPath = rel === undefined ? undefined : '/' + rel;
        if (jailPath === undefined || path.posix.normalize(jailPath) !== jailPath || rel!.split('/').some((c) => c === '..' || c === '.' || c === '') || jailPath.includes('\0')) {
          refuse(name, 'is not a file of the jail (a name with .. or an absolute path?)');
          entry.resume();
          return;
        }
        if (jailPath.split('/').length - 1 > LIMITS.depth) { refuse(name, `is nested deeper than ${LIMITS.depth} levels`); entry.resume(); return; }
        if (staged.has(jailPath)) { refuse(name, 'appears twice'); entry.resume(); return; }
        const target = path.join(staging, String(staged.size));
        const fd = fs.openSync(target, 'wx', 0o600);
        const hash = createHash('sha256');
        let n = 0;
        entry.on('data', (d: Buffer) => {
          n += d.length;
          total += d.length;
          if (total > LIMITS.totalBytes || (compressed && total > size * LIMITS.ratio + 64 * 1024 * 1024)) return;
          hash.update(d);
          fs.writeSync(fd, d);
        });
        entry.on('end', () => {
          fs.closeSync(fd);
          staged.set(jailPath, { file: target, size: n, sha256: hash.digest('hex') });
        });
      },
    });
    parser.on('warn', (code: string, message: string) => { refuse('(archive)', `is damaged: ${code} ${message}`); });
    parser.on('error', (err: Error) => { refuse('(archive)', `could not be read: ${err.message}`); resolve(); });
    parser.on('end', () => resolve());
    parser.on('close', () => resolve());
    const input = fs.createReadStream(file);
    input.on('error', (err) => { refuse('(archive)', `could not be read: ${err.message}`); resolve(); });
    input.pipe(parser as unknown as NodeJS.WritableStream);
  });

  if (total > LIMITS.totalBytes || (compressed && total > size * LIMITS.ratio + 64 * 1024 * 1024)) {
    refuse('(archive)', `expands to more than ${LIMITS.ratio} times its size (a decompression bomb?)`);
  }
  if (errors.length) return { errors };
  if (!indexText) return { errors: [jailError('bad-pack', `The pack ${file} is refused: it has no ${INDEX_NAME}; it was not made by \`jail pack\`. Nothing was changed.`)] };
  let raw: unknown;
  try { raw = JSON.parse(indexText); } catch { return { errors: [jailError('bad-pack', `The pack ${file} is refused: its ${INDEX_NAME} is not valid JSON. Nothing was changed.`)] }; }
  const { index, errors: bad } = validateIndex(raw, file);
  if (!index) return { errors: bad };
  const out = new Map<string, string>();
  for (const e of index.entries) {
    if (e.kind !== 'file' || e.linkTo !== undefined) continue;
    const s = staged.get(e.path);
    if (!s) { refuse(e.path, 'is listed in the index but its bytes are not in the archive'); continue; }
    if (s.size !== e.size || s.sha256 !== e.sha256) { refuse(e.path, 'does not match the size or sha256 the index gives'); continue; }
    out.set(e.path, s.file);
  }
  const listed = new Set(index.entries.map((e) => e.path));
  for (const p of staged.keys()) if (!listed.has(p)) refuse(FILES_PREFIX + p.slice(1), 'is not in the index');
  return errors.length ? { errors } : { pack: { index, staged: out }, errors };
}
