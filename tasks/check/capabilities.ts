// File capabilities (the security.capability xattr) of the jail's executable files. Node
// cannot read extended attributes, so the host's own getcap reads them (never a program
// from the jail). It reads attributes only, never opens the files, and is given only paths
// the walk saw as regular files. Without a host getcap, capabilities are skipped with a note.

import { jsString } from '../printable.js';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { hasExecBits } from './paths.js';
import { hostWord } from './rules.js';
import type { Context } from './context.js';

// child_process (with net, stream and dgram behind it) is loaded only when a jail holds an
// executable to ask about: every build runs the cheap checks, and most have nothing to spawn.
const require = createRequire(import.meta.url);

const GETCAP = ['/usr/sbin/getcap', '/sbin/getcap', '/usr/bin/getcap', '/bin/getcap'];
const BATCH = 200;

export function checkCapabilities(ctx: Context): void {
  // The kernel applies file capabilities at execve, which needs an exec bit.
  const files = ctx.nodes.filter((n) => n.st.isFile() && hasExecBits(n.st));
  if (files.length === 0) return;
  const getcap = GETCAP.find((p) => fs.statSync(p, { throwIfNoEntry: false })?.isFile());
  if (!getcap) {
    ctx.note('file capabilities were not checked: the host has no getcap (install libcap2-bin)');
    return;
  }
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const hostOf = (p: string) => ctx.root + p;
  const one = (list: string[]): string | undefined => {
    const r = spawnSync(getcap, list.map(hostOf), { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } });
    if (r.error || r.status !== 0) return undefined;
    return r.stdout;
  };
  // Names holding a newline would make getcap's lines ambiguous: ask about those one at a time.
  const plain = files.filter((n) => !n.path.includes('\n')).map((n) => n.path);
  const odd = files.filter((n) => n.path.includes('\n')).map((n) => n.path);
  let failed = false;
  for (let i = 0; i < plain.length; i += BATCH) {
    const batch = plain.slice(i, i + BATCH);
    const out = one(batch);
    if (out === undefined) { failed = true; continue; }
    // Longest path first, so that `/a b` is not taken for `/a` followed by capabilities.
    const byLength = [...batch].sort((a, b) => b.length - a.length);
    for (const line of out.split('\n')) {
      if (line.trim() === '') continue;
      const p = byLength.find((x) => line.startsWith(hostOf(x) + ' '));
      if (p !== undefined) report(ctx, p, line.slice(hostOf(p).length + 1).trim());
    }
  }
  for (const p of odd) {
    const out = one([p]);
    if (out === undefined) { failed = true; continue; }
    const caps = out.slice(hostOf(p).length + 1).trim();
    if (caps) report(ctx, p, caps);
  }
  if (failed) ctx.note(`file capabilities were not checked for every file: ${getcap} failed`);
}

function report(ctx: Context, p: string, caps: string): void {
  ctx.add('setuid', p, `has file capabilities (${caps.replace(/^=\s*/, '')}): whoever runs it gains them, a way for a jailed process to gain privileges`,
    `remove them (setcap -r ${hostWord(ctx, p)}), or accept them after review with allow('setuid', ${jsString(p)})`);
}
