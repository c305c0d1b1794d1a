// The checks that need only lstat and readlink: setuid/setgid, writable paths, device
// nodes, hard links shared with the host, symlinks that lead out of ROOT.

import { jsString, shellWord } from '../printable.js';
import path from 'node:path';
import { devNumbers } from '../stat.js';
import { baseName, isEntryOf, octal, parentOf } from '../targets.js';
import { hasRawBytes } from '../byte-names.js';
import { serviceUsers, type Context } from './context.js';
import { climbsLexically, hasExecBits, inDataDir, inProgramOrLibraryDir, isEtc, resolveFromHost } from './paths.js';
import type { Node } from './types.js';

const modeOf = (n: Node): number => n.st.mode & 0o7777;

/** A jail path as a word of a host command that works as printed: ROOT and the path, quoted. */
export const hostWord = (ctx: Context, p: string): string => shellWord(path.join(ctx.root, p));

export function checkSetuid(ctx: Context): void {
  for (const n of ctx.nodes) {
    if (!n.st.isFile() || (n.st.mode & 0o6000) === 0) continue;
    const bits = [
      (n.st.mode & 0o4000) !== 0 ? `setuid (it runs as uid ${n.st.uid} whoever starts it)` : '',
      (n.st.mode & 0o2000) !== 0 ? `setgid (it runs with gid ${n.st.gid})` : '',
    ].filter(Boolean).join(' and ');
    ctx.add('setuid', n.path, `is ${bits}, mode ${octal(modeOf(n))}: a way for a jailed process to gain privileges`,
      `remove the bit (copy() and elf() drop it unless { setuid: true }), or accept it after review with allow('setuid', ${jsString(n.path)})`);
  }
}

/**
 * Programs, libraries, etc, and the root: what a jailed process must not be able to replace.
 * An executable in a data() directory is the service's own, as the directory is.
 */
function isProtected(n: Node, dataDirs: readonly string[]): boolean {
  if (n.path === '/' || isEtc(n.path) || inProgramOrLibraryDir(n.path)) return true;
  if (!n.st.isFile() || (!hasExecBits(n.st) && n.elf !== true)) return false;
  return !inDataDir(n.path, dataDirs);
}

export function checkWritable(ctx: Context): void {
  // Every directory on the way to a protected path. A directory in the set has all its
  // ancestors in it too, so each climb stops at the first one already there.
  const protectedDirs = new Set<string>();
  const nodes = ctx.nodes;
  /** isProtected of each node, asked once: the second loop needs it for files again. */
  const prot = new Uint8Array(nodes.length);
  // Nodes come directory by directory: a node whose directory is the last one climbed
  // from needs no climb (nor its parent cut out as a new string).
  let climbed = '';
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    if (!isProtected(n, ctx.dataDirs)) continue;
    prot[i] = 1;
    if (n.st.isDirectory()) protectedDirs.add(n.path);
    if (n.path === '/' || isEntryOf(n.path, climbed)) continue;
    climbed = parentOf(n.path);
    for (let a = climbed; !protectedDirs.has(a); a = parentOf(a)) {
      protectedDirs.add(a);
      if (a === '/') break;
    }
  }
  const services = serviceUsers(ctx);
  const groupName = (gid: number) => ctx.groups.get(gid) ?? `gid ${gid}`;
  /** Who a group's write bit lets in: its non-root accounts (by primary gid or etc/group's list). */
  const whoCan = (gid: number, verb: string): string => {
    const names = ctx.accounts.filter((a) => a.uid !== 0 && (a.gid === gid || ctx.members.get(gid)?.includes(a.name))).map((a) => a.name);
    return names.length
      ? `${[...new Set(names)].join(', ')} (of group ${groupName(gid)}) can ${verb}`
      : `no account of the jail${gid === 0 ? ' but root' : ''} is in group ${groupName(gid)}, so only a process that gains gid ${gid} (a setgid program, say) can ${verb}`;
  };
  // A root-owned sticky directory on the way (a /tmp holding a program's directory) lets
  // nobody rename or remove the root-owned entries in it: only a protected entry of another
  // owner is at risk. Asked rarely, so the set is made on first need.
  let exposed: Set<string> | undefined;
  const stickyHolds = (dir: string): boolean => {
    if (!exposed) {
      exposed = new Set();
      for (let i = 0; i < nodes.length; i++) {
        const c = nodes[i]!;
        if (c.path !== '/' && c.st.uid !== 0 && (c.st.isDirectory() ? protectedDirs.has(c.path) : prot[i] === 1)) exposed.add(parentOf(c.path));
      }
    }
    return !exposed.has(dir);
  };
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    const isDir = n.st.isDirectory();
    if (!isDir && !n.st.isFile()) continue; // links have no permissions of their own; devices are judged as devices
    const mode = modeOf(n);
    const onPath = isDir ? protectedDirs.has(n.path) : prot[i] === 1;
    const what = isDir ? 'directory' : 'file';
    if (mode & 0o022) {
      const sticky = isDir && (mode & 0o1000) !== 0;
      if (sticky && !onPath) continue; // a sticky tmp: everyone may create, nobody may replace another's files
      // On the way to something protected, but not itself one: safe while root owns it and what lies on that way.
      if (sticky && prot[i] !== 1 && n.st.uid === 0 && stickyHolds(n.path)) continue;
      const everyone = (mode & 0o002) !== 0;
      const by = everyone ? 'everyone' : `group ${groupName(n.st.gid)}`;
      const why = isDir
        ? (sticky ? (prot[i] === 1 ? 'the sticky bit does not help here: anyone may still create files in it, and it is itself a program, library or etc directory'
          : n.st.uid !== 0 ? `the sticky bit does not help here: its owner (uid ${n.st.uid}) may replace anything in it, and it lies on the path to programs, libraries or etc`
            : 'the sticky bit does not help here: an entry in it on the path to programs, libraries or etc is not root\'s, and its owner may replace it')
          : everyone ? 'any jailed process can replace or add what lies in it' : whoCan(n.st.gid, 'replace or add what lies in it'))
        : everyone ? 'any jailed process can change it' : whoCan(n.st.gid, 'change it');
      ctx.add('world-writable', n.path, `${what} is writable by ${by} (mode ${octal(mode)}): ${why}`,
        `chmod go-w ${hostWord(ctx, n.path)} (or declare its mode); a directory services write to belongs outside the program, library and etc paths, as 1777 or owned by the service`);
      continue;
    }
    const owner = services.get(n.st.uid);
    if (owner !== undefined && onPath) {
      ctx.add('world-writable', n.path, `${what} is owned by ${owner} (uid ${n.st.uid}), a service account of the jail, which can therefore change it${isDir ? ' and replace anything beneath it' : ''}; ` +
        'the path to programs, libraries and etc must belong to root',
        `make it root's (declare it without owner, or chown root:root ${hostWord(ctx, n.path)}), and give the service its own directory for what it writes`);
    }
  }
}

/** The pseudo-devices a service may need, by number, with their names. */
const ALLOWED = new Map<string, string>([
  ['1:3', 'null'], ['1:5', 'zero'], ['1:7', 'full'], ['1:8', 'random'], ['1:9', 'urandom'], ['5:0', 'tty'], ['5:1', 'console'], ['5:2', 'ptmx'],
]);
const NUMBER_OF = new Map([...ALLOWED].map(([id, name]) => [name, id]));
const DANGER: Record<string, string> = {
  '1:1': 'mem: the host\'s physical memory',
  '1:2': 'kmem: the kernel\'s memory',
  '1:4': 'port: the host\'s I/O ports',
  '1:11': 'kmsg: the kernel log',
};

/**
 * A name that is not UTF-8 (shown with its bytes escaped): jail never makes one, and a name
 * a terminal cannot show, or shows as another, is a way to hide a planted file. What the
 * entry is (setuid, a device...) is judged by the other rules as well.
 */
export function checkNames(ctx: Context): void {
  for (const n of ctx.nodes) {
    if (!hasRawBytes(baseName(n.path))) continue;
    ctx.add('bad-name', n.path, 'its name is not valid UTF-8 (the bytes that are not are shown escaped); jail never makes such a name, so something else put it in the jail, and tools may show it as another name or not at all',
      `look at what it is (ls -b ${hostWord(ctx, parentOf(n.path))}) and remove it unless you know what put it there`);
  }
}

export function checkDevices(ctx: Context): void {
  for (const n of ctx.nodes) {
    const chr = n.st.isCharacterDevice();
    if (!chr && !n.st.isBlockDevice()) continue;
    const { major, minor } = devNumbers(n.st.rdev);
    const id = `${major}:${minor}`;
    const name = n.path.slice(n.path.lastIndexOf('/') + 1);
    const expected = n.path.startsWith('/dev/') && parentOf(n.path) === '/dev' ? NUMBER_OF.get(name) : undefined;
    const fix = `remove it${expected ? ` and declare device(${jsString(n.path)}, { type: 'c', major: ${expected.replace(':', ', minor: ')} })` : ''}; if the service truly needs it, accept it after review with allow('device', ${jsString(n.path)})`;
    const what = !chr ? `block device ${id}: raw access to a host disk or partition`
      : DANGER[id] ? `character device ${id} (${DANGER[id]})`
        : ALLOWED.has(id) ? `character device ${id} (${ALLOWED.get(id)})`
          : `character device ${id}, not one of the pseudo-devices a service needs (${[...ALLOWED.values()].join(', ')})`;
    if (expected !== undefined && (!chr || id !== expected)) {
      ctx.add('device', n.path, `is ${what}, not ${name} (${expected}): whatever writes to ${n.path} reaches that device instead`, fix);
    } else if (!chr || !ALLOWED.has(id)) {
      ctx.add('device', n.path, `is a ${what}: a jailed process can use it to reach the host`, fix);
    }
  }
}

export function checkHardlinks(ctx: Context): void {
  const names = new Map<string, Node[]>();
  for (const n of ctx.nodes) {
    if (!n.st.isFile() || n.st.nlink <= 1) continue;
    const k = `${n.st.dev}:${n.st.ino}`;
    const list = names.get(k);
    if (list) list.push(n); else names.set(k, [n]);
  }
  for (const list of names.values()) {
    const nlink = list[0]!.st.nlink;
    if (nlink <= list.length) continue;
    const outside = nlink - list.length;
    for (const n of list) {
      ctx.add('hardlink', n.path, `shares its inode with ${outside} name${outside > 1 ? 's' : ''} outside the jail (${nlink} links, ${list.length} inside ROOT): ` +
        'a change on either side changes both, and a host upgrade leaves the old (vulnerable) file alive here',
        `replace it with a copy (jail make does for declared files) or remove it`);
    }
  }
}

export function checkSymlinks(ctx: Context): void {
  const ours = (p: string, target: string) => {
    const t = ctx.declared.get(p);
    if (t?.kind === 'symlink' && t.target === target) return true;
    const r = ctx.records[p];
    return r?.k === 'symlink' && r.t === target;
  };
  for (const n of ctx.nodes) {
    if (!n.st.isSymbolicLink() || n.link === undefined) continue;
    const target = n.link;
    if (target.startsWith('/')) {
      if (target === ctx.root || target.startsWith(ctx.root + '/')) continue;
      // The jailfile's own absolute links (elf()'s mirrored chains, /etc/localtime) are the author's.
      if (n.declared || ours(n.path, target)) continue;
      ctx.add('escape-symlink', n.path, `points to ${target}, outside the jail: harmless inside the chroot, but a host tool that follows it (a backup, rsync -L, an editor run as root) reaches the host's ${target}`,
        `remove it, or point it inside the jail with a relative target; declare links the jail needs with link()`);
      continue;
    }
    const dir = parentOf(n.path);
    const r = resolveFromHost(ctx, dir, target);
    if (r.kind === 'climbs' || climbsLexically(dir, target)) {
      const host = r.kind === 'climbs' ? r.host : path.posix.resolve(ctx.root + dir, target);
      ctx.add('escape-symlink', n.path, `points to ${target}, which climbs out of ROOT when the host follows it (to ${host}); inside the chroot .. stops at /, outside it does not`,
        `remove it, or write the target without climbing above the jail's root`);
    }
  }
}
