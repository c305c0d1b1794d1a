// The argument vectors that start a jail's processes. Pure, so the order — which is the
// whole of the security argument — can be read and tested on its own.
//
// A jailed command's chain, each program exec'ing the next in the same process:
//
//   [setpriv --pdeathsig KILL]      (jail run: dies with the jail run that started it)
//   sh -c JOIN_SCRIPT files -- ...  the host's /bin/sh writes its pid into the jail's cgroups
//   sh -c KEYRING_SCRIPT keyctl ... a new, empty session keyring (below)
//   prlimit --core=0:0 --cpu=N:H    rlimits, inherited by everything below (H > N when a
//                                   service sets a higher CPU limit of its own)
//   nsenter --target INIT --pid --mount --uts --ipc [--net]
//                                   into the jail's namespaces (forks: the child is in the PID ns)
//   setpriv --nnp --inh-caps=-all --bounding-set=-all,+sys_chroot,+setuid,+setgid
//                                   no_new_privs from here on; only the three capabilities the
//                                   next step needs stay in the bounding set
//   unshare --root=ROOT --wd=/ --setgid=G --setuid=U -- CMD
//                                   chroot(ROOT), chdir("/"), setgroups(0), setgid, setuid —
//                                   each checked, exiting on failure — then execvp(CMD)
//
// Every program up to and including that unshare is the host's, loaded before the root
// changes; unshare is the last of them and its execvp is the first exec of anything from
// ROOT, by then as the jail user: no binary or library of the jail ever runs as root. The
// user's ids are numbers read from the jail's etc/passwd as data (no NSS lookup, which
// would load the jail's libraries into a root process). setuid from 0 clears every
// capability, and no_new_privs makes setuid bits and file capabilities in the jail inert.
//
// A process keeps the session keyring it was started in across setns, setuid and chroot,
// and possesses every key linked in it, whatever its uid: a command started from the
// administrator's login session (pam_keyinit's keyring) could read their keys. The host's
// sh runs keyutils' `keyctl new_session`, which makes a new, empty session keyring its
// parent's (KEYCTL_SESSION_TO_PARENT), and then execs the rest of the chain in it; nothing
// in util-linux or capsh can, and keyrings are not namespaced but for the user keyring.
//
// The one exception to "no capability": a service booted on the host's network may bind
// a port below 1024. It gets CAP_NET_BIND_SERVICE alone, as an ambient capability —
// setpriv sets it inheritable and ambient and sets SECBIT_NO_SETUID_FIXUP so unshare's
// setuid does not clear it; the exec of CMD then leaves exactly that one capability.
// (On a jail network of its own no capability is needed: see netns.ts.)
//
// An install step (install() in the jailfile) is the one chain that runs a program of the
// jail as uid 0: `make install` must create root-owned files, chown and chmod them. Its
// init is made with a network namespace of its own holding loopback alone (up), which the
// step always enters, so no host socket — abstract Unix or 127.0.0.1 — is in its reach;
// its cgroup has `jail run`'s default pids limit. It also joins a user namespace mapping
// every id to itself (instance.ts, startUserns), so files keep their owners, but keyrings
// are per user namespace (Linux 5.3+): the step's user and user-session keyrings are new
// and empty, not root's on the host; its session keyring is a new, empty one, as every
// chain's. Its tail differs:
//
//   nsenter --target=INIT --pid --mount --uts --ipc --net --user=USERNS
//   setpriv --nnp --inh-caps=-all --ambient-caps=-all --bounding-set=-all,+sys_chroot,+setpcap,+INSTALL
//   capsh --chroot=ROOT --drop=cap_sys_chroot,cap_setpcap --shell=CMD0 -- ARGS...
//                                   chroot(ROOT), chdir("/"), then CAP_SYS_CHROOT and
//                                   CAP_SETPCAP leave the bounding set; execve(CMD0)
//
// As uid 0, exec hands a program the whole bounding set, so whichever program does the
// chroot and then execs the step would hand CAP_SYS_CHROOT on (and with it the chroot()
// escape: mkdir, chroot into it, chdir("..") past the old root). setpriv has no chroot,
// unshare no way to drop a capability after its chroot: capsh (libcap2-bin) chroots and
// then shrinks the bounding set before its execve, so the step gets INSTALL_CAPS alone.
// It is the host's capsh, loaded before the root changes, and CMD0 must be an absolute
// path (capsh does not search PATH).

// The init of a jail's namespaces (PID 1, which reaps orphans and whose death ends every
// process of the namespace):
//
//   [setpriv --pdeathsig KILL]  sh JOIN_SCRIPT  [nsenter --net=FILE]
//   unshare --pid --fork --kill-child --mount --propagation=private --uts --ipc [--net] [--mount-proc=ROOT/proc]
//   setpriv --reuid=N --regid=N --clear-groups --nnp --inh-caps=-all --bounding-set=-all --pdeathsig=KILL
//   sh -c INIT_SCRIPT
//
// The init is the host's /bin/sh, never chrooted and never root: it drops to an unused
// uid (65534, or 65533 when that is the jail user's) with no capabilities, so a jailed
// process can neither signal nor ptrace it. unshare --kill-child and setpriv --pdeathsig
// make it die when its unshare does (setpriv's uid change would otherwise clear the
// death signal), and the kernel ends every process of a PID namespace when its init dies.

import { JAIL_PATH } from '../elf/shebang.js';
import { JOIN_SCRIPT } from './cgroup.js';
import type { Tools } from './tools.js';

export const INIT_SCRIPT = 'while :; do "$1" infinity & wait; done';

/** $1 is keyctl; the rest of the chain follows. keyctl prints the new keyring's id, which is nobody's business. */
export const KEYRING_SCRIPT = '"$1" new_session >/dev/null || exit 125; shift; exec "$@"';

export interface CommandChain {
  tools: Tools;
  root: string;
  uid: number;
  gid: number;
  cmd: readonly string[];
  /** cgroup.procs files to join before anything else runs. */
  cgroupProcs: readonly string[];
  /** RLIMIT_CPU seconds (soft and hard), or none. */
  cpu?: number;
  /** A higher hard RLIMIT_CPU than cpu (for a service that sets its own). */
  cpuHard?: number | 'unlimited';
  /** PID (host's view) of the jail's init, whose namespaces the command enters. */
  init?: number;
  /** With an init: enter its network namespace too. Without one: the namespace file to enter. */
  net?: boolean | string;
  /** Grant CAP_NET_BIND_SERVICE alone (as an ambient capability). */
  bindLowPorts?: boolean;
  /** Die (SIGKILL) when the process that spawned the chain dies. */
  dieWithParent?: boolean;
  /** An install step: uid 0 in the jail with INSTALL_CAPS only (uid and gid are ignored). */
  installStep?: boolean;
  /** An install step's user namespace file (identity-mapped; instance.ts startUserns). */
  userns?: string;
}

const BOUNDING = '-all,+sys_chroot,+setuid,+setgid';

/**
 * What an install step may do as root in the jail: what `make install`, `install -o`,
 * `chown` and `chmod` need. CAP_CHOWN to give files their owners; CAP_DAC_OVERRIDE and
 * CAP_FOWNER so root's files and directories (0755 dirs, 0444 files, utime, chmod) behave
 * as root's; CAP_FSETID so a chown or write keeps the setgid bit it was given. Not
 * CAP_SETUID or CAP_SETGID: the namespace's init is the host's /bin/sh, outside the chroot,
 * as an unused uid with no capabilities, and a step able to become that uid could ptrace
 * it and act on the host through it. Nothing that reaches past ROOT or the kernel either:
 * no CAP_SYS_CHROOT (the chroot escape), CAP_SYS_ADMIN (mounts), CAP_MKNOD, CAP_SYS_PTRACE,
 * CAP_DAC_READ_SEARCH (open_by_handle_at), CAP_SYS_MODULE, CAP_NET_ADMIN, CAP_SYS_RAWIO.
 */
export const INSTALL_CAPS = ['chown', 'dac_override', 'fowner', 'fsetid'] as const;

export function commandChain(c: CommandChain): string[] {
  if (c.installStep) return installChain(c);
  if (!Number.isInteger(c.uid) || c.uid <= 0 || !Number.isInteger(c.gid) || c.gid <= 0) throw new Error(`refusing to run a jailed command as uid ${c.uid} gid ${c.gid}`);
  if (!c.cmd.length) throw new Error('no command');
  const t = c.tools;
  const argv: string[] = [];
  if (c.dieWithParent) argv.push(t.setpriv, '--pdeathsig=KILL', '--');
  argv.push(t.sh, '-c', JOIN_SCRIPT, 'jail-cgroup', ...c.cgroupProcs, '--');
  argv.push(...newSessionKeyring(t));
  argv.push(t.prlimit, '--core=0:0', ...(c.cpu !== undefined ? [`--cpu=${c.cpu}:${c.cpuHard ?? c.cpu}`] : []), '--');
  if (c.init !== undefined) argv.push(t.nsenter, `--target=${c.init}`, '--pid', '--mount', '--uts', '--ipc', ...(c.net === true ? ['--net'] : []), '--');
  else if (typeof c.net === 'string') argv.push(t.nsenter, `--net=${c.net}`, '--');
  argv.push(t.setpriv, '--nnp');
  if (c.bindLowPorts) {
    argv.push('--securebits=+no_setuid_fixup', '--inh-caps=-all,+net_bind_service', '--ambient-caps=-all,+net_bind_service', `--bounding-set=${BOUNDING},+net_bind_service`);
  } else {
    argv.push('--inh-caps=-all', `--bounding-set=${BOUNDING}`);
  }
  argv.push('--');
  argv.push(t.unshare, `--root=${c.root}`, '--wd=/', `--setgid=${c.gid}`, `--setuid=${c.uid}`, '--', ...c.cmd);
  return argv;
}

function newSessionKeyring(t: Tools): string[] {
  if (!t.keyctl) throw new Error('a jailed command needs keyctl');
  return [t.sh, '-c', KEYRING_SCRIPT, 'jail-keyring', t.keyctl];
}

function installChain(c: CommandChain): string[] {
  const t = c.tools;
  if (!t.capsh) throw new Error('an install step needs capsh');
  if (c.init === undefined || !c.userns) throw new Error('an install step runs in namespaces of its own');
  if (!c.cmd.length || !c.cmd[0]!.startsWith('/')) throw new Error('an install step\'s program must be an absolute path');
  const argv: string[] = [];
  if (c.dieWithParent) argv.push(t.setpriv, '--pdeathsig=KILL', '--');
  argv.push(t.sh, '-c', JOIN_SCRIPT, 'jail-cgroup', ...c.cgroupProcs, '--');
  argv.push(...newSessionKeyring(t));
  argv.push(t.prlimit, '--core=0:0', ...(c.cpu !== undefined ? [`--cpu=${c.cpu}:${c.cpu}`] : []), '--');
  argv.push(t.nsenter, `--target=${c.init}`, '--pid', '--mount', '--uts', '--ipc', '--net', `--user=${c.userns}`, '--');
  const caps = INSTALL_CAPS.map((x) => `+${x}`).join(',');
  argv.push(t.setpriv, '--nnp', '--inh-caps=-all', '--ambient-caps=-all', `--bounding-set=-all,+sys_chroot,+setpcap,${caps}`, '--');
  argv.push(t.capsh, `--chroot=${c.root}`, '--drop=cap_sys_chroot,cap_setpcap', `--shell=${c.cmd[0]}`, '--', ...c.cmd.slice(1));
  return argv;
}

export interface InitChain {
  tools: Tools;
  cgroupProcs: readonly string[];
  /** The network namespace file to create the init in, if the jail has its own network. */
  netFile?: string;
  /** Else a new network namespace of the init's own (loopback alone: an install step's). */
  ownNet?: boolean;
  /** Host path of the jail's /proc to mount the namespace's proc on, when asked. */
  procDir?: string;
  initUid: number;
  dieWithParent?: boolean;
}

export function initChain(c: InitChain): string[] {
  if (!Number.isInteger(c.initUid) || c.initUid <= 0) throw new Error(`refusing to run the jail's init as uid ${c.initUid}`);
  const t = c.tools;
  const argv: string[] = [];
  if (c.dieWithParent) argv.push(t.setpriv, '--pdeathsig=KILL', '--');
  argv.push(t.sh, '-c', JOIN_SCRIPT, 'jail-cgroup', ...c.cgroupProcs, '--');
  if (c.netFile) argv.push(t.nsenter, `--net=${c.netFile}`, '--');
  argv.push(t.unshare, '--pid', '--fork', '--kill-child', '--mount', '--propagation=private', '--uts', '--ipc', ...(c.ownNet && !c.netFile ? ['--net'] : []), ...(c.procDir ? [`--mount-proc=${c.procDir}`] : []), '--');
  argv.push(t.setpriv, `--reuid=${c.initUid}`, `--regid=${c.initUid}`, '--clear-groups', '--nnp', '--inh-caps=-all', '--bounding-set=-all', '--pdeathsig=KILL', '--');
  argv.push(t.sh, '-c', INIT_SCRIPT, 'jail-init', t.sleep);
  return argv;
}

/** The uid the init drops to: one no jailed process has. */
export function initUidFor(jailUid: number): number {
  return jailUid === 65534 ? 65533 : 65534;
}

/** The environment of a jailed command (the host tools before it see the same, harmlessly). */
export function jailEnv(user: { name: string; home: string }, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: JAIL_PATH,
    HOME: user.home || '/', USER: user.name, LOGNAME: user.name, LANG: 'C',
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}
