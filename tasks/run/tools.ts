// The host programs that confine a jail, found by absolute path before anything runs, so
// a missing one is one clear error up front rather than a half-started jail. Every one of
// them runs from the host (never from ROOT) and, but for the jailed command at the very
// end of a chain, as root outside the chroot.

import fs from 'node:fs';
import { JailFailure, jailError } from '../result.js';

export interface Tools {
  sh: string;
  sleep: string;
  unshare: string;
  nsenter: string;
  setpriv: string;
  prlimit: string;
  hostname: string;
  ip?: string;
  sysctl?: string;
  /** For install steps only (see chain.ts); they also need ip, to bring their loopback up. */
  capsh?: string;
  keyctl?: string;
}

const SEARCH = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

/** Debian packages that provide each tool, for the error message. */
const PACKAGE: Record<string, string> = {
  sh: 'dash', sleep: 'coreutils', unshare: 'util-linux', nsenter: 'util-linux', setpriv: 'util-linux', prlimit: 'util-linux',
  hostname: 'hostname', ip: 'iproute2', sysctl: 'procps', capsh: 'libcap2-bin', keyctl: 'keyutils',
};

function find(name: string): string | undefined {
  for (const dir of SEARCH) {
    const p = `${dir}/${name}`;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return undefined;
}

/** The tools, or a JailFailure naming every missing one and its package. */
export function hostTools(opts: { network: boolean; installStep?: boolean; commands?: boolean }): Tools {
  const names = ['sh', 'sleep', 'unshare', 'nsenter', 'setpriv', 'prlimit', 'hostname', ...(opts.network ? ['ip', 'sysctl'] : []),
    ...(opts.commands || opts.installStep ? ['keyctl'] : []), ...(opts.installStep ? ['capsh', ...(opts.network ? [] : ['ip'])] : [])];
  const found: Record<string, string | undefined> = {};
  const missing: string[] = [];
  for (const n of names) {
    found[n] = find(n);
    if (!found[n]) missing.push(n);
  }
  if (missing.length) {
    const pkgs = [...new Set(missing.map((m) => PACKAGE[m]!))];
    throw new JailFailure([jailError('missing-tool',
      `jail runs a jail with the host's ${missing.join(', ')}, which ${missing.length > 1 ? 'are' : 'is'} not installed here (looked in ${SEARCH.join(', ')}). Install them: apt-get install ${pkgs.join(' ')}.`)]);
  }
  return found as unknown as Tools;
}
