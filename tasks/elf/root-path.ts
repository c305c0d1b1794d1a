// Turns a path as the loader inside a root would see it into a host path, following
// symlinks the way the kernel would after chroot(ROOT): absolute link targets restart at
// ROOT and '..' never climbs above it. For ROOT '/' the kernel does this itself.

import * as fs from 'node:fs';
import * as path from 'node:path';

export type Lookup =
  | { kind: 'found'; host: string; real: string; st: fs.BigIntStats }
  | { kind: 'absent'; code: string };

const MAX_SYMLINKS = 40; // the kernel's MAXSYMLINKS

export class RootPaths {
  /** Absolute host path of the root, without trailing slash ('' for '/'). */
  readonly prefix: string;
  private lstatMemo = new Map<string, fs.BigIntStats | null | undefined>();
  private linkMemo = new Map<string, string>();
  private hostMemo = new Map<string, Lookup>();
  /** Remember answers for the whole life of this object (one build, one `jail deps`): the tree is taken not to change meanwhile. */
  keep = false;

  constructor(readonly root: string = '/') {
    const abs = path.resolve(root);
    this.prefix = abs === '/' ? '' : abs;
  }

  get isHostRoot(): boolean {
    return this.prefix === '';
  }

  /** Host path for a loader path that is already free of symlinks. */
  toHost(loaderPath: string): string {
    return this.prefix + (loaderPath.startsWith('/') ? loaderPath : '/' + loaderPath);
  }

  /** Forget memoised lstat/readlink answers (the tree may have changed). */
  reset(): void {
    if (this.keep) return;
    this.lstatMemo.clear();
    this.linkMemo.clear();
    this.hostMemo.clear();
  }

  /**
   * Resolve an absolute loader path. `real` is the symlink-free path inside the root,
   * `host` where to read it, `st` the final file's stat.
   */
  lookup(loaderPath: string): Lookup {
    if (this.isHostRoot) {
      const known = this.keep ? this.hostMemo.get(loaderPath) : undefined;
      if (known) return known;
      let r: Lookup;
      try {
        const st = fs.statSync(loaderPath, { bigint: true, throwIfNoEntry: false });
        r = st ? { kind: 'found', host: loaderPath, real: loaderPath, st } : { kind: 'absent', code: 'ENOENT' };
      } catch (e) {
        r = { kind: 'absent', code: (e as NodeJS.ErrnoException).code ?? 'EIO' };
      }
      if (this.keep) this.hostMemo.set(loaderPath, r);
      return r;
    }
    return this.walk(loaderPath);
  }

  /**
   * Every symlink met while resolving a loader path (as loader paths, with their raw
   * targets), the directories a '..' climbed out of, and the real path it ends at: what a
   * copy into a jail must recreate. The kernel needs each component before a '..' to exist,
   * so a directory left by '..' is as needed as the final file's parents.
   */
  trace(loaderPath: string): { links: { path: string; target: string }[]; dirs: string[]; real?: string; st?: fs.BigIntStats; code?: string } {
    const links: { path: string; target: string }[] = [];
    const dirs: string[] = [];
    const r = this.walk(loaderPath, links, dirs);
    return r.kind === 'found' ? { links, dirs, real: r.real, st: r.st } : { links, dirs, code: r.code };
  }

  private walk(loaderPath: string, links?: { path: string; target: string }[], dirs?: string[]): Lookup {
    const todo = loaderPath.split('/').filter((c) => c !== '' && c !== '.').reverse();
    const cur: string[] = [];
    let hops = 0;
    while (todo.length > 0) {
      const c = todo.pop() as string;
      if (c === '..') {
        if (dirs !== undefined && cur.length > 0) dirs.push('/' + cur.join('/'));
        cur.pop();
        continue;
      }
      const host = this.prefix + '/' + [...cur, c].join('/');
      const st = this.lstat(host);
      if (st === undefined) return { kind: 'absent', code: 'EACCES' };
      if (st === null) return { kind: 'absent', code: 'ENOENT' };
      if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINKS) return { kind: 'absent', code: 'ELOOP' };
        const target = this.readlink(host);
        if (target === undefined) return { kind: 'absent', code: 'EACCES' };
        links?.push({ path: '/' + [...cur, c].join('/'), target });
        if (target.startsWith('/')) cur.length = 0;
        const parts = target.split('/').filter((x) => x !== '' && x !== '.');
        for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i] as string);
        continue;
      }
      if (todo.length > 0 && !st.isDirectory()) return { kind: 'absent', code: 'ENOTDIR' };
      cur.push(c);
    }
    const real = '/' + cur.join('/');
    const host = cur.length ? this.prefix + real : this.prefix || '/';
    const st = this.lstat(host);
    if (!st) return { kind: 'absent', code: 'ENOENT' };
    return { kind: 'found', host, real, st };
  }

  /** The symlink-free path inside the root (what /proc/self/exe would show). */
  realpath(loaderPath: string): string | undefined {
    if (this.isHostRoot) {
      try {
        return fs.realpathSync.native(loaderPath);
      } catch {
        return undefined;
      }
    }
    const r = this.lookup(loaderPath);
    return r.kind === 'found' ? r.real : undefined;
  }

  /** Directory listing of a loader path (for ld.so.conf include globs); [] when not a directory. */
  readdir(loaderPath: string): string[] {
    const r = this.lookup(loaderPath);
    if (r.kind !== 'found' || !r.st.isDirectory()) return [];
    try {
      return fs.readdirSync(r.host);
    } catch {
      return [];
    }
  }

  /** Whole small text file at a loader path, or undefined. Refuses non-regular files. */
  readText(loaderPath: string, maxBytes = 1024 * 1024): string | undefined {
    const b = this.readBytes(loaderPath, maxBytes);
    return b?.toString('utf8');
  }

  readBytes(loaderPath: string, maxBytes: number): Buffer | undefined {
    const r = this.lookup(loaderPath);
    if (r.kind !== 'found' || !r.st.isFile() || r.st.size > BigInt(maxBytes)) return undefined;
    try {
      const fd = fs.openSync(r.host, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (this.isHostRoot ? 0 : fs.constants.O_NOFOLLOW));
      try {
        const st = fs.fstatSync(fd);
        if (!st.isFile() || st.size > maxBytes) return undefined;
        const buf = Buffer.alloc(st.size);
        let done = 0;
        while (done < st.size) {
          const n = fs.readSync(fd, buf, done, st.size - done, done);
          if (n <= 0) break;
          done += n;
        }
        return buf.subarray(0, done);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return undefined;
    }
  }

  /** null: does not exist; undefined: cannot be examined. */
  private lstat(host: string): fs.BigIntStats | null | undefined {
    if (this.lstatMemo.has(host)) return this.lstatMemo.get(host);
    let st: fs.BigIntStats | null | undefined;
    try {
      st = fs.lstatSync(host, { bigint: true, throwIfNoEntry: false }) ?? null;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      st = code === 'ENOENT' || code === 'ENOTDIR' ? null : undefined;
    }
    this.lstatMemo.set(host, st);
    return st;
  }

  private readlink(host: string): string | undefined {
    const m = this.linkMemo.get(host);
    if (m !== undefined) return m;
    try {
      const t = fs.readlinkSync(host);
      this.linkMemo.set(host, t);
      return t;
    } catch {
      return undefined;
    }
  }
}
