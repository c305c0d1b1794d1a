// The jail's account files, made from users() and groups() entries only: root plus the
// declared names, locked passwords, nothing read from the host's passwd.

import type { GroupsEntry, UsersEntry } from './entries.js';
import { fail, jailError, ok, type JailError, type Result } from './result.js';

export interface Account { name: string; uid: number; gid: number; home: string; shell: string; gecos: string; groups: string[] }
export interface Group { name: string; gid: number; members: string[] }
export interface Accounts { users: Account[]; groups: Group[] }

/** Characters that would split or forge a line of passwd/group (`:`, `,` in member lists, newlines). */
const BAD_FIELD = /[:\n\r\0]/;
const BAD_NAME = /[:,\s\0/]|^-/;
const MAX_ID = 2 ** 32 - 2;

const ROOT_USER: Account = { name: 'root', uid: 0, gid: 0, home: '/root', shell: '/usr/sbin/nologin', gecos: 'root', groups: [] };

function validId(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= MAX_ID;
}

/** Merges every users() and groups() entry of a jailfile into one consistent set, or says what clashes. */
export function collectAccounts(entries: readonly (UsersEntry | GroupsEntry)[]): Result<Accounts, JailError[]> {
  const errors: JailError[] = [];
  const users = new Map<string, { a: Account; at: string }>([['root', { a: ROOT_USER, at: '(built in)' }]]);
  const groups = new Map<string, { g: Group; at: string }>([['root', { g: { name: 'root', gid: 0, members: [] }, at: '(built in)' }]]);
  const err = (e: { at: string; label: string }, msg: string) =>
    errors.push(jailError('bad-account', `${e.at}: ${e.label}: ${msg}`, { entry: e.at, path: '/etc/passwd' }));

  for (const e of entries) {
    if (e.kind === 'groups') {
      for (const [name, spec] of Object.entries(e.groups)) {
        if (BAD_NAME.test(name) || name === '') { err(e, `group name ${JSON.stringify(name)} holds ':', ',', white space or '/'; choose a plain name`); continue; }
        if (!spec || !validId(spec.gid)) { err(e, `group ${name} needs gid as a whole number from 0 to ${MAX_ID}, such as { gid: 50 }; got ${JSON.stringify(spec?.gid)}`); continue; }
        const members = spec.members ?? [];
        if (!Array.isArray(members) || members.some((m) => typeof m !== 'string' || BAD_NAME.test(m))) { err(e, `group ${name} has members ${JSON.stringify(members)}; give a list of user names such as ['www-data'], each without ':', ',', '/' or white space`); continue; }
        const g: Group = { name, gid: spec.gid, members: [...members] };
        const prev = groups.get(name);
        if (prev && name === 'root') { err(e, 'group root is always present (gid 0); do not declare it'); continue; }
        if (prev && prev.g.gid !== g.gid) { err(e, `group ${name} is declared twice with different gids (also at ${prev.at}): ${prev.g.gid} vs ${g.gid}. Remove one of the two entries, or make them agree.`); continue; }
        if (prev) prev.g.members.push(...g.members.filter((m) => !prev.g.members.includes(m)));
        else groups.set(name, { g, at: e.at });
      }
      continue;
    }
    for (const [name, spec] of Object.entries(e.users)) {
      if (BAD_NAME.test(name) || name === '') { err(e, `user name ${JSON.stringify(name)} holds ':', ',', white space or '/'; choose a plain name`); continue; }
      if (!spec || !validId(spec.uid) || !validId(spec.gid)) { err(e, `user ${name} needs uid and gid as whole numbers from 0 to ${MAX_ID}, such as { uid: 1000, gid: 1000 }; got uid ${JSON.stringify(spec?.uid)}, gid ${JSON.stringify(spec?.gid)}`); continue; }
      if (name === 'root') { err(e, 'root is always present (uid 0, no password, no shell); do not declare it'); continue; }
      if (spec.uid === 0) { err(e, `user ${name} has uid 0: only root may, and a second root account is a way out of the jail; give it an unprivileged uid`); continue; }
      const a: Account = {
        name, uid: spec.uid, gid: spec.gid,
        home: spec.home ?? '/nonexistent', shell: spec.shell ?? '/usr/sbin/nologin', gecos: spec.gecos ?? '',
        groups: [...(spec.groups ?? [])],
      };
      const bad = (['home', 'shell', 'gecos'] as const).find((k) => typeof a[k] !== 'string' || BAD_FIELD.test(a[k]));
      if (bad) { err(e, `user ${name} has a ${bad} with ':' or a newline`); continue; }
      const prev = users.get(name);
      if (prev) {
        const differ = (['uid', 'gid', 'home', 'shell', 'gecos', 'groups'] as const).flatMap((k) => {
          const [was, now] = [JSON.stringify(prev.a[k]), JSON.stringify(a[k])];
          return was === now ? [] : [`${k}: ${k === 'uid' || k === 'gid' ? `${prev.a[k]} vs ${a[k]}` : `${was} vs ${now}`}`];
        });
        if (differ.length) err(e, `user ${name} is declared twice, differently (also at ${prev.at}). They differ in ${differ.join('; ')}. Remove one of the two entries, or make them agree.`);
        continue;
      }
      const clash = [...users.values()].find((u) => u.a.uid === a.uid);
      if (clash) { err(e, `user ${name} has uid ${a.uid}, which ${clash.a.name} already has (at ${clash.at}); uids must be unique`); continue; }
      users.set(name, { a, at: e.at });
    }
  }

  // Each user's primary group exists: declared, or made with the user's name.
  for (const { a, at } of users.values()) {
    if (![...groups.values()].some((g) => g.g.gid === a.gid)) {
      if (groups.has(a.name)) errors.push(jailError('bad-account', `${at}: user ${a.name} has gid ${a.gid}, but group ${a.name} has another gid; declare the group in groups()`, { entry: at }));
      else groups.set(a.name, { g: { name: a.name, gid: a.gid, members: [] }, at });
    }
    for (const gname of a.groups) {
      const g = groups.get(gname);
      if (!g) errors.push(jailError('bad-account', `${at}: user ${a.name} is in group ${gname}, which no groups() entry declares`, { entry: at }));
      else if (!g.g.members.includes(a.name)) g.g.members.push(a.name);
    }
  }
  // A member no users() entry declares would be a name in etc/group that no account has.
  for (const { g, at } of groups.values()) {
    for (const m of g.members) {
      if (!users.has(m)) errors.push(jailError('bad-account', `${at}: group ${g.name} lists member ${m}, which no users() entry declares; declare the user or drop the member`, { entry: at }));
    }
  }
  const gids = new Map<number, string>();
  for (const { g, at } of groups.values()) {
    const other = gids.get(g.gid);
    if (other !== undefined) errors.push(jailError('bad-account', `${at}: groups ${other} and ${g.name} share gid ${g.gid}; gids must be unique`, { entry: at }));
    gids.set(g.gid, g.name);
  }
  if (errors.length) return fail(errors);
  return ok({
    users: [...users.values()].map((u) => u.a).sort((x, y) => x.uid - y.uid),
    groups: [...groups.values()].map((g) => g.g).sort((x, y) => x.gid - y.gid),
  });
}

export function passwdText(acc: Accounts): string {
  return acc.users.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.gecos}:${u.home}:${u.shell}\n`).join('');
}

export function groupText(acc: Accounts): string {
  return acc.groups.map((g) => `${g.name}:x:${g.gid}:${g.members.join(',')}\n`).join('');
}

/** Every password locked (`*`): a jail has no interactive logins. */
export function shadowText(acc: Accounts): string {
  return acc.users.map((u) => `${u.name}:*::0:99999:7:::\n`).join('');
}

/** `user`, `user:group`, `uid:gid` or a uid, resolved against the jail's own accounts. */
export function resolveOwner(spec: unknown, acc: Accounts): Result<{ uid: number; gid: number }, string> {
  if (spec === undefined) return ok({ uid: 0, gid: 0 });
  if (typeof spec === 'number') return ok({ uid: spec, gid: spec });
  if (typeof spec === 'object' && spec !== null) {
    const o = spec as { uid: number; gid: number };
    return ok({ uid: o.uid, gid: o.gid });
  }
  const [u, g] = String(spec).split(':');
  const user = /^\d+$/.test(u ?? '') ? { uid: Number(u), gid: Number(u) } : acc.users.find((x) => x.name === u);
  if (!user) return fail(`owner ${JSON.stringify(spec)}: no user ${u} in the jail's users(); declare it or give a numeric uid`);
  if (g === undefined) return ok({ uid: user.uid, gid: user.gid });
  const gid = /^\d+$/.test(g) ? Number(g) : acc.groups.find((x) => x.name === g)?.gid;
  if (gid === undefined) return fail(`owner ${JSON.stringify(spec)}: no group ${g} in the jail's groups; declare it or give a numeric gid`);
  return ok({ uid: user.uid, gid });
}
