// Bounded positional reads of one open file for the ELF parser. The first HEAD_BYTES are
// read at once, because the header, program headers, PT_INTERP, the ABI note and (in most
// files) the dynamic string table all lie there: one read() instead of one per structure.
// Anything beyond the head costs exactly one read per region. No read ever leaves [0, size).

import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';

/**
 * How much of a file one read brings in up front: enough for the string table of nearly
 * nine files in ten of those in /usr/bin, /usr/sbin and their libraries, while copying
 * little more than is used (the dynamic section, in the writable segment further on, is
 * one more small read either way).
 */
export const HEAD_BYTES = 16 * 1024;

/** A structural defect of the file (the parser turns it into an `elf-corrupt` error value). */
export class Corrupt extends Error {}

/**
 * The head buffer of the last reader, handed to the next one: parses follow each other
 * (they are synchronous), so one head buffer serves them all instead of a fresh one each.
 */
let spareHead: Buffer | undefined;
let spareHeadView: DataView | undefined;

/** Likewise for the one large region a parse may read beyond the head (the string table); grows as needed. */
let spareLarge: Buffer | undefined;

export class FileReader {
  private head: Buffer;
  /** A DataView on the whole head buffer, made once with it. */
  private headView: DataView;
  /** Where, in the DataView the last view() call returned, the region asked for starts. */
  base = 0;
  /** Bytes of the head actually read: less than min(size, HEAD_BYTES) only if the file shrank. */
  private headLen = 0;

  constructor(readonly fd: number, readonly size: number) {
    if (spareHead && spareHeadView) {
      this.head = spareHead;
      this.headView = spareHeadView;
      spareHead = spareHeadView = undefined;
    } else {
      this.head = Buffer.allocUnsafe(HEAD_BYTES);
      this.headView = new DataView(this.head.buffer, this.head.byteOffset, this.head.byteLength);
    }
    const want = Math.min(size, HEAD_BYTES);
    while (this.headLen < want) {
      const n = fs.readSync(fd, this.head, this.headLen, want - this.headLen, this.headLen);
      if (n <= 0) break; // bytes() reports the shortfall if anyone asks for them
      this.headLen += n;
    }
  }

  /** Give the head buffer back for the next reader; buffers from bytes() are invalid afterwards. */
  release(): void {
    spareHead = this.head;
    spareHeadView = this.headView;
  }

  /**
   * bytes(off, len) as a DataView whose region starts at `base` (set by this call): inside
   * the head, the head's own view, so reading a header makes no object at all. Valid as
   * bytes() is; callers read only inside [base, base + len).
   */
  view(off: number, len: number, what: string): DataView {
    if (Number.isSafeInteger(off) && Number.isSafeInteger(len) && off >= 0 && len >= 0 && off + len <= this.headLen && off + len <= this.size) {
      this.base = off;
      return this.headView;
    }
    const b = this.bytes(off, len, what);
    this.base = 0;
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /**
   * len bytes at off. Inside the head this is a view of the shared head buffer, valid
   * until release(): callers copy what they keep (strings, numbers), never the buffer.
   */
  bytes(off: number, len: number, what: string): Buffer {
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > this.size) {
      throw new Corrupt(`${what} lies outside the file (offset ${off}, length ${len}, file size ${this.size})`);
    }
    if (off + len <= this.headLen) return this.head.subarray(off, off + len);
    // allocUnsafe is safe here: fill() sets every byte or throws.
    const buf = Buffer.allocUnsafe(len);
    this.fill(buf, off, what);
    return buf;
  }

  /**
   * bytes() for a large region, read into a buffer shared by all readers instead of a
   * fresh one, so a multi-megabyte string table leaves no garbage behind. Valid until
   * the next large() call: one such region may be in use at a time. The parser asks for
   * at most LIMITS.maxDynamicBytes, which bounds what the shared buffer keeps.
   */
  large(off: number, len: number, what: string): Buffer {
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > this.size) {
      return this.bytes(off, len, what); // throws the usual message
    }
    if (off + len <= this.headLen) return this.head.subarray(off, off + len);
    if (!spareLarge || spareLarge.length < len) spareLarge = Buffer.allocUnsafe(Math.max(len, HEAD_BYTES * 4));
    const buf = spareLarge.subarray(0, len);
    this.fill(buf, off, what);
    return buf;
  }

  private fill(buf: Buffer, off: number, what: string): void {
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(this.fd, buf, done, buf.length - done, off + done);
      if (n <= 0) throw new Corrupt(`${what}: short read (the file shrank while being read)`);
      done += n;
    }
  }

  /**
   * The bytes of a NUL-terminated string starting at off, at most maxString and never past
   * limit. They may lie in a buffer the next read reuses: decode them before reading again.
   */
  cstring(off: number, limit: number, maxString: number, what: string): Buffer {
    const end = Math.min(limit, this.size, off + maxString + 1);
    if (off < 0 || off >= end) throw new Corrupt(`${what} lies outside its string table`);
    let chunk = Math.min(256, end - off);
    for (;;) {
      const b = this.bytes(off, chunk, what);
      const nul = b.indexOf(0);
      if (nul >= 0) return b.subarray(0, nul);
      if (off + chunk >= end) throw new Corrupt(notTerminated(what, maxString));
      chunk = Math.min(chunk * 4, end - off);
    }
  }
}

/**
 * Bytes as text for the filesystem: Node turns a string path back into bytes as UTF-8, so
 * only a UTF-8 decoding names the file the loader would open. Undefined for bytes that are
 * not UTF-8: no JS string turns back into them (the caller reports that rather than look
 * up a path that cannot be the loader's; Buffer paths would reach such files, but every
 * path in jail is a string, down to the plan and the jail's own ld.so.cache).
 */
export function utf8Text(b: Buffer, start = 0, end = b.length): string | undefined {
  const s = b.toString('utf8', start, end);
  // Malformed sequences decode to U+FFFD; only then is the slice checked byte by byte.
  if (s.includes('\ufffd') && !isUtf8(b.subarray(start, end))) return undefined;
  return s;
}

/** Bytes for a message: printable ASCII as is, anything else as \xNN. */
export function escapeBytes(b: Buffer): string {
  let out = '';
  for (const c of b) out += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return out;
}

/** The message for a string that runs off its table (shared by the buffered and the direct path). */
export function notTerminated(what: string, maxString: number): string {
  return `${what} is not NUL-terminated within its string table (or longer than ${maxString} bytes)`;
}
