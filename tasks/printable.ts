// Text from the jail (a link's target, a file's name, a #! line) shown to a person: its
// control characters escaped, so a newline cannot forge an output line of its own and an
// escape sequence cannot reach the administrator's terminal; bidirectional overrides
// escaped, so `a\u202Egnp.sh` cannot pass for `ahs.png`; and the backslash itself, so an
// escape shown cannot be told apart from the same characters written in the name.

/** C0 and C1 controls, DEL, the backslash, line separators and bidirectional controls, as `\xNN` / `\uNNNN` (`\\` for `\`). */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\\\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\\') return '\\\\';
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}
