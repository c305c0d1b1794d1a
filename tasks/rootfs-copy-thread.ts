// A copy thread of rootfs.ts: runs copySmall() on the batches of jobs the main thread sends
// and answers each batch with its results in order. It opens no directory of its own: the
// jobs name the main thread's directory descriptors, which threads of a process share.

import { parentPort } from 'node:worker_threads';
import { copySmall, type CopyJob } from './rootfs-copy.js';

parentPort?.on('message', (jobs: CopyJob[]) => {
  parentPort!.postMessage(jobs.map(copySmall));
});
