// A jail's own network: a named network namespace (/run/netns/jail-<hash>, so it outlives
// any one process and `jail run` can join a booted jail's) with one end of a veth pair in
// it as eth0 carrying the jail's address, and the other end on the host with the host's
// address — what the article patched bind() for: INADDR_ANY in the jail is the jail's
// address alone, and the host reaches it over the pair. No default route is set: the jail
// talks to the host's end and nothing else unless the administrator routes it on.
//
// Inside that namespace ports below 1024 are open to the unprivileged jail user
// (net.ipv4.ip_unprivileged_port_start=0, a per-namespace sysctl), so a service binds
// port 80 on its own address with no capability at all.
//
// A subnet is one jail's alone: a second jail (or the host itself) on it would give the
// host two routes for one subnet, and one of them would be unreachable. boot refuses
// before it sets anything up (see conflict()).

import fs from 'node:fs';
import { run } from '../shell.js';
import { JailFailure, jailError } from '../result.js';
import { cidr, type Network } from './config.js';
import type { Tools } from './tools.js';

export interface NetState {
  name: string;
  /** The namespace file: what nsenter --net= joins. */
  file: string;
  hostIf: string;
  address: string;
  hostAddress: string;
}

export function netNames(key: string): { name: string; hostIf: string; jailIf: string } {
  const hash = key.slice(-8);
  return { name: `jail-${hash}`, hostIf: `vjh${hash}`, jailIf: `vjj${hash}` };
}

export function exists(n: NetState): boolean {
  return fs.existsSync(n.file) && fs.existsSync(`/sys/class/net/${n.hostIf}`);
}

/** Sets the namespace up (or finds it already up, as configured); rolls back on failure. */
export async function setUp(key: string, net: Network, tools: Tools): Promise<{ state: NetState; created: boolean }> {
  const { name, hostIf, jailIf } = netNames(key);
  const state: NetState = { name, file: `/run/netns/${name}`, hostIf, address: net.address, hostAddress: net.hostAddress };
  if (exists(state)) return { state, created: false };
  await tearDown(state, tools);
  const ip = tools.ip!;
  const steps: string[][] = [
    [ip, 'netns', 'add', name],
    [ip, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', jailIf],
    [ip, 'link', 'set', jailIf, 'netns', name],
    [ip, '-n', name, 'link', 'set', jailIf, 'name', 'eth0'],
    [ip, '-n', name, 'addr', 'add', net.address, 'dev', 'eth0'],
    [ip, '-n', name, 'link', 'set', 'lo', 'up'],
    [ip, '-n', name, 'link', 'set', 'eth0', 'up'],
    [ip, 'addr', 'add', net.hostAddress, 'dev', hostIf],
    [ip, 'link', 'set', hostIf, 'up'],
    [tools.nsenter, `--net=${state.file}`, '--', tools.sysctl!, '-q', '-w', 'net.ipv4.ip_unprivileged_port_start=0'],
  ];
  for (const argv of steps) {
    const r = await run(argv, { timeoutMs: 10_000 });
    if (!r.ok) {
      await tearDown(state, tools);
      throw new JailFailure([jailError('network', `Cannot set up the jail's network (${net.address} in namespace ${name}, host end ${net.hostAddress} on ${hostIf}): ${r.error}. Nothing of it was left behind.`)]);
    }
  }
  return { state, created: true };
}

/** Deletes the namespace (which takes its end of the pair, and so the pair) and the host end if still there. */
export async function tearDown(n: NetState, tools: Tools): Promise<void> {
  const ip = tools.ip!;
  if (fs.existsSync(n.file)) await run([ip, 'netns', 'delete', n.name], { timeoutMs: 10_000 });
  if (fs.existsSync(`/sys/class/net/${n.hostIf}`)) await run([ip, 'link', 'delete', n.hostIf], { timeoutMs: 10_000 });
}

/** An IPv4 address (`10.1.2.3/24`, on an interface) or a route (`10.1.2.0/24`) in use, and who uses it, for the message. */
export interface NetUse { cidr: string; route?: boolean; who: string; /** When it is another jail's: its ROOT. */ root?: string }

/**
 * What of a jail's network is already used: `the address A is already used by WHO` when an
 * end of its pair has an address in use, `the subnet S is already used by WHO` when its
 * subnet overlaps one in use; undefined when it is free. Pure.
 */
export function conflict(net: Network, used: readonly NetUse[]): { what: string; use: NetUse } | undefined {
  const ends = [{ text: net.address, c: cidr(net.address)! }, { text: net.hostAddress, c: cidr(net.hostAddress)! }];
  const ours = ends[0]!.c;
  for (const u of used) {
    const c = cidr(u.cidr);
    const same = !u.route && c && ends.find((e) => e.c.ip === c.ip);
    if (same) return { what: `the address ${same.text} is already used by ${u.who}`, use: u };
  }
  for (const u of used) {
    const c = cidr(u.cidr);
    if (!c || c.prefix === 0) continue;
    const p = Math.min(c.prefix, ours.prefix);
    const mask = (~0 << (32 - p)) >>> 0;
    if (((c.ip & mask) >>> 0) === ((ours.ip & mask) >>> 0)) return { what: `the subnet ${ours.subnet} is already used by ${u.who}`, use: u };
  }
  return undefined;
}

/** The host's IPv4 addresses and main-table routes (not the default route), but for those on `exceptIf`. */
export async function hostUses(tools: Tools, exceptIf: string): Promise<NetUse[]> {
  const ip = tools.ip!;
  const read = async (argv: string[]): Promise<unknown[]> => {
    const r = await run([ip, '-j', ...argv], { timeoutMs: 10_000 });
    if (!r.ok) throw new JailFailure([jailError('network', `Cannot list the host's addresses and routes (${[ip, '-j', ...argv].join(' ')}: ${r.error}); jail checks them before it gives a jail a subnet.`)]);
    try { return JSON.parse(r.stdout || '[]') as unknown[]; } catch { return []; }
  };
  const out: NetUse[] = [];
  for (const l of await read(['-4', 'addr', 'show']) as { ifname?: string; addr_info?: { family?: string; local?: string; prefixlen?: number }[] }[]) {
    if (!l.ifname || l.ifname === exceptIf) continue;
    for (const a of l.addr_info ?? []) {
      if (a.family === 'inet' && a.local) out.push({ cidr: `${a.local}/${a.prefixlen ?? 32}`, who: `the host (${a.local}/${a.prefixlen ?? 32} on ${l.ifname})` });
    }
  }
  for (const r of await read(['-4', 'route', 'show', 'table', 'main']) as { dst?: string; dev?: string; type?: string }[]) {
    if (!r.dst || r.dst === 'default' || r.dev === exceptIf) continue;
    out.push({ cidr: r.dst, route: true, who: `the host (a route to ${r.dst}${r.dev ? ` on ${r.dev}` : r.type ? ` of type ${r.type}` : ''})` });
  }
  return out;
}
