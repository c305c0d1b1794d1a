// A streaming tar writer for jail packs: ustar headers (pax for long names and sizes past
// ustar's 8 GiB) encoded by node-tar's Header and Pax, file bodies streamed in bounded
// chunks padded to 512-byte blocks, optional gzip (asked for by the caller: the file written
// is a temporary name, not the pack's).
// We write headers ourselves because a pack's entries come from several places (an
// in-memory index, files read safely from ROOT), not from one directory tree.

import fs from 'node:fs';
import zlib from 'node:zlib';
import { Header, Pax } from 'tar';

/** Bytes read from a file and written at once: a file of any size is carried in this much memory. */
const CHUNK = 1024 * 1024;

export class TarWriter {
  readonly #out: NodeJS.WritableStream;
  readonly #done: Promise<void>;

  /** Writes to a new file at this path, or to an open empty file's descriptor (closed when done). */
  constructor(to: string | number, opts: { gzip?: boolean } = {}) {
    const sink = typeof to === 'number' ? fs.createWriteStream('', { fd: to }) : fs.createWriteStream(to, { mode: 0o600 });
    this.#done = new Promise((resolve, reject) => { sink.on('close', resolve); sink.on('error', reject); });
    if (opts.gzip) {
      const gz = zlib.createGzip();
      gz.pipe(sink);
      this.#out = gz;
    } else {
      this.#out = sink;
    }
  }

  async #write(buf: Buffer): Promise<void> {
    if (!this.#out.write(buf)) await new Promise((r) => this.#out.once('drain', r));
  }

  async #header(name: string, size: number, mode: number): Promise<void> {
    const header = new Header({ path: name, mode, uid: 0, gid: 0, size, mtime: new Date(0), type: 'File' });
    if (header.encode()) await this.#write(new Pax({ path: name, size }).encode());
    await this.#write(header.block!);
  }

  async #pad(size: number): Promise<void> {
    const pad = (512 - (size % 512)) % 512;
    if (pad) await this.#write(Buffer.alloc(pad));
  }

  /** Adds a regular file with these bytes under `name`. */
  async file(name: string, body: Buffer, mode = 0o644): Promise<void> {
    await this.#header(name, body.length, mode);
    await this.#write(body);
    await this.#pad(body.length);
  }

  /** Adds a regular file of `size` bytes under `name`, a chunk at a time: `fill` fills each chunk given it, whole. */
  async stream(name: string, size: number, fill: (chunk: Buffer) => void, mode = 0o644): Promise<void> {
    await this.#header(name, size, mode);
    for (let left = size; left > 0;) {
      // A fresh buffer each time: the stream may still hold the last one.
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, left));
      fill(chunk);
      await this.#write(chunk);
      left -= chunk.length;
    }
    await this.#pad(size);
  }

  /** Ends the archive unfinished (the caller removes the file): resolves once the file is closed. */
  async abort(): Promise<void> {
    this.#out.end();
    try { await this.#done; } catch { /* the error being reported already */ }
  }

  async close(): Promise<void> {
    await this.#write(Buffer.alloc(1024));
    this.#out.end();
    await this.#done;
  }
}
