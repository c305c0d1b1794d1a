// One chokidar watcher over a set of directories, with the settings watch mode needs
// everywhere (see ../shared notes on chokidar 5, and tasks/watch/inputs.ts):
//
// - ignoreInitial: the first build and a check build after each (re)start cover what
//   was there; events are changes only.
// - followSymlinks: false, so a planted link cannot walk the watcher into host trees,
//   and a symlink input is watched as the link it is.
// - atomic: false. Its 100 ms hold-back of unlinks is what our own debounce already does,
//   and it silently ignores paths ending in `~` or `.swp`, which may well be inputs.
// - an 'error' listener always (chokidar 5 emits errors for special files, and an
//   unhandled 'error' would end the process); ENOSPC/EMFILE go to the owner, which
//   falls back to polling.
// - 'attrib' for a directory's own mode or owner change. chokidar answers any event on a
//   directory by reading it again, and reports only entries added or gone, so a chmod or
//   chown of a watched directory never surfaced. inotify reports it (IN_ATTRIB) to the
//   parent's watch, which chokidar passes on as a raw event naming the child; the
//   poller passes the old and new stats.

import path from 'node:path';
import type { Stats } from 'node:fs';
import { FSWatcher } from 'chokidar';

export interface DirWatcherOptions {
  roots: readonly string[];
  ignored: (path: string, stats?: Stats) => boolean;
  polling: boolean;
  /** Polling interval in ms (chokidar's default is 100; binary-looking files get the same). */
  interval: number;
  /** chokidar's events, and 'attrib' for a watched directory whose mode or owner changed. */
  onEvent: (event: string, path: string) => void;
  onError: (err: NodeJS.ErrnoException) => void;
}

export class DirWatcher {
  readonly #w: FSWatcher;
  /** Resolves when chokidar has read every root: from then on, changes are reported. */
  readonly ready: Promise<void>;
  #closed = false;
  #ready = false;

  constructor(readonly opts: DirWatcherOptions) {
    this.#w = new FSWatcher({
      persistent: true,
      ignoreInitial: true,
      followSymlinks: false,
      atomic: false,
      ignorePermissionErrors: true,
      usePolling: opts.polling,
      interval: opts.interval,
      binaryInterval: opts.interval,
      ignored: (p: string, stats?: Stats) => opts.ignored(p, stats),
    });
    this.#w.on('error', (err: unknown) => {
      if (!this.#closed) opts.onError(err as NodeJS.ErrnoException);
    });
    // Until 'ready', chokidar is reading what is there, and reports symlinks it meets as
    // 'add' even with ignoreInitial: those are not changes (a check build follows anyway).
    this.#w.on('all', (event: string, p: string) => {
      if (!this.#closed && this.#ready) opts.onEvent(event, p);
    });
    this.#w.on('raw', (event: string, p: string | null, info: unknown) => {
      if (this.#closed || !this.#ready || !p) return;
      const details = info as { watchedPath?: string; curr?: Stats; prev?: Stats };
      let dir: string;
      if (details.curr && details.prev) {
        // The poller: p is the path it polls; only what a build sets counts, not times or links.
        const { curr, prev } = details;
        if (curr.mode === prev.mode && curr.uid === prev.uid && curr.gid === prev.gid) return;
        dir = p;
      } else if (details.watchedPath !== undefined) {
        // inotify: libuv calls IN_ATTRIB on a directory 'rename' (the IN_ISDIR bit), as it does a
        // directory made, removed or moved: those chokidar reports too, and a check build is
        // harmless. The directory's own watch reports the change under the directory's own
        // name, joined here into a path that is not a watched directory (or a harmless one).
        dir = path.join(details.watchedPath, p);
      } else return;
      // chokidar keeps an entry for each directory it watches (files are never keys): files
      // it reports itself as 'change'.
      if (this.#w._watched.has(dir) && !opts.ignored(dir)) opts.onEvent('attrib', dir);
    });
    this.ready = opts.roots.length === 0
      ? Promise.resolve().then(() => { this.#ready = true; })
      : new Promise((resolve) => this.#w.once('ready', () => { this.#ready = true; resolve(); }));
    if (opts.roots.length) this.#w.add([...opts.roots]);
  }

  /** How many directories and files chokidar tracks (for the status line and tests). */
  get tracked(): number {
    let n = 0;
    for (const items of Object.values(this.#w.getWatched())) n += items.length;
    return n;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#w.close();
  }
}
