// Standard output and error of the command line. Only tasks/cli.ts uses this: commands
// write through the Output they are handed, so that tests and watch can give them another.

import type { Output } from './progress.js';

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
    process.stderr.write(line + '\n');
  };

  flush = (): void => {
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = undefined; }
    if (!this.#lines.length) return;
    process.stdout.write(this.#lines.join(''));
    this.#lines = [];
    this.#bytes = 0;
  };
}

export const stdio: Output = new BufferedStdio();
