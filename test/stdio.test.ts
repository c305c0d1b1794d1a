// The command line's output: written with write(2) rather than through Node's streams
// (tasks/stdio.ts), it must still arrive whole and in order when the descriptor is a
// non-blocking pipe that is full, where write(2) fails with EAGAIN.

import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, rig, type Rig } from './helpers.js';

let r: Rig;
beforeEach(() => { r = rig(); });
afterEach(() => r.cleanup());

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** Runs the CLI with standard output on a FIFO opened non-blocking and filled first; returns what came after the filler. */
async function throughFullPipe(args: string[]): Promise<{ code: number | null; out: string }> {
  const fifo = path.join(r.outside, 'out.fifo');
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const wfd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  let filler = 0;
  for (;;) {
    try { filler += fs.writeSync(wfd, Buffer.alloc(4096, 'x')); } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('EAGAIN');
      break;
    }
  }
  // Node's spawn makes a child's standard descriptors blocking again, for every process
  // sharing the pipe; perl (part of every Debian) opens the FIFO as the CLI's standard output
  // and makes it non-blocking just before it becomes node.
  const setup = 'use Fcntl; open(STDOUT, ">", shift) or die $!; fcntl(STDOUT, F_SETFL, fcntl(STDOUT, F_GETFL, 0) | O_NONBLOCK) or die $!; exec @ARGV or die $!';
  const child = spawn('perl', ['-e', setup, fifo, process.execPath, CLI, ...args], { cwd: r.dir, stdio: ['ignore', 'ignore', 'ignore'] });
  let code: number | null | undefined;
  child.on('exit', (c) => { code = c; });
  // Nothing is read for a while, so that the child's writes meet the full pipe: it either
  // exits (having written what it could) or waits for room. Then the pipe is read until the
  // child has exited and nothing is left; the test's own write end keeps it from reading as
  // closed before that.
  for (let waited = 0; code === undefined && waited < 1500; waited += 10) await sleep(10);
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    try {
      const n = fs.readSync(rfd, buf);
      chunks.push(Buffer.from(buf.subarray(0, n)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      if (code !== undefined) break;
      await sleep(10);
    }
  }
  fs.closeSync(wfd);
  fs.closeSync(rfd);
  const all = Buffer.concat(chunks);
  expect(all.subarray(0, filler).every((b) => b === 0x78)).toBe(true);
  return { code: code ?? null, out: all.subarray(filler).toString('utf8') };
}

describe('output on a full non-blocking pipe', () => {
  it('arrives whole and in order', async () => {
    const dirs = Array.from({ length: 400 }, (_, i) => `'/d/${i}'`).join(', ');
    r.jailfile(`import { defineJail, dir } from 'jail';\nexport default defineJail(() => [dir([${dirs}])]);\n`);
    const plain = r.jail('make', `ROOT=${r.root}`, '-n');
    expect(plain.code).toBe(0);
    expect(plain.stdout.split('\n').length).toBeGreaterThan(400);
    const piped = await throughFullPipe(['make', `ROOT=${r.root}`, '-n']);
    expect(piped.code).toBe(0);
    // The summary line's time may differ; every other line is the same, in the same order.
    const strip = (s: string) => s.replace(/ in [\d.]+s$/m, '');
    expect(strip(piped.out)).toBe(strip(plain.stdout));
  });

  it('carries --version too', async () => {
    const piped = await throughFullPipe(['--version']);
    expect(piped.code).toBe(0);
    expect(piped.out).toBe(r.jail('--version').stdout);
  });
});
