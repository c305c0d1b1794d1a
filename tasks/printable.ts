// Text from the jail (a link's target, a file's name, a #! line) shown to a person: its
// control characters escaped, so a newline cannot forge an output line of its own and an
// escape sequence cannot reach the administrator's terminal; bidirectional overrides
// escaped, so `a\u202Egnp.sh` cannot pass for `ahs.png`. Advice to paste into a jailfile
// (`allow('setuid', ...)`, `elf(...)`, trace's entries) quotes such text with jsString(),
// and a command to paste (`jail make ROOT=... PORT=8080`) quotes its words with shellWord().

/**
 * What must never reach a terminal as it is: C0 and C1 controls, DEL, line separators,
 * bidirectional controls, and a name's bytes that are not UTF-8 (byte-names.ts).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g;

/** As a JavaScript escape: the same string when pasted into a jailfile. */
const escapeJs = (c: string): string => {
  const n = c.charCodeAt(0);
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
};

/** As shown to a person: a byte that is not UTF-8 as the byte, `\xff`. */
const escape = (c: string): string => {
  const n = c.charCodeAt(0);
  return n >= 0xdc80 && n <= 0xdcff ? `\\x${(n - 0xdc00).toString(16)}` : escapeJs(c);
};

/** The unsafe characters as `\xNN` / `\uNNNN`, and a backslash as `\\`, so an escape shown cannot be told apart from the same characters in the name. */
export function printable(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(UNSAFE, escape);
}

/** The unsafe characters escaped, backslashes left as they are: for text that holds jsString() literals. */
export function printableCode(s: string): string {
  return s.replace(UNSAFE, escape);
}

/** A JavaScript string literal for a path, to paste into a jailfile: the same string whatever it holds. */
export function jsString(s: string): string {
  return `'${s.replace(/[\\']/g, '\\$&').replace(UNSAFE, escapeJs)}'`;
}

/** A word of a command to paste into the shell (`PORT=8080`, `'SITE=my site'`), unsafe characters escaped. */
export function shellWord(s: string): string {
  return printableCode(/^[\w.,:/@%+=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
}

/** ROOT=... and the other make variables, as words of a command (FROM, a pack to rebuild from, aside). */
export function varWords(vars: Record<string, string>, root: string): string {
  return [`ROOT=${root}`, ...Object.entries(vars).filter(([k]) => k !== 'ROOT' && k !== 'FROM').map(([k, v]) => `${k}=${v}`)].map(shellWord).join(' ');
}
