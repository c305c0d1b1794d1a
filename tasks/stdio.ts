// Standard output and error of the command line. Only tasks/cli.ts uses this: commands
// write through the Output they are handed, so that tests and watch can give them another.

import fs from 'node:fs';
import type { Output } from './progress.js';

/** The descriptors whose writes go through process.stdout or process.stderr from now on. */
const streamed = new Set<1 | 2>();

/**
 * Writes `text` to standard output (1) or error (2) with write(2) itself, not through
 * process.stdout or process.stderr: making those streams loads Node's stream, net and tty
 * modules, milliseconds that a no-op make spends on nothing else. On any failure (a
 * non-blocking descriptor that is full, a closed pipe) the rest goes to the stream, and so
 * does every later write, in order; the stream then does, and fails, as it always did.
 */
function write(fd: 1 | 2, text: string): void {
  let rest: string | Buffer = text;
  if (!streamed.has(fd)) {
    const buf = Buffer.from(text);
    let done = 0;
    try {
      while (done < buf.length) done += fs.writeSync(fd, buf, done);
      return;
    } catch {
      streamed.add(fd);
      rest = buf.subarray(done);
    }
  }
  (fd === 1 ? process.stdout : process.stderr).write(rest);
}

/**
 * Standard output, buffered: a first build prints one line per file, and one write per
 * line cost seconds for ten thousand files. Lines go out in batches, at least every 50 ms,
 * and before anything is written to standard error, so the two stay in order.
 */
class BufferedStdio implements Output {
  #lines: string[] = [];
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;

  // Arrow properties: commands pass io.out around as a plain function.
  out = (line: string): void => {
    this.#lines.push(line, '\n');
    this.#bytes += line.length + 1;
    if (this.#bytes >= 64 * 1024) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), 50).unref();
  };

  err = (line: string): void => {
    this.flush();
    write(2, line + '\n');
  };

  flush = (): void => {
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = undefined; }
    if (!this.#lines.length) return;
    write(1, this.#lines.join(''));
    this.#lines = [];
    this.#bytes = 0;
  };
}

export const stdio: Output = new BufferedStdio();
