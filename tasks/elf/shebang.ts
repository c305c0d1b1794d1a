// The `#!` line of a script, read as the kernel reads it (its first BINPRM_BUF_SIZE bytes):
// elf() brings a script's interpreter from it, and `jail check` judges it.

/** What the kernel reads of a file to find its `#!` line (BINPRM_BUF_SIZE). */
export const SHEBANG_BYTES = 256;

/** Does the file start with `#!`? */
export function isScript(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x23 && head[1] === 0x21;
}

/**
 * The interpreter path of a `#!` line; undefined for none, a relative one, one longer than
 * the kernel reads, or one that is not UTF-8 (the kernel takes bytes; a path string could
 * not name it faithfully, so it is not judged rather than judged wrongly).
 */
export function shebangOf(head: Buffer): string | undefined {
  if (head.length < 3 || !isScript(head)) return undefined;
  const end = head.indexOf(0x0a);
  let line: string;
  try {
    line = UTF8.decode(head.subarray(2, end < 0 ? head.length : end));
  } catch {
    return undefined;
  }
  const m = /^[ \t]*([^ \t\0]+)([ \t\0]|$)/.exec(line);
  // Cut off by the read: not the path the kernel would see, so not judged.
  if (!m || (end < 0 && m[2] === '' && head.length >= SHEBANG_BYTES)) return undefined;
  return m[1]!.startsWith('/') ? m[1] : undefined;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
