// `jail run ROOT=... [--user NAME] -- CMD ARGS...`: one command in the jail, confined as
// boot confines services (chroot, the jail user, no_new_privs, rlimits, the jail's cgroup
// limits, PID/mount/IPC/UTS namespaces with the jail's hostname, its network if it has
// one — joining a booted jail's), with the caller's stdin, stdout and stderr and nothing
// else, in a session of its own. Its exit status is passed through (128+N when a signal
// ended it).
//
// The command gets PID, mount, IPC and UTS namespaces of its own, whose init dies with
// this process: when the command exits, when `jail run` is interrupted (SIGINT, SIGTERM,
// SIGHUP) and when it is killed outright (SIGKILL: the kernel's parent-death signal, see
// chain.ts), every process the command started ends with it. Its processes also share
// the jail's cgroup, so its pids and memory limits count with the booted services'.

import type { Parsed } from '../args.js';
import type { Output } from '../progress.js';
import { analyze } from '../make.js';
import { runConfig } from '../run/config.js';
import { closeInheritedFds } from '../run/fds.js';
import { prepare } from '../run/instance.js';
import { commandProblem } from '../run/command.js';
import { runOnce } from '../run/once.js';
import { guarded, userOption } from '../run/cli.js';
import { JailFailure, jailError } from '../result.js';

export function run(p: Parsed, io: Output): Promise<number> {
  return guarded(io, () => runInJail(p, io));
}

async function runInJail(p: Parsed, io: Output): Promise<number> {
  closeInheritedFds();
  if (!p.rest.length) throw new JailFailure([jailError('usage', 'jail run needs a command after --: jail run ROOT=DIR [--user NAME] -- CMD ARGS...')]);
  const a = await analyze(p.make, p.command, true);
  for (const w of a.warnings) io.err(`jail: warning: ${w}`);
  if (!a.ok) {
    for (const e of a.errors) io.err(`jail: error: ${e.message}`);
    return 2;
  }
  const config = runConfig(a.entries);
  const j = prepare(a.root, config, userOption(p));
  const problem = commandProblem(j.root, p.rest[0]!, j.user);
  if (problem) throw new JailFailure([jailError('no-command', `${problem} Nothing was started.`, { path: p.rest[0] })]);
  const st = await runOnce(j, { cmd: p.rest, stdio: ['inherit', 'inherit', 'inherit'], env: { TERM: process.env.TERM } });
  return st.code;
}

