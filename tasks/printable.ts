// Text from the jail (a link's target, a file's name, a #! line) shown to a person: its
// control characters escaped, so a newline cannot forge an output line of its own and an
// escape sequence cannot reach the administrator's terminal.

/** Control characters (C0, DEL, C1) as `\xNN`. */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
