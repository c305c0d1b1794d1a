// How a host path really resolves: every symlink met on the way (the merged-/usr
// `/lib -> usr/lib`, `libz.so.1 -> libz.so.1.2.13`, `/bin/sh -> dash`) and the real file
// at the end. A jail reproduces the chain link for link, so a path the loader or a
// script names works inside the jail exactly as it does on the host.

import fs from 'node:fs';
import { fail, ok, type Result } from './result.js';

export interface HostChain {
  /** Each symlink met, at its host path, with its content as written. */
  links: { path: string; target: string }[];
  /** The real path of what the chain ends at. */
  real: string;
  stat: fs.BigIntStats;
}

const MAX_HOPS = 40;

export function hostChain(p: string): Result<HostChain, string> {
  const links: HostChain['links'] = [];
  let resolved = '';
  let rest = p.split('/').filter((c) => c !== '' && c !== '.');
  let hops = 0;
  while (rest.length) {
    const name = rest.shift()!;
    if (name === '..') { resolved = resolved.slice(0, resolved.lastIndexOf('/')); continue; }
    const cand = `${resolved}/${name}`;
    let st: fs.BigIntStats | undefined;
    try { st = fs.lstatSync(cand, { bigint: true, throwIfNoEntry: false }); } catch (err) { return fail(`${cand}: ${(err as NodeJS.ErrnoException).code}`); }
    if (!st) return fail(`${cand} does not exist`);
    if (st.isSymbolicLink()) {
      if (++hops > MAX_HOPS) return fail(`${p}: too many levels of symbolic links`);
      const target = fs.readlinkSync(cand);
      links.push({ path: cand, target });
      if (target.startsWith('/')) resolved = '';
      rest = [...target.split('/').filter((c) => c !== '' && c !== '.'), ...rest];
      continue;
    }
    if (rest.length && !st.isDirectory()) return fail(`${cand} is not a directory`);
    resolved = cand;
  }
  const stat = fs.lstatSync(resolved || '/', { bigint: true });
  return ok({ links, real: resolved || '/', stat });
}
