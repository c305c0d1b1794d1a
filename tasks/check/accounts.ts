// The jail's account files, read as data (never through the host's or the jail's libc):
// a second uid 0, password hashes, login shells that are not there.
//
// Shells: a missing shell is reported for accounts whose shell is a real one (/bin/sh,
// /bin/bash...), because logins, su and anything that runs $SHELL then fail. A missing
// nologin or false is not reported: an account whose shell cannot run cannot log in
// either, which is what those shells are for.

import { jsString } from '../printable.js';
import { RootPaths } from '../elf/index.js';
import { isPlainId, libcId } from '../passwd-id.js';
import type { Context, JailAccount, OddId } from './context.js';
import type { RootReader } from './reader.js';

const MAX_ACCOUNT_FILE = 4 * 1024 * 1024;
const NO_LOGIN_SHELLS = new Set(['nologin', 'false']);
/** `*`, `!`, `!!`, `!*`...: a locked password field that holds no hash. */
const LOCKED = /^[!*]+$/;

/** A file of the jail as its own libc would find it (links followed inside the jail), read without leaving ROOT. */
export function readJailFile(reader: RootReader, jailPath: string, max = MAX_ACCOUNT_FILE): { text?: string; real?: string } {
  const look = new RootPaths(reader.root).lookup(jailPath);
  if (look.kind !== 'found') return {};
  const buf = reader.readFile(look.real, max);
  return buf ? { text: buf.toString('utf8'), real: look.real } : { real: look.real };
}

function lines(text: string | undefined): { fields: string[]; line: number }[] {
  if (text === undefined) return [];
  const out: { fields: string[]; line: number }[] = [];
  text.split('\n').forEach((raw, i) => {
    // glibc skips a line's leading whitespace, then empty and # lines; +/- lines are NIS's (nss_compat), never an account of nss_files.
    const l = raw.replace(/^[ \t\v\f\r]+/, '');
    if (l === '' || l.startsWith('#') || l.startsWith('+') || l.startsWith('-')) return;
    out.push({ fields: l.split(':'), line: i + 1 });
  });
  return out;
}

export function readAccounts(reader: RootReader): { accounts: JailAccount[]; groups: Map<number, string>; members: Map<number, string[]>; oddIds: OddId[] } {
  const accounts: JailAccount[] = [];
  const oddIds: OddId[] = [];
  /** The id the libc reads from field `i` of a line, noting a field that is not plain digits. */
  const id = (file: OddId['file'], f: string[], i: number, field: OddId['field'], line: number): number | undefined => {
    const text = f[i] ?? '';
    const v = libcId(text);
    if (!isPlainId(text) || v === undefined) oddIds.push({ file, name: f[0]!, line, field, text, id: v });
    return v;
  };
  for (const { fields: f, line } of lines(readJailFile(reader, '/etc/passwd').text)) {
    if (f.length < 7) continue;
    const uid = id('/etc/passwd', f, 2, 'uid', line);
    const gid = id('/etc/passwd', f, 3, 'gid', line);
    if (uid === undefined || gid === undefined) continue; // the libc skips the line: no account
    accounts.push({ name: f[0]!, passwd: f[1]!, uid, gid, home: f[5]!, shell: f.slice(6).join(':'), line, ...(isPlainId(f[2]!) ? {} : { uidText: f[2]! }) });
  }
  const groups = new Map<number, string>();
  const members = new Map<number, string[]>();
  for (const { fields: f, line } of lines(readJailFile(reader, '/etc/group').text)) {
    if (f.length < 3) continue;
    const gid = id('/etc/group', f, 2, 'gid', line);
    if (gid === undefined || groups.has(gid)) continue; // getgrgid finds the first line
    groups.set(gid, f[0]!);
    const list = (f[3] ?? '').split(',').filter((m) => m !== '');
    if (list.length) members.set(gid, list);
  }
  return { accounts, groups, members, oddIds };
}

export function checkAccounts(ctx: Context): void {
  const fsr = new RootPaths(ctx.root);
  for (const a of ctx.accounts) {
    const who = `account ${a.name} (line ${a.line})`;
    if (a.uid === 0 && a.name !== 'root') {
      const written = a.uidText === undefined ? '' : ` (written ${JSON.stringify(a.uidText)}, which the jail's libc reads as 0)`;
      ctx.add('accounts', '/etc/passwd', `${who} has uid 0${written}: a second root account, and whoever runs as it owns the jail (and can escape it)`,
        `remove the line, or give the account an unprivileged uid; declare accounts with users() instead of editing the file`);
    }
    if (a.passwd === '') {
      ctx.add('accounts', '/etc/passwd', `${who} has an empty password field: it needs no password at all`,
        `put x (or *) in the second field; users() writes locked accounts`);
    } else if (a.passwd !== 'x' && !LOCKED.test(a.passwd)) {
      ctx.add('accounts', '/etc/passwd', `${who} holds a password hash in /etc/passwd, which every jailed process can read (and crack offline)`,
        `replace it with x and keep no password in the jail; a jailed service needs none`);
    }
    const shell = a.shell === '' ? '/bin/sh' : a.shell;
    const base = shell.slice(shell.lastIndexOf('/') + 1);
    if (NO_LOGIN_SHELLS.has(base)) continue;
    if (!shell.startsWith('/')) {
      ctx.add('accounts', '/etc/passwd', `${who} has the login shell ${shell}, which is not an absolute path`,
        `give the shell's absolute path, or /usr/sbin/nologin for an account that must not log in`);
      continue;
    }
    const look = fsr.lookup(shell);
    if (look.kind !== 'found' || !look.st.isFile()) {
      ctx.add('accounts', '/etc/passwd', `${who} has the login shell ${shell}${a.shell === '' ? ' (an empty field means /bin/sh)' : ''}, which is not in the jail: logins, su and programs that run $SHELL fail`,
        `add the shell with elf(${jsString(shell)}), or set the account's shell to /usr/sbin/nologin`);
    }
  }

  for (const o of ctx.oddIds) {
    const who = `${o.file === '/etc/group' ? 'group' : 'account'} ${o.name} (line ${o.line})`;
    const what = `${who} has the ${o.field} field ${JSON.stringify(o.text)}, ${isPlainId(o.text) ? 'above the largest id (4294967295)' : 'which is not plain digits'}`;
    if (o.id === undefined) {
      ctx.add('accounts', o.file, `${what}: the jail's libc skips the whole line, so programs in the jail do not see the ${o.file === '/etc/group' ? 'group' : 'account'} a person reading the file sees`,
        `write the ${o.field} as plain digits, or remove the line; declare ${o.file === '/etc/group' ? 'groups with groups()' : 'accounts with users()'} instead of editing the file`);
    } else {
      ctx.add('accounts', o.file, `${what}: the jail's libc reads it as ${o.id}${o.id === 0 ? (o.field === 'uid' ? ' (root)' : ' (group root)') : ''}, which is not what a person or a tool that wants digits reads`,
        `write it as ${o.id}${o.id === 0 && o.name !== 'root' ? ` if that is meant, else give the ${o.file === '/etc/group' ? 'group' : 'account'} an unprivileged ${o.field}` : ''}; declare ${o.file === '/etc/group' ? 'groups with groups()' : 'accounts with users()'} instead of editing the file`);
    }
  }

  const shadow = readJailFile(ctx.reader, '/etc/shadow');
  for (const { fields: f, line } of lines(shadow.text)) {
    if (f.length < 2) continue;
    const [name, hash] = [f[0]!, f[1]!];
    const who = `account ${name} (line ${line})`;
    if (hash === '') {
      ctx.add('accounts', '/etc/shadow', `${who} has an empty password: it logs in without one`,
        `lock it with * in the second field; users() writes locked accounts`);
    } else if (!LOCKED.test(hash)) {
      const locked = hash.startsWith('!') || hash.startsWith('*');
      ctx.add('accounts', '/etc/shadow', `${who} has a ${locked ? 'locked but still present ' : ''}password hash: a jailed service needs no password, and a hash in the jail can be cracked offline`,
        `replace the hash with * (users() writes locked accounts), and change that password wherever else it is used`);
    }
  }
}
