// What `jail boot` and `jail run` need to know from inside ROOT — the account to run as,
// the hostname, the rc scripts — read as data, never through the jail's libraries (no
// getpwnam: NSS would load the jail's libnss_*.so into this root process, CVE-2019-14271).
//
// ROOT is not trusted: every directory on the way is opened with O_NOFOLLOW and the next
// name is looked up through that descriptor (/proc/self/fd/N/name, as openat does), so a
// planted `etc -> /etc` or `etc/passwd -> /etc/shadow` is refused instead of followed.
// Files are opened O_NONBLOCK (a FIFO does not hang us) and read up to a size cap.

import fs from 'node:fs';
import { JailFailure, jailError } from '../result.js';
import { isPlainId, libcId } from '../passwd-id.js';
import { HOSTNAME_FIX, hostnameProblem } from './hostname.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const MAX_BYTES = 1 << 20;

const refuse = (code: string, message: string, p?: string): never => {
  throw new JailFailure([jailError(code, message, { path: p })]);
};

/** Opens a directory of ROOT without following a symlink anywhere on the way; undefined if absent. */
function openDir(root: string, jailPath: string): number | undefined {
  let fd: number;
  try {
    fd = fs.openSync(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    return refuse('bad-root', `Cannot open ROOT=${root} (${code}); it must be a real directory, not a symlink.`, root);
  }
  for (const name of jailPath.split('/').filter(Boolean)) {
    let next: number;
    try {
      next = fs.openSync(`/proc/self/fd/${fd}/${name}`, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    } catch (err) {
      fs.closeSync(fd);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP' || code === 'ENOTDIR') refuse('unsafe-jail-path', `${jailPath} in the jail goes through ${name}, which is a symlink or not a directory; jail does not follow links inside ROOT. Run \`jail make\` to put the declared tree back.`, `${root}${jailPath}`);
      return refuse('unreadable', `Cannot open ${root}${jailPath} (${code}).`, `${root}${jailPath}`);
    }
    fs.closeSync(fd);
    fd = next;
  }
  return fd;
}

/** What a jail path turned out to be when it is not a regular file to read. */
export type NotAFile = 'symlink' | 'not-a-file';

/**
 * A regular file of ROOT as text, or undefined when it does not exist. Symlinks are
 * refused; `refuseAs` lets a caller say what to do about one (or about a directory).
 */
export function readJailFile(root: string, jailPath: string, refuseAs?: (what: NotAFile) => never): string | undefined {
  const slash = jailPath.lastIndexOf('/');
  const dirFd = openDir(root, jailPath.slice(0, slash) || '/');
  if (dirFd === undefined) return undefined;
  const name = jailPath.slice(slash + 1);
  let fd: number;
  try {
    fd = fs.openSync(`/proc/self/fd/${dirFd}/${name}`, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP' && refuseAs) return refuseAs('symlink');
    if (code === 'ELOOP') return refuse('unsafe-jail-path', `${jailPath} in the jail is a symlink; jail reads it only as a plain file. Run \`jail make\` to put it back.`, `${root}${jailPath}`);
    return refuse('unreadable', `Cannot read ${root}${jailPath} (${code}).`, `${root}${jailPath}`);
  } finally {
    fs.closeSync(dirFd);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() && refuseAs) refuseAs('not-a-file');
    if (!st.isFile()) refuse('unsafe-jail-path', `${jailPath} in the jail is not a regular file.`, `${root}${jailPath}`);
    const buf = Buffer.alloc(Math.min(st.size, MAX_BYTES));
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Names in a directory of ROOT that are regular files, sorted; [] when the directory is absent. */
export function listJailFiles(root: string, jailDir: string): { name: string; mode: number }[] {
  const fd = openDir(root, jailDir);
  if (fd === undefined) return [];
  try {
    const out: { name: string; mode: number }[] = [];
    for (const name of fs.readdirSync(`/proc/self/fd/${fd}`)) {
      const st = fs.lstatSync(`/proc/self/fd/${fd}/${name}`, { throwIfNoEntry: false });
      if (st?.isFile()) out.push({ name, mode: st.mode & 0o7777 });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } finally {
    fs.closeSync(fd);
  }
}

/** True when the jail path is a real directory (no symlink on the way). */
export function isJailDir(root: string, jailPath: string): boolean {
  try {
    const fd = openDir(root, jailPath);
    if (fd === undefined) return false;
    fs.closeSync(fd);
    return true;
  } catch {
    return false;
  }
}

export interface JailUser { name: string; uid: number; gid: number; home: string }

function parseLines(text: string): string[][] {
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

/** The jail's accounts from its own etc/passwd (name -> uid, gid, home). */
export function jailPasswd(root: string, text = readJailFile(root, '/etc/passwd')): JailUser[] {
  if (text === undefined) return [];
  const out: JailUser[] = [];
  for (const f of parseLines(text)) {
    if (f.length < 7) continue;
    const uid = Number(f[2]), gid = Number(f[3]);
    if (!/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] || '/' });
  }
  return out;
}

/** gid -> group name, from the jail's etc/group. */
export function jailGroups(root: string): Map<number, string> {
  const text = readJailFile(root, '/etc/group');
  const out = new Map<number, string>();
  if (text === undefined) return out;
  for (const f of parseLines(text)) if (f.length >= 3 && /^\d+$/.test(f[2]!)) out.set(Number(f[2]), f[0]!);
  return out;
}

/**
 * The unprivileged account jailed processes run as: the named one, or the first account
 * of etc/passwd that is not root. uid 0 and gid 0 are refused whatever the name: a root
 * process can leave a chroot, and etc/passwd is the jail's to tamper with.
 */
export function jailUser(root: string, wanted: string | undefined): JailUser {
  const text = readJailFile(root, '/etc/passwd');
  const users = jailPasswd(root, text);
  if (!users.length) refuse('no-jail-user', `The jail has no accounts: ${root}/etc/passwd is missing or empty. Declare one with users({ www: { uid: 80, gid: 80 } }) and run \`jail make\`; jail never runs anything in the jail as root.`, `${root}/etc/passwd`);
  const u = wanted !== undefined ? users.find((x) => x.name === wanted || String(x.uid) === wanted) : users.find((x) => x.uid !== 0 && x.gid !== 0);
  if (!u) {
    // The line may be there with an id a person and the libc read differently (`+0`, ` 0`): say that, not "no user".
    const odd = wanted === undefined ? undefined : parseLines(text ?? '').find((f) => f[0] === wanted && f.length >= 7 && (!isPlainId(f[2]!) || !isPlainId(f[3]!)));
    if (odd) {
      const [field, value] = isPlainId(odd[2]!) ? ['gid', odd[3]!] : ['uid', odd[2]!];
      refuse('no-jail-user', `The jail's etc/passwd has a line for ${wanted}, but its ${field} field ${JSON.stringify(value)} is not a plain number${libcId(value) !== undefined ? ` (the jail's libc reads it as ${libcId(value)})` : ' (the jail\'s libc skips the line)'}; jail runs nobody whose ids it cannot read the way the jail does. Write the ${field} as plain digits, or declare ${wanted} with users() and run \`jail make\`.`, `${root}/etc/passwd`);
    }
    return refuse('no-jail-user', wanted !== undefined
      ? `No user ${wanted} in the jail's etc/passwd (it has ${users.map((x) => x.name).join(', ')}). Name one of those, or declare ${wanted} with users().`
      : `The jail's etc/passwd has no account but root. Declare an unprivileged one with users({ www: { uid: 80, gid: 80 } }); jail never runs anything in the jail as root.`, `${root}/etc/passwd`);
  }
  if (u.uid === 0 || u.gid === 0) {
    // Root itself is named (--user root, runtime({ user: 'root' })): it keeps uid 0, so the way out is another account.
    const others = users.filter((x) => x.uid !== 0 && x.gid !== 0).map((x) => x.name);
    const fix = u.name === 'root'
      ? `Name an unprivileged account of the jail instead, with --user or runtime({ user }) (${others.length ? `it has ${others.join(', ')}` : 'it has none: declare one with users()'}).`
      : 'Give the user its own ids.';
    refuse('root-jail-user', `The jail user ${u.name} has uid ${u.uid} and gid ${u.gid} in the jail's etc/passwd; jail runs nothing in a jail with uid or gid 0 (a root process can leave a chroot). ${fix}`, `${root}/etc/passwd`);
  }
  return u;
}

/** The jail's hostname from its etc/hostname (the first line), or a name derived from ROOT. */
export function jailHostname(root: string): string {
  const file = `${root}/etc/hostname`;
  const text = readJailFile(root, '/etc/hostname', (what) => refuse('bad-hostname',
    `The jail's etc/hostname (${file}) is ${what === 'symlink' ? 'a symlink' : 'not a regular file'}; the jail's hostname is read from it as a plain file, and jail never follows a link inside ROOT. ${HOSTNAME_FIX}. Nothing was started.`, file));
  const problem = text === undefined ? undefined : hostnameProblem(text);
  if (problem) refuse('bad-hostname', `The jail's etc/hostname (${file}) ${problem}. ${HOSTNAME_FIX}. Nothing was started.`, file);
  const first = text?.split('\n')[0]?.trim();
  if (first) return first;
  const base = root.split('/').filter(Boolean).pop() ?? 'jail';
  return base.replace(/[^A-Za-z0-9.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63) || 'jail';
}

export interface RcScript { file: string; name: string; jailPath: string; executable: boolean }

/** The jail's rc scripts, ROOT/etc/rc.d/*.sh, in the order they start (by name: 10x before 50y). */
export function rcScripts(root: string): RcScript[] {
  return listJailFiles(root, '/etc/rc.d')
    .filter((f) => f.name.endsWith('.sh') && /^[A-Za-z0-9._-]+$/.test(f.name))
    .map((f) => ({ file: f.name, name: f.name.slice(0, -3).replace(/^\d+/, '') || f.name.slice(0, -3), jailPath: `/etc/rc.d/${f.name}`, executable: (f.mode & 0o111) !== 0 }));
}
