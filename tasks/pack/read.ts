// Reading a pack, which is untrusted input. The archive is parsed by node-tar (strict) but
// nothing is extracted by it: each file body is hashed as it streams by, and only the
// validated index decides what goes where. So `..`, absolute names, links, devices and
// hard links in the archive can only be refused, never followed. A bad pack is refused
// in one paragraph, for its first problem.
//
// `rebuild FROM=` reads a pack twice: scanPack() checks all of it and gives the targets
// (each file known by its sha256, so -n, -q, check and pack need no copy of it), then,
// under the build lock, stagePack() copies out only the files the build writes, into a
// directory of this process that the copy reads through a held descriptor. Install
// layers (our own packs) are staged whole by readPack() where they are kept.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { Parser, type ReadEntry } from 'tar';
import { alive } from '../pid-lock.js';
import { onFatalSignal } from '../fatal-signal.js';
import { jailError, type JailError } from '../result.js';
import { printable } from '../printable.js';
import { FILES_PREFIX, INDEX_NAME, LIMITS, packRefusal, quoted, validateIndex, type PackIndex, type PackProblem } from './format.js';

export interface ReadPack {
  index: PackIndex;
  /** Jail path -> the staged file holding its bytes (install layers, kept staged). */
  staged: Map<string, string>;
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** Uncompressed bytes allowed beyond LIMITS.ratio times the pack's size: a small pack of zeros is no bomb. */
const RATIO_SLACK = 64 * 1024 * 1024;
const CHUNK = 1 << 20;
const { O_RDONLY, O_NONBLOCK, O_DIRECTORY, O_NOFOLLOW, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;

/** One member's bytes as they streamed by. */
interface Member { size: number; sha256: string }

/** Where a member's bytes go besides the hash: a staged file. */
interface Sink { write(d: Buffer): void; end(): void }

/**
 * Streams the whole archive once: every member is checked for what it may be and hashed,
 * `sink` taking the bytes of the ones it wants. The first problem ends it.
 */
async function walk(file: string, sink: (jailPath: string) => Sink | undefined): Promise<{ members: Map<string, Member>; indexText: string } | { problem: PackProblem } | { error: JailError }> {
  let fh: fs.promises.FileHandle;
  let size: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below as not a file.
    fh = await fs.promises.open(file, O_RDONLY | O_NONBLOCK);
  } catch (err) {
    return { error: jailError('bad-pack', `Cannot read the pack ${printable(file)} (${(err as NodeJS.ErrnoException).code}). Name an archive made by \`jail pack\` with FROM=.`, { path: file }) };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      return { error: jailError('bad-pack', `The pack ${printable(file)} is refused: it is ${st.isDirectory() ? 'a directory' : 'not a regular file (a device, FIFO or socket)'}. Name an archive made by \`jail pack\` with FROM=. Nothing was changed.`, { path: file }) };
    }
    size = st.size;
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    const gzip = bytesRead >= 2 && head.subarray(0, 2).equals(GZIP_MAGIC);
    const zstd = bytesRead === 4 && head.equals(ZSTD_MAGIC);
    if (zstd && typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress !== 'function') {
      return { error: jailError('bad-pack', `The pack ${printable(file)} is zstd-compressed, which this Node (${process.version}) cannot read (Node 22.15 or later can). Decompress it first (\`zstd -d\`) and name the .tar with FROM=. Nothing was changed.`, { path: file }) };
    }
    // Bytes out per byte in, judged on the whole pack (node-tar's own check runs on every chunk, with no slack).
    const bound = gzip || zstd ? Math.min(LIMITS.totalBytes, size * LIMITS.ratio + RATIO_SLACK) : LIMITS.totalBytes;

    const members = new Map<string, Member>();
    /** Staged files still being written: closed however the walk ends. */
    const open = new Set<Sink>();
    const index: Buffer[] = [];
    let indexBytes = 0;
    let count = 0;
    let total = 0;
    let problem: PackProblem | undefined;
    let failed: JailError | undefined;
    const refuse = (entry: string, why: string) => { problem ??= { entry, why }; };
    // Writing a staged file failed (a full disk): not the pack's fault, and said so.
    const guard = (f: () => void) => {
      try { f(); } catch (err) {
        failed ??= jailError('stage-failed', `Could not copy the files of the pack ${printable(file)} out to be built (${(err as Error).message}). Free some space beside the build record (in .jail), then run the command again. Nothing was changed.`, { path: file });
        refuse('(archive)', 'could not be copied out');
      }
    };
    const bomb = () => refuse('(archive)', gzip || zstd ? `expands to more than ${LIMITS.ratio} times its size (a decompression bomb?)` : `holds more than ${LIMITS.totalBytes} bytes`);

    const parser = new Parser({
      strict: true,
      maxDecompressionRatio: Infinity,
      onReadEntry: (entry: ReadEntry) => {
        const name = entry.path;
        const skip = (why: string) => { refuse(name, why); entry.resume(); };
        if (problem) { entry.resume(); return; }
        if (++count > LIMITS.entries) return skip(`makes the archive longer than ${LIMITS.entries} entries`);
        if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
          return skip(`is a ${entry.type} entry; a pack holds regular files only (links, devices and owners are in its index)`);
        }
        if (name === INDEX_NAME) {
          entry.on('data', (d: Buffer) => {
            indexBytes += d.length;
            if (indexBytes > LIMITS.indexBytes) refuse(name, 'is too large');
            else if (!problem) index.push(d);
          });
          return;
        }
        const rel = name.startsWith(FILES_PREFIX) ? name.slice(FILES_PREFIX.length) : undefined;
        const jailPath = rel === undefined ? undefined : '/' + rel;
        if (jailPath === undefined || path.posix.normalize(jailPath) !== jailPath || rel!.split('/').some((c) => c === '..' || c === '.' || c === '') || jailPath.includes('\0')) {
          return skip('is not a file of the jail (a name with .. or an absolute path?)');
        }
        if (jailPath.split('/').length - 1 > LIMITS.depth) return skip(`is nested deeper than ${LIMITS.depth} levels`);
        if (members.has(jailPath)) return skip('appears twice');
        let out: Sink | undefined;
        guard(() => { out = sink(jailPath); });
        if (out) open.add(out);
        const hash = createHash('sha256');
        let n = 0;
        members.set(jailPath, { size: -1, sha256: '' });
        entry.on('data', (d: Buffer) => {
          n += d.length;
          total += d.length;
          if (total > bound) bomb();
          if (problem) return;
          hash.update(d);
          if (out) guard(() => out!.write(d));
        });
        entry.on('end', () => {
          if (out) { open.delete(out); guard(() => out!.end()); }
          if (problem) return;
          members.set(jailPath, { size: n, sha256: hash.digest('hex') });
        });
      },
    });
    const settled = new Promise<void>((resolve) => {
      parser.on('error', (err: Error) => { refuse('(archive)', `could not be read: ${err.message.replace(/^TAR_\w+: /, '')}`); resolve(); });
      parser.on('end', () => resolve());
      parser.on('close', () => resolve());
    });
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; !problem;) {
      const { bytesRead: n } = await fh.read(buf, 0, CHUNK, pos);
      if (n === 0) break;
      pos += n;
      // node-tar keeps a partial header or a compressed chunk it has not finished: each write gets a buffer of its own.
      try { parser.write(Buffer.from(buf.subarray(0, n))); } catch (err) { refuse('(archive)', `could not be read: ${(err as Error).message}`); }
    }
    if (!problem) {
      try { parser.end(); } catch (err) { refuse('(archive)', `could not be read: ${(err as Error).message}`); }
      if (!problem) await settled;
    }
    for (const o of open) guard(() => o.end());
    if (failed) return { error: failed };
    if (problem) return { problem };
    // A multibyte character may be split between two chunks: the index is decoded whole.
    return { members, indexText: Buffer.concat(index).toString('utf8') };
  } finally {
    await fh.close();
  }
}

/** The archive checked through, and its index validated: every file's bytes present, as the index says. */
async function check(file: string, sink: (jailPath: string) => Sink | undefined): Promise<{ index?: PackIndex; members?: Map<string, Member>; errors: JailError[] }> {
  const w = await walk(file, sink);
  if ('error' in w) return { errors: [w.error] };
  if ('problem' in w) return { errors: [packRefusal(file, [w.problem])] };
  if (!w.indexText) return { errors: [jailError('bad-pack', `The pack ${printable(file)} is refused: it has no ${INDEX_NAME}; it was not made by \`jail pack\`. Nothing was changed.`, { path: file })] };
  let raw: unknown;
  try { raw = JSON.parse(w.indexText); } catch { return { errors: [jailError('bad-pack', `The pack ${printable(file)} is refused: its ${INDEX_NAME} is not valid JSON. Nothing was changed.`, { path: file })] }; }
  const { index, errors } = validateIndex(raw, file);
  if (!index) return { errors };
  const problems: PackProblem[] = [];
  for (const e of index.entries) {
    if (e.kind !== 'file' || e.linkTo !== undefined) continue;
    const m = w.members.get(e.path);
    if (!m) problems.push({ entry: e.path, why: 'is listed in the index but its bytes are not in the archive' });
    else if (m.size !== e.size || m.sha256 !== e.sha256) problems.push({ entry: e.path, why: 'does not match the size or sha256 the index gives' });
  }
  const listed = new Set(index.entries.map((e) => e.path));
  for (const p of w.members.keys()) if (!listed.has(p)) problems.push({ entry: FILES_PREFIX + p.slice(1), why: 'is not in the index' });
  return problems.length ? { errors: [packRefusal(file, problems)] } : { index, members: w.members, errors: [] };
}

/** `FROM=`: the whole pack checked, nothing written; each file is known by the size and sha256 of its index entry. */
export async function scanPack(file: string): Promise<{ index?: PackIndex; errors: JailError[] }> {
  const { index, errors } = await check(file, () => undefined);
  return { index, errors };
}

/** An install layer: the whole pack checked and every file staged in `staging`, where it is kept. */
export async function readPack(file: string, staging: string): Promise<{ pack?: ReadPack; errors: JailError[] }> {
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true, mode: 0o700 });
  const staged = new Map<string, string>();
  const { index, errors } = await check(file, (jailPath) => {
    const target = path.join(staging, String(staged.size));
    staged.set(jailPath, target);
    return fdSink(fs.openSync(target, 'wx', 0o600));
  });
  return index ? { pack: { index, staged }, errors } : { errors };
}

function fdSink(fd: number, limit = Infinity): Sink {
  let n = 0;
  return {
    write: (d) => { n += d.length; if (n <= limit) fs.writeSync(fd, d); },
    end: () => fs.closeSync(fd),
  };
}

/** Files of a pack copied out for one build, read through the descriptor of their directory. */
export interface Staged {
  /** A file's `source` (its pack member) -> the name the copy reads it by. */
  files: Map<string, string>;
  /** Removes the directory and all in it; also done if the process is stopped by a signal meanwhile. */
  remove(): void;
}

/**
 * The files `want` names (jail path -> its target's source, size and sha256), copied out of
 * the pack again into a new directory of this process in `stateDir`, each checked against
 * the sha256 the scan found (the pack may have been replaced since). The copies are read
 * as /proc/self/fd/DIR/N: through the directory made here and held open, whatever is
 * renamed over its name meanwhile. `key` names ROOT: its leftovers from a killed build
 * are removed first (the caller holds the build lock of ROOT).
 */
export async function stagePack(file: string, want: ReadonlyMap<string, { source: string; size: number; sha256: string }>, stateDir: string, key: string): Promise<Staged | JailError> {
  removeLeftovers(stateDir, key);
  let dir: string | undefined;
  let dirFd: number | undefined;
  const remove = () => {
    offSignal();
    if (dirFd !== undefined) {
      // Emptied through the descriptor first: the copies go even if the directory was renamed.
      try { for (const n of fs.readdirSync(`/proc/self/fd/${dirFd}`)) fs.rmSync(`/proc/self/fd/${dirFd}/${n}`, { force: true }); } catch { /* gone */ }
      try { fs.closeSync(dirFd); } catch { /* closed */ }
      dirFd = undefined;
    }
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  };
  // Listening before the directory exists: a signal in between would leave it behind.
  const offSignal = onFatalSignal(remove);
  try {
    dir = fs.mkdtempSync(path.join(stateDir, `unpack-${key}@${process.pid}-`));
    dirFd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    const held = `/proc/self/fd/${dirFd}`;
    const files = new Map<string, string>();
    const { members, errors } = await check(file, (jailPath) => {
      const w = want.get(jailPath);
      if (!w || files.has(w.source)) return undefined;
      const name = `${held}/${files.size}`;
      files.set(w.source, name);
      // At most the bytes the scan found: a pack replaced since by a bigger one fills no disk.
      return fdSink(fs.openSync(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600), w.size);
    });
    if (errors.length) { remove(); return errors[0]!; }
    // Each was hashed as it was written: the bytes the scan found, or the pack was replaced since.
    for (const [p, w] of want) {
      const m = members!.get(p);
      if (m?.size !== w.size || m.sha256 !== w.sha256) {
        remove();
        return jailError('bad-pack', `The pack ${printable(file)} changed while it was being read (${quoted(p)} is not what it held a moment before). Nothing was changed; run the command again once nothing writes the pack.`, { path: file });
      }
    }
    return { files, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

/** Staging directories of ROOT left by a build that was killed (the old shared one too). */
function removeLeftovers(stateDir: string, key: string): void {
  let names: string[];
  try { names = fs.readdirSync(stateDir); } catch { return; }
  const prefix = `unpack-${key}@`;
  for (const n of names) {
    const pid = n.startsWith(prefix) ? Number(n.slice(prefix.length).split('-')[0]) : undefined;
    if (n === `unpack-${key}` || (pid !== undefined && Number.isInteger(pid) && !alive(pid))) fs.rmSync(path.join(stateDir, n), { recursive: true, force: true });
  }
}
