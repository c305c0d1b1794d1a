// The copy threads of a first build: a few worker threads running rootfs-copy.ts's
// copySmall() beside the main thread, so that a jail of thousands of small files is copied
// on every core instead of one. Jobs asked for in the same turn of the event loop go out
// together, one batch per thread, the least busy thread first; each batch comes back as
// one message. Only rootfs.ts uses this.

import fs from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { Stat } from './stat.js';
import type { CopyDone, CopyJob } from './rootfs-copy.js';

interface Waiting { job: CopyJob; resolve: (d: CopyDone) => void; reject: (e: Error) => void }

class Thread {
  readonly worker: Worker;
  /** Batches sent and not answered yet, in order. */
  readonly sent: Waiting[][] = [];
  busy = 0;
  /** Why the thread stopped, once it has: it gets no more work. */
  failed?: Error;
  constructor(url: URL, onFail: (t: Thread, e: Error) => void) {
    // Taken when a thread starts, not imported: most builds start none, and loading Node's
    // worker module costs a millisecond or two.
    const { Worker } = process.getBuiltinModule('node:worker_threads');
    this.worker = new Worker(url);
    this.worker.on('message', (results: CopyDone[]) => {
      const batch = this.sent.shift() ?? [];
      this.busy -= batch.length;
      batch.forEach((w, i) => {
        const d = results[i];
        if (!d) { w.reject(new Error('a copy thread answered fewer jobs than it was sent')); return; }
        // Structured cloning keeps a Stat's fields, not its class.
        if (d.ok) Object.setPrototypeOf(d.st, Stat.prototype);
        w.resolve(d);
      });
    });
    this.worker.on('error', (e) => onFail(this, e));
    this.worker.on('exit', (code) => onFail(this, new Error(`a copy thread exited (${code})${this.sent.length ? ' with copies unanswered' : ''}`)));
  }
}

export class CopyThreads {
  readonly #threads: Thread[];
  #queue: Waiting[] = [];
  #scheduled = false;

  private constructor(url: URL, n: number) {
    const fail = (t: Thread, e: Error) => {
      t.failed ??= e;
      for (const batch of t.sent.splice(0)) for (const w of batch) w.reject(e);
      t.busy = 0;
    };
    this.#threads = Array.from({ length: n }, () => new Thread(url, fail));
  }

  /** n threads, or undefined when the thread's module is not there (running from the TypeScript sources). */
  static start(n: number): CopyThreads | undefined {
    const url = new URL('../tasks/rootfs-copy-thread.js', import.meta.url);
    if (n < 1 || !fs.existsSync(url)) return undefined;
    return new CopyThreads(url, n);
  }

  copy(job: CopyJob): Promise<CopyDone> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    const live = this.#threads.filter((t) => !t.failed);
    if (live.length === 0) {
      // A build is not left waiting on threads that are gone: its copies fail, with why.
      for (const w of queue) w.reject(this.#threads[0]?.failed ?? new Error('no copy thread is running'));
      return;
    }
    // Spread over the threads so that each ends up about as busy as the others.
    const share = Math.ceil(queue.length / live.length);
    for (let i = 0; i < queue.length; i += share) {
      const t = live.reduce((a, b) => (b.busy < a.busy ? b : a));
      const batch = queue.slice(i, i + share);
      t.sent.push(batch);
      t.busy += batch.length;
      t.worker.postMessage(batch.map((w) => w.job));
    }
  }

  close(): void {
    for (const t of this.#threads) void t.worker.terminate();
  }
}
