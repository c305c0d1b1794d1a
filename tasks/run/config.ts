// The confinement a jail runs under: the jailfile's runtime() entries (the last one wins
// per setting) over the defaults. Pure: no file is read here.

import type { Entry, RuntimeSpec } from '../entries.js';
import { JailFailure, jailError } from '../result.js';

export interface Network {
  /** The jail's end of the veth pair, with its prefix: `10.213.7.2/24`. */
  address: string;
  /** The host's end: `10.213.7.1/24` unless the jailfile says otherwise. */
  hostAddress: string;
}

export interface RunConfig {
  user?: string;
  /** RLIMIT_CPU seconds (soft, and hard unless cpuHard says more), or undefined for no limit. */
  cpu?: number;
  /** The hard RLIMIT_CPU when a service's own limit is above runtime's (see runConfig). */
  cpuHard?: number | 'unlimited';
  /** pids.max of the jail's cgroup, or undefined for no limit. */
  pids?: number;
  /** memory limit in bytes, or undefined. */
  memory?: number;
  proc: boolean;
  network?: Network;
  /** The runtime() entry that gave the network (`jailfile.ts:12`), for messages. */
  networkAt?: string;
  namespaces: boolean;
}

export const DEFAULTS = { cpu: 300, pids: 256 } as const;

const bad = (message: string, at?: string): never => {
  throw new JailFailure([jailError('bad-runtime', at ? `${at}: runtime(): ${message}` : `runtime(): ${message}`, { entry: at })]);
};

/** `64M`, `1G`, `512K` or a number of bytes (binary units). */
export function parseBytes(v: number | string, at?: string): number {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 4096) bad(`memory must be a whole number of bytes (at least 4096) or a size like '256M', got ${v}`, at);
    return v;
  }
  const m = /^\s*(\d+)\s*([KMGT]?)i?B?\s*$/i.exec(v);
  if (!m) return bad(`memory ${JSON.stringify(v)} is not a size like '256M', '1G' or a number of bytes`, at);
  const n = Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  if (n < 4096) bad(`memory ${JSON.stringify(v)} is too small`, at);
  return n;
}

function ipv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}
const dotted = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/** `a.b.c.d/nn` (or a bare address, /32) as the subnet it is in: `{ ip, net, prefix }`, and `subnet` as text. */
export function cidr(s: string): { ip: number; net: number; prefix: number; subnet: string } | undefined {
  const m = /^([\d.]+)(?:\/(\d{1,2}))?$/.exec(s);
  const ip = m ? ipv4(m[1]!) : undefined;
  const prefix = m?.[2] !== undefined ? Number(m[2]) : 32;
  if (ip === undefined || prefix > 32) return undefined;
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  const net = (ip & mask) >>> 0;
  return { ip, net, prefix, subnet: `${dotted(net)}/${prefix}` };
}

/** Checks `a.b.c.d/nn` and derives the host's end when not given (the subnet's first address, or its second if the jail has the first). */
export function parseNetwork(spec: { address: string; hostAddress?: string }, at?: string): Network {
  const parse = (what: string, s: unknown) => {
    const m = typeof s === 'string' ? /^([\d.]+)\/(\d{1,2})$/.exec(s) : null;
    const ip = m ? ipv4(m[1]!) : undefined;
    const prefix = m ? Number(m[2]) : NaN;
    if (ip === undefined || !(prefix >= 8 && prefix <= 30)) bad(`network.${what} must be an IPv4 address with a prefix length of 8 to 30, like '10.213.7.2/24', got ${JSON.stringify(s)}`, at);
    return { ip: ip!, prefix };
  };
  const jail = parse('address', spec.address);
  const mask = jail.prefix === 0 ? 0 : (~0 << (32 - jail.prefix)) >>> 0;
  const net = (jail.ip & mask) >>> 0;
  const broadcast = (net | (~mask >>> 0)) >>> 0;
  if (jail.ip === net || jail.ip === broadcast) bad(`network.address ${spec.address} is the subnet's network or broadcast address`, at);
  let host: { ip: number; prefix: number };
  if (spec.hostAddress !== undefined) {
    host = parse('hostAddress', spec.hostAddress);
    if (host.prefix !== jail.prefix || ((host.ip & mask) >>> 0) !== net) bad(`network.hostAddress ${spec.hostAddress} must be in the jail's subnet ${dotted(net)}/${jail.prefix}`, at);
    if (host.ip === jail.ip) bad('network.hostAddress must differ from network.address', at);
  } else {
    host = { ip: jail.ip === net + 1 ? net + 2 : net + 1, prefix: jail.prefix };
  }
  return { address: `${dotted(jail.ip)}/${jail.prefix}`, hostAddress: `${dotted(host.ip)}/${host.prefix}` };
}

/** Folds the jailfile's runtime() entries over the defaults. */
export function runConfig(entries: readonly Entry[]): RunConfig {
  const spec: RuntimeSpec = {};
  /** The jailfile line that set each option last: an error names that entry, not the last runtime() (a service() makes one too). */
  const setAt: Partial<Record<keyof RuntimeSpec, string>> = {};
  for (const e of entries) {
    if (e.kind !== 'runtime') continue;
    for (const [k, v] of Object.entries(e.spec)) if (v !== undefined) { (spec as Record<string, unknown>)[k] = v; setAt[k as keyof RuntimeSpec] = e.at; }
  }
  const netAt = setAt.network;
  const at = (k: keyof RuntimeSpec) => setAt[k];
  const c: RunConfig = { proc: false, namespaces: true };
  if (spec.user !== undefined) {
    if (typeof spec.user !== 'string' || !spec.user) bad('user must be the name of an account in the jail', at('user'));
    c.user = spec.user;
  }
  if (spec.cpu === undefined) c.cpu = DEFAULTS.cpu;
  else if (spec.cpu !== 'unlimited') {
    if (!Number.isInteger(spec.cpu) || spec.cpu < 1) bad(`cpu must be a whole number of seconds or 'unlimited', got ${JSON.stringify(spec.cpu)}`, at('cpu'));
    c.cpu = spec.cpu;
  }
  // A service's rc script sets its own CPU limit as the jail user, who cannot raise the
  // hard limit: so the jail's hard limit is the largest of runtime's and its services',
  // and runtime's stays the soft limit of everything else (RLIMIT_CPU caps runaways; it
  // is no boundary, a process's children start from 0 s).
  if (c.cpu !== undefined) {
    for (const e of entries) {
      if (e.kind !== 'runtime' || e.serviceCpu === undefined) continue;
      const hard = c.cpuHard ?? c.cpu;
      if (e.serviceCpu === 'unlimited' || (hard !== 'unlimited' && e.serviceCpu > hard)) c.cpuHard = e.serviceCpu;
    }
  }
  if (spec.pids === undefined) c.pids = DEFAULTS.pids;
  else if (spec.pids !== false) {
    if (!Number.isInteger(spec.pids) || spec.pids < 4) bad(`pids must be a whole number, at least 4, or false, got ${JSON.stringify(spec.pids)}`, at('pids'));
    c.pids = spec.pids;
  }
  if (spec.memory !== undefined) c.memory = parseBytes(spec.memory, at('memory'));
  // A string such as 'no' or 'false' is refused, not read as true.
  for (const k of ['proc', 'namespaces'] as const) {
    if (spec[k] !== undefined && typeof spec[k] !== 'boolean') bad(`${k} needs true or false, got ${JSON.stringify(spec[k])}`, at(k));
  }
  if (spec.proc !== undefined) c.proc = spec.proc;
  if (spec.namespaces !== undefined) c.namespaces = spec.namespaces;
  if (spec.network !== undefined && spec.network !== false) {
    const n = spec.network as unknown;
    if (typeof n !== 'object' || n === null || Array.isArray(n)) bad(`network needs { address: '10.213.7.2/24' } (and optionally hostAddress) or false, got ${JSON.stringify(n)}`, netAt);
    const unknown = Object.keys(n as object).find((k) => k !== 'address' && k !== 'hostAddress');
    if (unknown !== undefined) bad(`network has an unknown option '${unknown}' (known: address, hostAddress)`, netAt);
    c.network = parseNetwork(spec.network, netAt);
    c.networkAt = netAt;
  }
  if (!c.namespaces && c.proc) bad('proc: true needs the jail\'s own PID and mount namespaces; drop namespaces: false or proc: true', at('proc'));
  return c;
}
