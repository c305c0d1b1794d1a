// A streaming tar writer for jail packs: ustar headers (pax for long names) encoded by
// node-tar's Header and Pax, file bodies streamed in 512-byte-padded blocks, optional gzip
// (asked for by the caller: the file written is a temporary name, not the pack's).
// We write headers ourselves because a pack's entries come from several places (an
// in-memory index, files read safely from ROOT), not from one directory tree.

import fs from 'node:fs';
import zlib from 'node:zlib';
import { Header, Pax } from 'tar';

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

  /** Adds a regular file with these bytes under `name`. */
  async file(name: string, body: Buffer, mode = 0o644): Promise<void> {
    const data = { path: name, mode, uid: 0, gid: 0, size: body.length, mtime: new Date(0), type: 'File' as const };
    const header = new Header(data);
    if (header.encode()) await this.#write(new Pax({ path: name, size: body.length }).encode());
    await this.#write(header.block!);
    await this.#write(body);
    const pad = (512 - (body.length % 512)) % 512;
    if (pad) await this.#write(Buffer.alloc(pad));
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
