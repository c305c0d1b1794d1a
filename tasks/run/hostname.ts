// What makes an etc/hostname one a jail can be booted with. Pure, so that boot (which
// refuses a bad one before anything starts) and make (which warns about a declared one)
// apply the same test.

import type { Entry } from '../entries.js';

/**
 * Why the first line of a jail's etc/hostname cannot be the jail's hostname, or undefined
 * when it can (or is empty: the jail is then named after ROOT).
 */
export function hostnameProblem(text: string): string | undefined {
  const first = text.split('\n')[0]?.trim();
  if (!first || /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(first)) return undefined;
  return `says ${JSON.stringify(first.slice(0, 80))}, which is not a hostname (letters, digits, '.' and '-', starting with a letter or digit; at most 63 characters)`;
}

/** What to do about a bad etc/hostname, for boot's error and make's warning. */
export const HOSTNAME_FIX = "Declare it in the jailfile as a file holding the name, e.g. text('/etc/hostname', 'www.example.test\\n'), or leave it out (the jail is then named after ROOT), and run `jail make`";

/** A warning for each jailfile entry that declares an etc/hostname boot would refuse. */
export function declaredHostnameProblems(entries: readonly Entry[]): string[] {
  const out: string[] = [];
  const warn = (e: Entry, what: string) => out.push(`${e.at}: ${e.label}: the jail's etc/hostname ${what}, and jail boot and jail run refuse to start the jail with it. ${HOSTNAME_FIX}.`);
  for (const e of entries) {
    if (e.kind === 'text' && e.path === '/etc/hostname') {
      const problem = hostnameProblem(e.content.toString('utf8'));
      if (problem) warn(e, problem);
    } else if (e.kind === 'link' && e.path === '/etc/hostname') {
      warn(e, 'is a symlink (jail never follows a link inside ROOT)');
    } else if ((e.kind === 'dir' && e.paths.includes('/etc/hostname')) || (e.kind === 'device' && e.path === '/etc/hostname')) {
      warn(e, 'is not a regular file');
    }
  }
  return out;
}
