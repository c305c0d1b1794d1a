// Where `jail pack -o FILE` writes: a temporary name beside FILE, renamed to FILE once the
// archive is whole. The directory is opened once and every name is looked up through its
// descriptor, so a directory renamed meanwhile cannot redirect the pack; the temporary file
// is created with O_EXCL|O_NOFOLLOW, so a link planted at its name (in a shared /tmp) is
// never written through; and a FILE inside ROOT is refused, where the jail's own processes
// could plant such links or change the pack after it is written.

import fs from 'node:fs';
import path from 'node:path';
import { jailError, type JailError } from '../result.js';
import { procPath } from '../check/reader.js';
import { within } from '../host-inputs.js';
import { realRoot } from '../manifest.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = fs.constants;

/** What -o may name, by how it ends: the formats pack writes. */
export function packFormat(file: string): { gzip: boolean } | JailError {
  if (/\.(tgz|gz)$/i.test(file)) return { gzip: true };
  if (/\.tar$/i.test(file)) return { gzip: false };
  return jailError('bad-output', `-o ${file}: jail pack writes FILE.tar, or FILE.tar.gz (FILE.tgz) compressed with gzip; name the pack so (a name ending otherwise, such as .zst, .bz2, .xz or .zip, would promise a format it does not hold). Nothing was written.`, { path: file });
}

export class PackOutput {
  readonly file: string;
  readonly #dirFd: number;
  readonly #name: string;
  #tmp: string | undefined;

  private constructor(file: string, dirFd: number) {
    this.file = file;
    this.#dirFd = dirFd;
    this.#name = path.basename(file);
  }

  /** Opens FILE's directory (an absolute FILE); an error when it is missing or no directory. */
  static open(file: string): PackOutput | JailError {
    const dir = path.dirname(file);
    try {
      return new PackOutput(file, fs.openSync(dir, O_RDONLY | O_DIRECTORY));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      const why = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a directory' : 'cannot be opened';
      return jailError('bad-output', `Cannot write the pack ${file}: its directory ${dir} ${why} (${code}). Create it, or name another place with -o. Nothing was written.`, { path: file });
    }
  }

  /** Refuses a FILE whose directory is ROOT or beneath it, by any name (a link to ROOT's directory included). */
  outside(root: string): JailError | undefined {
    let dir: string;
    try { dir = fs.readlinkSync(`/proc/self/fd/${this.#dirFd}`); } catch { return undefined; }
    if (!within(dir, realRoot(root))) return undefined;
    return jailError('bad-output', `-o ${this.file} is inside ROOT ${root}: what runs in the jail could change the pack there, or plant a link at its name. Write it outside the jail (e.g. -o /var/backups/${this.#name}). Nothing was written.`, { path: this.file });
  }

  /** Creates the temporary file and returns its descriptor; an error when a name is in the way. */
  create(): number | JailError {
    const tmp = `${this.#name}.${process.pid}.tmp`;
    try {
      const fd = fs.openSync(procPath(this.#dirFd, tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      this.#tmp = tmp;
      return fd;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      const shown = path.join(path.dirname(this.file), tmp);
      if (code === 'EEXIST') return jailError('bad-output', `Cannot write the pack ${this.file}: ${shown} is in the way (left by a pack that was killed, or planted by someone who can write to that directory). Look at it, remove it, and pack again. Nothing was written.`, { path: shown });
      return jailError('bad-output', `Cannot write the pack ${this.file}: ${shown} cannot be created (${code}). Name a place you can write to with -o. Nothing was written.`, { path: shown });
    }
  }

  /** The whole archive takes FILE's name. */
  commit(): void {
    fs.renameSync(procPath(this.#dirFd, this.#tmp!), procPath(this.#dirFd, this.#name));
    this.#tmp = undefined;
  }

  /** Removes the temporary file, if any; synchronous, for signal handlers. */
  discard(): void {
    if (this.#tmp === undefined) return;
    try { fs.unlinkSync(procPath(this.#dirFd, this.#tmp)); } catch { /* already gone */ }
    this.#tmp = undefined;
  }

  close(): void {
    this.discard();
    fs.closeSync(this.#dirFd);
  }
}
