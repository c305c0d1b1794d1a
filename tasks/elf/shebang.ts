// The `#!` line of a script, read as the kernel reads it (its first BINPRM_BUF_SIZE bytes):
// elf() brings a script's interpreter from it, and `jail check` judges it. For
// `#!/usr/bin/env NAME` the interpreter is env, and the program that runs is the one env
// finds in PATH: it is looked up here too, in the PATH every jailed command gets.

/** What the kernel reads of a file to find its `#!` line (BINPRM_BUF_SIZE). */
export const SHEBANG_BYTES = 256;

/**
 * The PATH of every jailed command (boot, run, install steps: tasks/run/chain.ts), so the
 * one `#!/usr/bin/env NAME` searches inside the jail.
 */
export const JAIL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Does the file start with `#!`? */
export function isScript(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x23 && head[1] === 0x21;
}

/** A `#!` line: the interpreter, and the one argument the kernel passes it (the rest of the line), if any. */
export interface Shebang {
  interpreter: string;
  arg?: string;
}

/**
 * The `#!` line of a script; undefined for none, a relative interpreter, one longer than
 * the kernel reads, or one that is not UTF-8 (the kernel takes bytes; a path string could
 * not name it faithfully, so it is not judged rather than judged wrongly). `arg` is left
 * out when the read cut it off.
 */
export function parseShebang(head: Buffer): Shebang | undefined {
  if (head.length < 3 || !isScript(head)) return undefined;
  const end = head.indexOf(0x0a);
  let line: string;
  try {
    line = UTF8.decode(head.subarray(2, end < 0 ? head.length : end));
  } catch {
    return undefined;
  }
  const m = /^[ \t]*([^ \t\0]+)([ \t\0]|$)/.exec(line);
  const cut = end < 0 && head.length >= SHEBANG_BYTES;
  // Cut off by the read: not the path the kernel would see, so not judged.
  if (!m || (cut && m[2] === '') || !m[1]!.startsWith('/')) return undefined;
  // The kernel passes the rest of the line, its ends trimmed, as one argument (or none).
  const arg = line.slice(m[0].length).split('\0')[0]!.replace(/^[ \t]+|[ \t]+$/g, '');
  return arg === '' || cut ? { interpreter: m[1]! } : { interpreter: m[1]!, arg };
}

/** The interpreter path of a `#!` line (see parseShebang). */
export function shebangOf(head: Buffer): string | undefined {
  return parseShebang(head)?.interpreter;
}

/** Options of GNU env that take no value, and those that take the next word. */
const ENV_FLAGS = new Set(['-i', '-', '--ignore-environment', '-v', '--debug']);
const ENV_WITH_VALUE = new Set(['-u', '-C']);

/**
 * The program a `#!/PATH/env ...` line has env run: a name for a PATH search, or an
 * absolute path. Undefined when the interpreter is not env, when env runs nothing, or when
 * what it runs depends on more than the line says (shell-like quoting or `$` in `-S`,
 * options we do not know, a relative path): those are not judged.
 */
export function envProgram(s: Shebang): string | undefined {
  if (!/(^|\/)env$/.test(s.interpreter) || s.arg === undefined) return undefined;
  let words: string[];
  // The kernel passes `-S perl -w` as one argument, which env splits (on blanks, with
  // quoting and escapes that we do not take on).
  const split = /^(?:-S|--split-string=)(.*)$/s.exec(s.arg);
  if (split) {
    if (/["'\\$#]/.test(split[1]!)) return undefined;
    words = split[1]!.split(/[ \t]+/).filter(Boolean);
  } else {
    // Without -S, env gets the whole rest of the line as one word: `perl -w` names a
    // program whose name has a space, and env fails to find it, as we will.
    if (s.arg.startsWith('-')) return undefined;
    words = [s.arg];
  }
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (ENV_FLAGS.has(w) || /^--(unset|chdir)=/.test(w)) continue;
    if (ENV_WITH_VALUE.has(w)) { i++; continue; }
    if (w.startsWith('-')) return undefined;
    if (w.includes('=')) continue; // NAME=VALUE, for the program's environment
    return w.includes('/') && !w.startsWith('/') ? undefined : w;
  }
  return undefined;
}

/**
 * Where env (execvp) finds `name` in JAIL_PATH: the first path that is an executable file,
 * as `isExecutable` says (by reading, never running); undefined when none is. An absolute
 * name is its own answer.
 */
export function findInJailPath(name: string, isExecutable: (p: string) => boolean): string | undefined {
  if (name.startsWith('/')) return name;
  for (const dir of JAIL_PATH.split(':')) {
    const p = `${dir}/${name}`;
    if (isExecutable(p)) return p;
  }
  return undefined;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
