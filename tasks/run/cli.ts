// What the boot, stop, status and run commands share at the command-line edge.

import fs from 'node:fs';
import path from 'node:path';
import type { Parsed } from '../args.js';
import type { Output } from '../progress.js';
import { checkRoot } from '../root-path.js';
import { realHostPath } from '../host-inputs.js';
import { JailFailure, jailError } from '../result.js';

/** Runs a command body, turning a JailFailure into its messages and exit status 2. */
export async function guarded(io: Output, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof JailFailure) {
      for (const e of err.errors) io.err(`jail: error: ${e.message}`);
      return 2;
    }
    throw err;
  }
}

/**
 * ROOT, checked the way make checks it, without loading the jailfile (stop and status work
 * on a jail whose jailfile is gone or broken). `followLink`: a ROOT that is itself a
 * symlink names the jail it leads to (status and stop only read and signal, keyed by the
 * real path); commands that write into ROOT refuse it, so what is built is what is named.
 */
export function rootOnly(p: Parsed, opts: { followLink?: boolean } = {}): string {
  const cwd = path.resolve(p.make.cwd ?? '.');
  const installDir = path.dirname(path.resolve(cwd, p.make.file ?? 'jailfile.ts'));
  const named = p.make.vars.ROOT;
  let r = checkRoot(named, installDir, p.command);
  // Every other check is made on the real path already; only the refusal of the link itself is waived.
  const target = !r.ok && opts.followLink && named && r.error.message.includes(' is a symlink (to ') ? linkTarget(named) : undefined;
  if (target) r = checkRoot(target, installDir, p.command);
  if (!r.ok) throw new JailFailure([r.error]);
  return r.value;
}

/** Where ROOT leads when it is a symlink (followed to the end, a dangling one to where it points), else undefined. */
function linkTarget(root: string): string | undefined {
  if (!root.startsWith('/')) return undefined;
  let cur = path.posix.normalize(root).replace(/(.)\/+$/, '$1');
  let followed = false;
  for (let i = 0; i < 40; i++) {
    const st = fs.lstatSync(cur, { throwIfNoEntry: false });
    if (!st?.isSymbolicLink()) break;
    cur = realHostPath(path.resolve(path.dirname(cur), fs.readlinkSync(cur)));
    followed = true;
  }
  return followed ? cur : undefined;
}

/** The longest --timeout: Node's timers hold at most 2^31-1 ms, and a longer one fires at once. */
export const MAX_TIMEOUT_S = Math.floor(0x7fffffff / 1000);

export function timeoutMs(p: Parsed, fallbackSeconds: number): number {
  const v = p.options.get('--timeout');
  if (v === undefined || v === true) return fallbackSeconds * 1000;
  const n = Number(v);
  if (!(typeof v === 'string' && v.trim() !== '' && n >= 1 && n <= MAX_TIMEOUT_S)) {
    throw new JailFailure([jailError('usage', `--timeout takes a number of seconds from 1 to ${MAX_TIMEOUT_S} (about 24 days), got ${JSON.stringify(v)}; jail ${p.command} did nothing.`)]);
  }
  return n * 1000;
}

export function userOption(p: Parsed): string | undefined {
  const v = p.options.get('--user');
  return typeof v === 'string' ? v : undefined;
}

/** Output of a script, indented under the line that names it. */
export function indented(text: string, max = 40): string {
  const lines = text.replace(/\s+$/, '').split('\n');
  const shown = lines.length > max ? [...lines.slice(0, max), `... (${lines.length - max} more lines)`] : lines;
  return shown.map((l) => `  | ${l}`).join('\n');
}
