#!/usr/bin/env node
// bench/run.mjs: jail side by side with the tools users would pick instead.
//
// `npm run bench` builds dist/ and runs this file. Every row times jail and its yardstick
// in the same run, on the same files, interleaved (A B A B ...), and reports the median,
// min and max of each and the ratio of the medians. Speed claims hold only as such ratios.
// The table goes to stdout and, with the date, the machine and the exact commands, to
// bench/RESULTS.md.
//
// Rows: 1 first build of a ~10,000-file jail (vs cp -a --parents, tar | tar),
//       2 no-op re-run (vs recursive rsync -a, cp -au),
//       3 one source file changed (vs recursive rsync -a),
//       4 start-up (jail --version vs node -e 0),
//       5 peak memory of the no-op make (/usr/bin/time -v),
//       6 jail deps over every ELF in /usr/bin and /usr/sbin (vs ldd, ld.so --list, lddtree),
//       7 the Apache jail of the default jailfile (<repo>/jailfile.ts): first build (vs jailkit's
//         jk_init + jk_cp of the same programs) and no-op re-run (vs jk_update).
//
// `node bench/run.mjs --only jailkit` runs row 7 alone and splices it into the existing
// RESULTS.md (replacing an earlier row 7), leaving the other rows as they were.
//
// jailkit refuses a jail whose parent directories are writable by group or others, so /tmp
// (1777) will not do: row 7 builds both jails in /srv/jail-bench-XXXXXX (BENCH_JAILKIT_BASE
// changes /srv), a root-owned 0755 directory with a tmpfs mounted on it (mode 0755; a plain
// directory with BENCH_FS=disk), removed at the end. jailkit needs root; without it the row is n/a.
//
// Work files live in a fresh temporary directory, removed at the end. As root, a tmpfs is
// mounted on it (BENCH_FS=disk keeps it on the disk): /tmp here is journal-less ext4, where
// creating inodes right after deleting thousands of them is dominated by the allocator
// skipping "recently deleted" inodes (ext4's recently_deleted()), which buries every tool's
// own cost under the filesystem's and makes runs drift. See RESULTS.md for what was used.
//
// Exit status: 0 when every step ran (targets missed are printed as MISS, not failures),
// 1 when a build step failed, 2 on a setup problem, 130 when interrupted.
//
// Knobs (environment): BENCH_RUNS (default 7; the brief asks for at least 5), BENCH_DEPS_RUNS (5: the brief's least; the ldd and lddtree loops take seconds a run), BENCH_STARTUP_RUNS (20),
// BENCH_FS=disk|tmpfs, BENCH_TMPDIR (where the work directory goes; default os.tmpdir()),
// BENCH_JAILKIT_BASE (where row 7's jails go; default /srv; every parent must be root-owned, not group/other-writable).
// Arguments: --only jailkit (row 7 alone, spliced into RESULTS.md).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(BENCH);
const CLI = path.join(REPO, 'dist', 'tasks', 'cli.js');
const JAILFILE_SRC = path.join(BENCH, 'jailfiles', 'tenk.ts');
const RESULTS = path.join(BENCH, 'RESULTS.md');
const NODE = process.execPath;

let ONLY = null;
try {
  const { values } = parseArgs({ options: { only: { type: 'string' } }, strict: true });
  ONLY = values.only ?? null;
  if (ONLY !== null && ONLY !== 'jailkit') throw new Error(`--only ${ONLY}: the only row that runs alone is jailkit (rows 1-6 share their files)`);
} catch (err) {
  process.stderr.write(`bench: ${err.message}\nusage: node bench/run.mjs [--only jailkit]\n`);
  process.exit(2);
}

const RUNS = intEnv('BENCH_RUNS', 7);
const DEPS_RUNS = intEnv('BENCH_DEPS_RUNS', 5);
const STARTUP_RUNS = intEnv('BENCH_STARTUP_RUNS', 20);
const MiB = 1024 * 1024;

function intEnv(name, dflt) {
  const v = Number(process.env[name] ?? dflt);
  return Number.isInteger(v) && v > 0 ? v : dflt;
}

class StepFailed extends Error {}
class Interrupted extends Error {}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { interrupted = true; });

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
const t0All = process.hrtime.bigint();

// ---------------------------------------------------------------------------------------
// Running and timing

/** The work directory, shown as $WORK in the commands written to RESULTS.md. */
let WORK = '';

const shq = (s) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);
/** Row 7's directory under /srv (a tmpfs mount point), shown as $JB. */
let JB = '';
const show = (s) => {
  if (WORK) s = s.replaceAll(WORK, '$WORK');
  if (JB) s = s.replaceAll(JB, '$JB');
  return s;
};

/**
 * A command: an argument array, a working directory, and how it reads in RESULTS.md.
 * `stdout` is 'ignore' (as `> /dev/null`) or 'pipe' (the harness reads it).
 */
function cmd(argv, { cwd, stdout = 'ignore', env, display, okStatus = [0] } = {}) {
  const text = display ?? `${cwd && cwd !== REPO ? `cd ${shq(cwd)} && ` : ''}${argv.map(shq).join(' ')}`;
  return { argv, cwd: cwd ?? REPO, stdout, env, okStatus, text };
}

/** `sh -c SCRIPT sh ARGS...`: a shell pipe or loop whose file names still travel as arguments. */
function shCmd(script, args, opts = {}) {
  const shell = opts.shell ?? '/bin/sh';
  const display = opts.display ?? `${path.basename(shell)} -c ${shq(script)} sh ${args.length > 8 ? `<${args.length} files>` : args.map(shq).join(' ')}`;
  return cmd([shell, '-c', script, 'sh', ...args], { ...opts, display });
}

/** CPU seconds of waited-for children (user + system, /proc/self/stat cutime + cstime): what the runs cost, whatever else the machine did. */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
function childCpuMs() {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
  } catch { return NaN; }
}

/**
 * The environment every timed command runs in: the caller's, less the variables that make
 * each node start-up do work the commands never use. NODE_EXTRA_CA_CERTS makes node read and
 * parse a whole CA bundle before the first line of a script runs (about 80 ms here);
 * NODE_OPTIONS could add flags to one side only. Removed for jail and the yardsticks alike.
 */
const STRIPPED_ENV = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS'].filter((k) => process.env[k] !== undefined);
const BENCH_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !STRIPPED_ENV.includes(k)));

function run(c, { what } = {}) {
  const cpu0 = childCpuMs();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c.argv[0], c.argv.slice(1), {
    cwd: c.cwd,
    env: { ...BENCH_ENV, LC_ALL: 'C', ...(c.env ?? {}) },
    stdio: ['ignore', c.stdout, 'pipe'],
    maxBuffer: 1024 * MiB,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpuMs = childCpuMs() - cpu0;
  if (interrupted || r.signal === 'SIGINT' || r.signal === 'SIGTERM') throw new Interrupted();
  if (r.error) throw new StepFailed(`${what ?? show(c.text)}: could not run: ${r.error.message}`);
  const stdout = r.stdout ? r.stdout.toString() : '';
  const stderr = r.stderr ? r.stderr.toString() : '';
  return { ms, cpuMs, status: r.status, signal: r.signal, stdout, stderr };
}

/** Runs and insists on an accepted exit status: a build step that fails fails the bench. */
function must(c, what) {
  const r = run(c, { what });
  if (!c.okStatus.includes(r.status)) {
    throw new StepFailed(`${what ?? show(c.text)} exited ${r.status ?? r.signal}: ${show(r.stderr.trim() || r.stdout.trim()).slice(0, 2000)}`);
  }
  return r;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length, all: xs });

/**
 * Interleaves the contenders, A B C A B C ..., reversing the order every other round so
 * that neither side always runs right after the other, after one warm-up round whose
 * times are dropped. `prepare(name, round)` runs untimed before each run, the warm-up's
 * (round -1) included (emptying a destination, changing a source);
 * `check(name, result, round)` looks at what a run printed.
 */
function interleave(contenders, rounds, { prepare, check, label, cpuNote } = {}) {
  const times = Object.fromEntries(contenders.map((c) => [c.name, []]));
  const cpu = Object.fromEntries(contenders.map((c) => [c.name, []]));
  // Round -1 is a warm-up, run and thrown away: the first run of anything pays for cold
  // caches (page cache, dentries, a tmpfs growing), which says nothing about either side.
  for (let round = -1; round < rounds; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    const warm = [];
    for (const c of order) {
      prepare?.(c.name, round);
      const r = must(c.cmd, `${label}: ${c.name}`);
      if (round < 0) { warm.push(`${c.name} ${fmtMs(r.ms)}`); continue; }
      check?.(c.name, r, round);
      times[c.name].push(r.ms);
      cpu[c.name].push(r.cpuMs);
    }
    if (round < 0) log(`${label}: warm-up (not counted): ${warm.join(', ')}`);
    else log(`${label}: round ${round + 1}/${rounds}: ${contenders.map((c) => `${c.name} ${fmtMs(times[c.name].at(-1))}`).join(', ')}`);
  }
  if (cpuNote) {
    cpuNotes.push(`${cpuNote}: ${contenders.map((c) => `${c.name} ${fmtMs(median(cpu[c.name]))}`).join(', ')}`);
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, stats(v)]));
}

// ---------------------------------------------------------------------------------------
// Formatting

function fmtMs(ms) {
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}
const fmtMiB = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
const fmtStat = (s, f = fmtMs) => `${f(s.median)} [${f(s.min)}–${f(s.max)}]`;
const int = (n) => n.toLocaleString('en-US');

/** The rows of the table, in order. */
const rows = [];
/** Notes printed under the table. */
const notes = [];
/** CPU time (user + system) medians per row: steadier than wall time when the machine is shared. */
const cpuNotes = [];
/** Every command timed, for RESULTS.md. */
const commands = [];

function record(section, entries) {
  commands.push({ section, entries: entries.map(([name, c]) => [name, show(c.text)]) });
}

/**
 * One row: jail beside one yardstick. kind 'time' compares medians as jail/yardstick with
 * target `≤ max` (target.max) or a speed-up `yardstick/jail ≥ min` (target.speedup);
 * kind 'memory' holds KiB and may carry an absolute target (target.maxKiB).
 */
function addRow({ work, jail, jailName, yard, yardName, target, kind = 'time' }) {
  const f = kind === 'memory' ? fmtMiB : fmtMs;
  const ratio = jail.median / yard.median;
  let ratioText = `${ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)}×`;
  if (ratio < 1 / 1.05 && kind === 'time') ratioText += ` (${(1 / ratio).toFixed(1)}× faster)`;
  let targetText = '—';
  let met = '—';
  if (target?.max !== undefined) {
    targetText = `≤ ${target.max}×`;
    met = ratio <= target.max ? 'yes' : 'MISS';
  } else if (target?.speedup !== undefined) {
    targetText = target.speedup === 1 ? 'faster (< 1×)' : `≥ ${target.speedup}× faster`;
    met = 1 / ratio >= target.speedup && ratio < 1 ? 'yes' : 'MISS';
  } else if (target?.maxKiB !== undefined) {
    targetText = `≤ ${target.maxKiB / 1024} MiB`;
    met = jail.median <= target.maxKiB ? 'yes' : 'MISS';
  }
  rows.push({
    work,
    jail: `${jailName}: ${fmtStat(jail, f)}`,
    yard: `${yardName}: ${fmtStat(yard, f)}`,
    ratio: ratioText,
    target: targetText,
    met,
  });
}

function addUnavailable(work, jailText, yardText, why) {
  rows.push({ work, jail: jailText, yard: yardText, ratio: '—', target: '—', met: 'n/a' });
  notes.push(why);
}

function table() {
  const head = ['work', 'jail (median [min–max])', 'yardstick (median [min–max])', 'ratio', 'target', 'met?'];
  const body = rows.map((r) => [r.work, r.jail, r.yard, r.ratio, r.target, r.met]);
  const esc = (s) => String(s).replaceAll('|', '\\|');
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...body.map((cells) => `| ${cells.map(esc).join(' | ')} |`),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------
// The machine, the tools, the files

function machine() {
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(meminfo)?.[1] ?? 0);
  const cpu = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  let distro = 'unknown';
  try { distro = /^PRETTY_NAME="?([^"\n]+)/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? distro; } catch { /* not there */ }
  return {
    nproc: os.availableParallelism(),
    cpu,
    memTotalKiB: kib('MemTotal'),
    memAvailableKiB: kib('MemAvailable'),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    distro,
  };
}

const have = (file) => { try { fs.accessSync(file, fs.constants.X_OK); return true; } catch { return false; } };
function which(name) {
  for (const d of (process.env.PATH ?? '/usr/bin:/bin').split(':')) if (d && have(path.join(d, name))) return path.join(d, name);
  return null;
}
function version(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  return ((r.stdout || r.stderr || '').split('\n')[0] ?? '').trim();
}

function ensureTools() {
  const needApt = [];
  if (!which('rsync')) needApt.push('rsync');
  if (!have('/usr/bin/time')) needApt.push('time');
  if (needApt.length && process.getuid?.() === 0 && which('apt-get')) {
    log(`installing ${needApt.join(' ')} (apt-get install -y)`);
    const r = spawnSync('apt-get', ['install', '-y', ...needApt], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0) log(`apt-get install failed: ${r.stderr?.toString().trim().split('\n').at(-1)}`);
  }
  const still = ['rsync', 'cp', 'tar', 'ldd'].filter((t) => !which(t));
  if (still.length) throw new StepFailed(`missing tools: ${still.join(', ')} (install them: apt-get install -y ${still.join(' ')})`);
  if (!fs.existsSync(CLI)) throw new StepFailed(`${CLI} is missing: build first (npm run bench runs tsc -p tsconfig.json)`);
}

/** The trees the jailfile copies, read from its TREES list (one quoted path a line). */
function jailfileTrees(text) {
  const m = /TREES\s*=\s*\[([\s\S]*?)\]/.exec(text);
  if (!m) throw new StepFailed(`${JAILFILE_SRC} has no TREES = [...] list`);
  return [...m[1].matchAll(/'([^']+)'/g)].map((x) => x[1]);
}

/** Counts what a tree holds, without following symlinks. */
function census(roots) {
  const c = { files: 0, links: 0, dirs: 0, bytes: 0 };
  const walk = (p) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) c.links++;
    else if (st.isFile()) { c.files++; c.bytes += st.size; }
    else if (st.isDirectory()) { c.dirs++; for (const n of fs.readdirSync(p)) walk(`${p}/${n}`); }
  };
  for (const r of roots) walk(r);
  return c;
}

/** Relative path -> short description of each entry under `root`, for comparing two copies. */
function snapshot(root) {
  const out = new Map();
  const walk = (rel) => {
    const p = rel ? `${root}/${rel}` : root;
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) out.set(rel, `link ${fs.readlinkSync(p)}`);
    else if (st.isFile()) out.set(rel, `file ${st.size}`);
    else if (st.isDirectory()) {
      if (rel) out.set(rel, 'dir');
      for (const n of fs.readdirSync(p)) walk(rel ? `${rel}/${n}` : n);
    } else out.set(rel, 'other');
  };
  walk('');
  return out;
}

function compareTrees(a, b) {
  const sa = snapshot(a), sb = snapshot(b);
  const diffs = [];
  for (const [k, v] of sa) if (sb.get(k) !== v) diffs.push(`${k}: ${v} vs ${sb.get(k) ?? 'absent'}`);
  for (const [k, v] of sb) if (!sa.has(k)) diffs.push(`${k}: absent vs ${v}`);
  return { entries: sa.size, diffs };
}

/** Regular ELF files (no symlinks, one name per inode) in the given directories. */
function elfFiles(dirs, filter = () => true) {
  const seen = new Set();
  const out = [];
  const magic = Buffer.alloc(4);
  for (const d of dirs) {
    let names;
    try { names = fs.readdirSync(d).sort(); } catch { continue; }
    for (const n of names) {
      const p = `${d}/${n}`;
      if (!filter(n)) continue;
      const st = fs.lstatSync(p);
      if (!st.isFile() || seen.has(`${st.dev}:${st.ino}`)) continue;
      let fd;
      try {
        fd = fs.openSync(p, 'r');
        if (fs.readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === '\x7fELF') {
          seen.add(`${st.dev}:${st.ino}`);
          out.push(p);
        }
      } catch { /* unreadable: skip */ } finally { if (fd !== undefined) fs.closeSync(fd); }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The work directory

let mounted = false;

function setupWork(treeBytes) {
  const base = process.env.BENCH_TMPDIR || os.tmpdir();
  WORK = fs.mkdtempSync(path.join(base, 'jail-bench-'));
  const want = process.env.BENCH_FS ?? 'tmpfs';
  // Copies alive at once: stage, jail (row 1/2), cp, tar, rsync, jail (row 3).
  const needMiB = Math.ceil((treeBytes * 6) / MiB) + 1024;
  const availMiB = machine().memAvailableKiB / 1024;
  let fsNote;
  if (want === 'tmpfs' && process.getuid?.() === 0 && availMiB > needMiB + 4096) {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${needMiB}m,mode=0700`, 'jail-bench', WORK], { encoding: 'utf8' });
    if (r.status === 0) {
      mounted = true;
      fsNote = `tmpfs (size=${needMiB}m) mounted on a fresh directory in ${base}; the sources stay on the host's disk (warm in the page cache)`;
    } else fsNote = `the disk (${base}); mounting a tmpfs failed: ${(r.stderr || '').trim()}`;
  } else if (want === 'tmpfs') {
    fsNote = `the disk (${base}); no tmpfs: ${process.getuid?.() !== 0 ? 'not root' : `only ${Math.round(availMiB)} MiB available, ${needMiB + 4096} wanted`}`;
  } else fsNote = `the disk (${base}), as BENCH_FS=disk asks`;
  const fstype = spawnSync('findmnt', ['-n', '-o', 'FSTYPE,OPTIONS', '-T', WORK], { encoding: 'utf8' }).stdout?.trim() ?? '';
  return `${fsNote}${fstype ? ` [${fstype.split(/\s+/)[0]}]` : ''}`;
}

/**
 * The claims (/run/jail-build/*.owner) the bench's builds left on their ROOTs: each names
 * a build record under $WORK, gone with it, and a claim lasts until reboot.
 */
function dropClaims(base) {
  if (!base) return;
  const dir = '/run/jail-build';
  let names = [];
  try { names = fs.readdirSync(dir).filter((n) => n.endsWith('.owner')); } catch { return; }
  for (const n of names) {
    try {
      const { record } = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8'));
      if (typeof record === 'string' && record.startsWith(base + '/')) fs.rmSync(path.join(dir, n), { force: true });
    } catch { /* another process's, mid-write, or gone */ }
  }
}

function cleanupWork() {
  if (!WORK) return;
  try {
    if (mounted) {
      let r = spawnSync('umount', [WORK]);
      if (r.status !== 0) {
        fs.rmSync(WORK, { recursive: true, force: true, maxRetries: 3 }); // empties it; the mount point itself stays
        r = spawnSync('umount', ['-l', WORK]);
      }
      if (r.status === 0) mounted = false;
    }
    if (!mounted) fs.rmSync(WORK, { recursive: true, force: true, maxRetries: 3 });
    else log(`could not unmount ${WORK}; unmount it by hand`);
  } catch (err) {
    log(`cleanup of ${WORK} failed: ${err.message}`);
  }
}

const emptyDir = (p) => { fs.rmSync(p, { recursive: true, force: true }); fs.mkdirSync(p, { recursive: true }); };

let jbMounted = false;

/**
 * Row 7's directory: /srv/jail-bench-XXXXXX, root-owned, 0755, with a tmpfs on it (like
 * $WORK) unless BENCH_FS=disk. jailkit checks that the jail's parents are root-owned and
 * not writable by group or others; returns why not, or '' when they are.
 */
function setupJb() {
  const base = process.env.BENCH_JAILKIT_BASE || '/srv';
  fs.mkdirSync(base, { recursive: true, mode: 0o755 });
  JB = fs.mkdtempSync(path.join(base, 'jail-bench-'));
  fs.chmodSync(JB, 0o755);
  let note = `${base} (the disk)`;
  if ((process.env.BENCH_FS ?? 'tmpfs') === 'tmpfs') {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512m,mode=0755', 'jail-bench-jk', JB], { encoding: 'utf8' });
    if (r.status === 0) { jbMounted = true; note = `a tmpfs (size=512m, mode=0755) mounted on $JB = ${base}/jail-bench-XXXXXX`; }
    else note = `$JB = ${base}/jail-bench-XXXXXX on the disk; mounting a tmpfs failed: ${(r.stderr || '').trim()}`;
  } else note = `$JB = ${base}/jail-bench-XXXXXX on the disk, as BENCH_FS=disk asks`;
  const unsafe = [];
  for (let d = JB; ; d = path.dirname(d)) {
    const st = fs.statSync(d);
    if (st.uid !== 0 || (st.mode & 0o022)) unsafe.push(`${d} (uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})`);
    if (d === '/') break;
  }
  return { note, unsafe: unsafe.join(', ') };
}

function cleanupJb() {
  if (!JB) return;
  try {
    if (jbMounted) {
      let r = spawnSync('umount', [JB]);
      if (r.status !== 0) r = spawnSync('umount', ['-l', JB]);
      if (r.status === 0) jbMounted = false;
    }
    if (!jbMounted) fs.rmSync(JB, { recursive: true, force: true, maxRetries: 3 });
    else log(`could not unmount ${JB}; unmount it by hand`);
  } catch (err) {
    log(`cleanup of ${JB} failed: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------------------
// The rows

function main() {
  if (process.platform !== 'linux') throw new StepFailed('the bench needs Linux');
  ensureTools();
  const m = machine();
  const loadBefore = os.loadavg();

  const jailfileText = fs.readFileSync(JAILFILE_SRC, 'utf8');
  const listed = jailfileTrees(jailfileText);
  const trees = listed.filter((t) => fs.existsSync(t)); // the jailfile leaves out the same ones
  if (trees.length < listed.length) notes.push(`Trees not on this host, left out of the jail and of every copy: ${listed.filter((t) => !trees.includes(t)).join(', ')}.`);
  if (trees.length === 0) throw new StepFailed(`none of the trees ${path.relative(REPO, JAILFILE_SRC)} copies is on this host`);
  const rel = trees.map((t) => t.replace(/^\/+/, ''));
  const cen = census(trees);
  const fsNote = setupWork(cen.bytes);
  log(`work directory ${WORK} on ${fsNote}`);
  log(`the jail: ${int(cen.files)} files, ${int(cen.links)} symlinks, ${int(cen.dirs)} directories, ${(cen.bytes / MiB).toFixed(0)} MiB`);

  // The jailfile is copied into the work directory so its .jail/ record and cache go there.
  const jfDir = path.join(WORK, 'jailfile');
  fs.mkdirSync(jfDir);
  const jailfile = path.join(jfDir, 'tenk.ts');
  fs.writeFileSync(jailfile, jailfileText);
  const stateDir = path.join(jfDir, '.jail');
  const jailMake = (root, extra = [], opts = {}) =>
    cmd([NODE, CLI, 'make', `ROOT=${root}`, '-f', jailfile, ...extra], { ...opts, display: `jail make ROOT=${root} -f ${jailfile}${extra.length ? ' ' + extra.map(shq).join(' ') : ''}` });

  const stage = path.join(WORK, 'stage');
  const r1 = { jail: path.join(WORK, 'r1', 'jail'), cp: path.join(WORK, 'r1', 'cp'), tar: path.join(WORK, 'r1', 'tar') };
  const rsyncDst = path.join(WORK, 'rsync');
  const r3jail = path.join(WORK, 'r3', 'jail');

  // Staging: the same files, once, with cp -a --parents (this also warms the page cache).
  // cp 9.1 exits 1 on `cp -a --parents /abs/path DEST` (it cannot set the attributes of
  // the parents it names relatively), so every cp runs from / with relative sources.
  const cpParents = (flags, dest) => cmd(['cp', flags, '--parents', ...rel, dest], { cwd: '/' });
  log('staging the files (cp -a --parents)');
  emptyDir(stage);
  must(cpParents('-a', stage), 'staging');

  // ---- Row 1: first build into an empty directory
  // bash for pipefail: a failing tar -c must fail the step, not just the last stage's status.
  const tarCmd = shCmd('set -o pipefail; tar -C / -cf - "$@" | tar -C "$DEST" -xf -', rel, { shell: '/bin/bash', env: { DEST: r1.tar }, display: `tar -C / -cf - ${rel.join(' ')} | tar -C ${r1.tar} -xf -` });
  const row1 = [
    { name: 'jail make', cmd: jailMake(r1.jail) },
    { name: 'jail make, cold', cmd: jailMake(r1.jail) },
    { name: 'cp -a', cmd: cpParents('-a', r1.cp) },
    { name: 'tar | tar', cmd: tarCmd },
  ];
  record('1. first build into an empty directory (each destination emptied, untimed, before every run). "jail make": the ROOT\'s record in .jail/ removed, the transpiled jailfile kept in .jail/cache/; "jail make, cold": all of .jail/ removed, so the jailfile is transpiled too', row1.map((c) => [c.name, c.cmd]));
  // The jailfile's first transpile happens here, untimed; the cold runs redo it every time.
  must(jailMake(r1.jail, ['-n']), 'jail make -n (transpiles the jailfile)');
  const t1 = interleave(row1, RUNS, {
    label: 'row 1 (first build)', cpuNote: 'first build',
    prepare: (name) => {
      if (name === 'jail make') {
        for (const n of fs.existsSync(stateDir) ? fs.readdirSync(stateDir) : []) if (n !== 'cache') fs.rmSync(path.join(stateDir, n), { recursive: true, force: true });
        emptyDir(r1.jail);
      } else if (name === 'jail make, cold') { fs.rmSync(stateDir, { recursive: true, force: true }); emptyDir(r1.jail); }
      else if (name === 'cp -a') emptyDir(r1.cp);
      else emptyDir(r1.tar);
    },
  });
  const work1 = `first build, ${int(cen.files)} files + ${int(cen.links)} symlinks (${(cen.bytes / MiB).toFixed(0)} MiB)`;
  addRow({ work: work1, jail: t1['jail make'], jailName: 'jail make', yard: t1['cp -a'], yardName: 'cp -a --parents', target: { max: 1.2 } });
  addRow({ work: work1, jail: t1['jail make'], jailName: 'jail make', yard: t1['tar | tar'], yardName: 'tar | tar', target: {} });
  addRow({ work: `${work1}, cold: no .jail/ (jailfile transpiled too)`, jail: t1['jail make, cold'], jailName: 'jail make', yard: t1['cp -a'], yardName: 'cp -a --parents', target: {} });
  {
    const c = compareTrees(r1.jail, r1.cp);
    notes.push(c.diffs.length === 0
      ? `Row 1: the jail and the cp -a copy hold the same ${int(c.entries)} paths (same kinds, sizes, link targets).`
      : `Row 1: the jail and the cp -a copy differ in ${c.diffs.length} of ${int(c.entries)} paths, e.g. ${c.diffs.slice(0, 3).join('; ')}.`);
    fs.rmSync(r1.tar, { recursive: true, force: true });
    if (JOBS) notes.push(`Row 1: jail make ran with its default -j, which on this ROOT's filesystem is ${JOBS.defaultJobs(r1.jail)} (files written at once; 1 on disk filesystems, libuv's pool size on tmpfs and ramfs).`);
  }
  const q = run(jailMake(r1.jail, ['-q']));
  if (q.status !== 0) throw new StepFailed(`jail make -q right after a build says the jail is not up to date (exit ${q.status}): ${q.stderr.trim()}`);

  // ---- Row 2: no-op re-run
  log('row 2 setup: rsync -a stage/ rsync/');
  must(cmd(['rsync', '-a', `${stage}/`, `${rsyncDst}/`]), 'rsync initial copy');
  const noopJail = jailMake(r1.jail, ['--json'], { stdout: 'pipe' });
  const row2 = [
    { name: 'jail make', cmd: noopJail },
    { name: 'rsync -a', cmd: cmd(['rsync', '-a', `${stage}/`, `${rsyncDst}/`]) },
    { name: 'cp -au', cmd: cpParents('-au', r1.cp) },
    { name: 'node floor', cmd: cmd([NODE, path.join(BENCH, 'stat-floor.mjs'), r1.jail, ...trees], { display: `node bench/stat-floor.mjs ${r1.jail} ${trees.join(' ')}` }) },
  ];
  record('2. no-op re-run (nothing changed since the last run; rsync copies the staged tree, cp -au the host files over the row-1 copy; "node floor" is bench/stat-floor.mjs: one node process that only walks the source trees and lstats each path on both sides, the least any no-op make written for node must do)', row2.map((c) => [c.name, c.cmd]));
  let noopSeen = '';
  const t2 = interleave(row2, RUNS, {
    label: 'row 2 (no-op)', cpuNote: 'no-op',
    check: (name, r) => {
      if (name !== 'jail make') return;
      const rep = JSON.parse(r.stdout);
      const changed = rep.created.length + rep.updated.length + rep.removed.length;
      if (changed) throw new StepFailed(`the no-op jail make changed ${changed} paths: ${JSON.stringify([...rep.created, ...rep.updated, ...rep.removed].slice(0, 3))}`);
      noopSeen = `${int(rep.upToDate)} up to date`;
    },
  });
  const work2 = 'no-op re-run, same jail';
  addRow({ work: work2, jail: t2['jail make'], jailName: 'jail make', yard: t2['rsync -a'], yardName: 'rsync -a SRC/ DST/', target: { max: 1.2 } });
  addRow({ work: work2, jail: t2['jail make'], jailName: 'jail make', yard: t2['cp -au'], yardName: 'cp -au --parents', target: {} });
  addRow({ work: `${work2}: the floor (node start-up and the stat calls alone)`, jail: t2['node floor'], jailName: 'node floor', yard: t2['rsync -a'], yardName: 'rsync -a SRC/ DST/', target: {} });
  notes.push(`Row 2: every no-op jail make reported 0 created, 0 updated, 0 removed, ${noopSeen}.`);
  notes.push(`Row 2: "node floor" (bench/stat-floor.mjs) starts node, walks the source trees (readdir, lstat, readlink) and lstats each path under ROOT, and does nothing else: ${fmtMs(t2['node floor'].median)}, ${(t2['node floor'].median / t2['rsync -a'].median).toFixed(2)}× rsync. jail make's time above the floor is its own work (loading the jailfile, expanding it, the record, the plan, the checks); the floor itself is node's start-up and one synchronous stat call at a time.`);

  // ---- Row 3: one source file changed (the jailfile with SRC=stage copies bench-owned files)
  log('row 3 setup: jail make SRC=stage (first build, untimed)');
  const srcVar = `SRC=${stage}`;
  must(jailMake(r3jail, [srcVar]), 'row 3 first build');
  // The file to change: the first Perl module in the stage with one link (a hard-linked file
  // would change its siblings too).
  const perlDir = path.join(stage, 'usr/share/perl');
  const victim = (function pick(dir) {
    for (const n of fs.readdirSync(dir).sort()) {
      const p = `${dir}/${n}`;
      const st = fs.lstatSync(p);
      if (st.isFile() && st.nlink === 1 && n.endsWith('.pm')) return p;
      if (st.isDirectory()) { const f = pick(p); if (f) return f; }
    }
    return null;
  })(fs.existsSync(perlDir) ? perlDir : stage);
  if (!victim) throw new StepFailed('row 3: no single-link file to change in the stage');
  const victimJail = victim.slice(stage.length);
  const row3 = [
    { name: 'jail make', cmd: jailMake(r3jail, [srcVar, '--json'], { stdout: 'pipe' }) },
    { name: 'rsync -a', cmd: cmd(['rsync', '-a', `${stage}/`, `${rsyncDst}/`]) },
  ];
  record(`3. one file changed: before each round, untimed, a line is appended to ${show(victim)}; then both run`, row3.map((c) => [c.name, c.cmd]));
  const updates = [];
  // Both catch up on the change of their round: change the file before whichever runs first.
  let changedInRound = -1;
  const t3 = interleave(row3, RUNS, {
    label: 'row 3 (one file changed)', cpuNote: 'one file changed',
    prepare: (_name, round) => {
      if (changedInRound === round) return;
      changedInRound = round;
      fs.appendFileSync(victim, `# jail bench: change ${round + 1}\n`);
    },
    check: (name, r) => {
      if (name !== 'jail make') return;
      const rep = JSON.parse(r.stdout);
      updates.push({ created: rep.created.length, updated: rep.updated.map((a) => `${a.path} (${a.reason})`), removed: rep.removed.length });
    },
  });
  addRow({ work: 'one source file changed', jail: t3['jail make'], jailName: 'jail make', yard: t3['rsync -a'], yardName: 'rsync -a SRC/ DST/', target: { max: 1.2 } });
  {
    const exact = updates.every((u) => u.created === 0 && u.removed === 0 && u.updated.length === 1 && u.updated[0].startsWith(`${victimJail} `));
    const seen = [...new Set(updates.flatMap((u) => u.updated))];
    notes.push(exact
      ? `Row 3: jail make --json reported exactly one update in each of ${updates.length} runs: ${seen.join('; ')}.`
      : `Row 3: jail make --json did NOT report exactly one update every time: ${JSON.stringify(updates)}.`);
    if (!exact) rows.at(-1).met = 'WRONG';
    fs.rmSync(r3jail, { recursive: true, force: true });
  }

  // ---- Row 4: start-up
  const row4 = [
    { name: 'jail --version', cmd: cmd([NODE, CLI, '--version'], { display: 'jail --version' }) },
    { name: 'node -e 0', cmd: cmd([NODE, '-e', '0'], { display: 'node -e 0' }) },
  ];
  record('4. start-up', row4.map((c) => [c.name, c.cmd]));
  const t4 = interleave(row4, STARTUP_RUNS, { cpuNote: 'start-up', label: 'row 4 (start-up)' });
  addRow({ work: 'start-up', jail: t4['jail --version'], jailName: 'jail --version', yard: t4['node -e 0'], yardName: 'node -e 0', target: { max: 1.5 } });

  // ---- Row 5: peak memory of the no-op make
  if (have('/usr/bin/time')) {
    const timeV = (c) => cmd(['/usr/bin/time', '-v', ...c.argv], { cwd: c.cwd, stdout: 'ignore', display: `/usr/bin/time -v ${c.text}` });
    const row5 = [
      { name: 'jail make', cmd: timeV(jailMake(r1.jail)) },
      { name: 'node -e 0', cmd: timeV(cmd([NODE, '-e', '0'], { display: 'node -e 0' })) },
      { name: 'rsync -a', cmd: timeV(cmd(['rsync', '-a', `${stage}/`, `${rsyncDst}/`])) },
    ];
    record('5. peak memory (maximum resident set size from /usr/bin/time -v) of the no-op runs', row5.map((c) => [c.name, c.cmd]));
    const rss = Object.fromEntries(row5.map((c) => [c.name, []]));
    interleave(row5, RUNS, {
      label: 'row 5 (peak memory)',
      check: (name, r) => {
        const kib = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
        if (!Number.isFinite(kib)) throw new StepFailed(`no maximum resident set size in /usr/bin/time -v output: ${r.stderr.slice(-300)}`);
        rss[name].push(kib);
      },
    });
    const s = Object.fromEntries(Object.entries(rss).map(([k, v]) => [k, stats(v)]));
    addRow({ work: 'peak memory, no-op make', jail: s['jail make'], jailName: 'jail make', yard: s['node -e 0'], yardName: 'node -e 0', target: { maxKiB: 150 * 1024 }, kind: 'memory' });
    addRow({ work: 'peak memory, no-op make', jail: s['jail make'], jailName: 'jail make', yard: s['rsync -a'], yardName: 'rsync -a (largest process)', target: {}, kind: 'memory' });
  } else {
    addUnavailable('peak memory, no-op make', 'jail make: —', '—', 'Row 5 skipped: /usr/bin/time is missing (apt-get install time).');
  }

  // The staged and copied trees are not needed any more; free the memory before row 6.
  for (const p of [stage, rsyncDst, path.join(WORK, 'r1')]) fs.rmSync(p, { recursive: true, force: true });

  // ---- Row 6: jail deps over every ELF in /usr/bin and /usr/sbin
  const elfs = [
    ...elfFiles(['/usr/bin', '/usr/sbin']),
    ...elfFiles(['/usr/lib/apache2/modules'], (n) => n.endsWith('.so')),
  ];
  const apache = elfs.some((f) => f.startsWith('/usr/lib/apache2/'));
  const work6 = `deps of ${int(elfs.length)} ELF files (/usr/bin, /usr/sbin${apache ? ', apache2 modules' : ''})`;
  const depsProbe = run(cmd([NODE, CLI, 'deps', '--json', '/bin/sh'], { stdout: 'pipe' }));
  let depsOk = false;
  try { depsOk = [0, 1].includes(depsProbe.status) && typeof JSON.parse(depsProbe.stdout)['/bin/sh'] === 'object'; } catch { depsOk = false; }
  const depsCmd = cmd([NODE, CLI, 'deps', '--json', ...elfs], { stdout: 'pipe', okStatus: [0, 1], display: `jail deps --json <the ${elfs.length} files>` });
  const lddLoop = shCmd('for f in "$@"; do ldd "$f"; done', elfs, { stdout: 'pipe', okStatus: [0, 1], display: `sh -c 'for f in "$@"; do ldd "$f"; done' sh <the ${elfs.length} files>` });
  const ldso = ['/lib64/ld-linux-x86-64.so.2', '/lib/ld-linux-aarch64.so.1'].find(have);
  const ldsoLoop = ldso && shCmd(`for f in "$@"; do ${ldso} --list "$f"; done`, elfs, { stdout: 'pipe', okStatus: [0, 1, 127], display: `sh -c 'for f in "$@"; do ${ldso} --list "$f"; done' sh <the ${elfs.length} files>` });
  // lddtree (pax-utils) is a Python script; the python3 first in PATH may lack pyelftools.
  let lddtree = null;
  const lddtreePath = which('lddtree');
  let lddtreeNote = 'lddtree is not installed (Debian package pax-utils); its row is left out.';
  if (lddtreePath) {
    for (const argv of [[lddtreePath], ['/usr/bin/python3', lddtreePath]]) {
      const p = run(cmd([...argv, '/bin/sh'], { stdout: 'pipe', okStatus: [0, 1] }));
      if (p.status === 0 && p.stdout.includes('libc')) {
        lddtree = cmd([...argv, ...elfs], { stdout: 'pipe', okStatus: [0, 1], display: `${argv.join(' ')} <the ${elfs.length} files>` });
        lddtreeNote = '';
        break;
      }
    }
    if (!lddtree) lddtreeNote = `lddtree (${lddtreePath}) is installed but does not run (pyelftools missing?); its row is left out.`;
  }
  if (lddtreeNote) notes.push(`Row 6: ${lddtreeNote}`);

  if (!depsOk) {
    addUnavailable(work6, 'jail deps: not available yet', `ldd loop: not run`,
      `Row 6: \`jail deps --json /bin/sh\` does not work yet (exit ${depsProbe.status}: ${(depsProbe.stderr || depsProbe.stdout).trim().split('\n')[0] ?? ''}); the row is ready for when it does.`);
  } else {
    const row6 = [{ name: 'jail deps', cmd: depsCmd }, { name: 'ldd loop', cmd: lddLoop }];
    if (ldsoLoop) row6.push({ name: 'ld.so --list loop', cmd: ldsoLoop });
    if (lddtree) row6.push({ name: 'lddtree', cmd: lddtree });
    record(`6. shared-library dependencies of every regular ELF file in /usr/bin and /usr/sbin${apache ? ' and /usr/lib/apache2/modules/*.so' : ''} (${elfs.length} files, one name per inode)`, row6.map((c) => [c.name, c.cmd]));
    let depsSummary = '';
    const t6 = interleave(row6, DEPS_RUNS, {
      label: 'row 6 (deps)', cpuNote: 'deps',
      check: (name, r) => {
        if (name !== 'jail deps' || depsSummary) return;
        const doc = JSON.parse(r.stdout);
        const entries = Object.values(doc);
        const errs = entries.filter((e) => e.error).length;
        const missing = entries.filter((e) => e.missing?.length).length;
        depsSummary = `jail deps answered for ${entries.length} of ${elfs.length} files (${errs} errors, ${missing} with missing libraries, exit ${r.status})`;
      },
    });
    addRow({ work: work6, jail: t6['jail deps'], jailName: 'jail deps --json', yard: t6['ldd loop'], yardName: 'ldd loop', target: { speedup: 50 } });
    if (t6['ld.so --list loop']) addRow({ work: work6, jail: t6['jail deps'], jailName: 'jail deps --json', yard: t6['ld.so --list loop'], yardName: 'ld.so --list loop', target: { speedup: 1 } });
    if (t6.lddtree) addRow({ work: work6, jail: t6['jail deps'], jailName: 'jail deps --json', yard: t6.lddtree, yardName: 'lddtree (one process)', target: {} });
    notes.push(`Row 6: ${depsSummary}.`);
  }

  // ---- Row 7: the Apache jail of the default jailfile, jail make vs jailkit
  jailkitRow();

  const loadAfter = os.loadavg();
  const elapsed = Number(process.hrtime.bigint() - t0All) / 1e9;
  return { m, fsNote, cen, loadBefore, loadAfter, elapsed, trees };
}

// ---------------------------------------------------------------------------------------
// Row 7: the Apache jail of the default jailfile, jail make vs jailkit

const APACHE_JAILFILE = path.join(REPO, 'jailfile.ts');
const APACHE_PORT = '18090';
const JK_SECTION = 'jail-bench-apache';
/** Set by jailkitRow for the header of RESULTS.md (after "row 7 (the Apache jail vs jailkit)"). */
let row7Header = '';

/** A `NAME = ['a', 'b']` list from a source file, read as text (as jailfileTrees does). */
function constList(file, name) {
  const m = new RegExp(`${name}\\s*=\\s*\\[([\\s\\S]*?)\\]`).exec(fs.readFileSync(file, 'utf8'));
  if (!m) throw new StepFailed(`${path.relative(REPO, file)} has no ${name} = [...] list`);
  return [...m[1].matchAll(/'([^']+)'/g)].map((x) => x[1]);
}

/** A path inside `root`, every symlink resolved inside `root` (as the jail's own loader would); null if absent. */
function resolveIn(root, rel, hops = 0) {
  const parts = rel.split('/').filter(Boolean);
  const cur = [];
  for (let i = 0; i < parts.length; i++) {
    const p = path.join(root, ...cur, parts[i]);
    let st;
    try { st = fs.lstatSync(p); } catch { return null; }
    if (st.isSymbolicLink()) {
      if (hops >= 40) return null;
      const t = fs.readlinkSync(p);
      const next = t.startsWith('/') ? t : path.posix.join('/', ...cur, t);
      return resolveIn(root, path.posix.join(next, ...parts.slice(i + 1)), hops + 1);
    }
    cur.push(parts[i]);
  }
  return path.join(root, ...cur);
}

const pkgVersion = (pkg) => spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' }).stdout?.trim() || 'unknown';

/**
 * Row 7. The jail side is `jail make` of a byte copy of <repo>/jailfile.ts in $WORK (so its
 * .jail/ record goes there, not into the repository, where others' builds keep theirs). The
 * jailkit side builds the same programs: jk_init of uidbasics and netbasics (NSS, resolver
 * and host files, as nss() and dns() do) plus a section of this bench's own (the www-data
 * account, the four devices, empty directories), then jk_cp of apache2, the modules the
 * default jailfile loads (recipes/apache.ts DEFAULT_MODULES), /etc/mime.types, /etc/localtime
 * (timezone()) and the shell tools (recipes/shell.ts SHELL_TOOLS). logbasics is left out: it
 * edits the host's /etc/jailkit/jk_socketd.ini.
 */
function jailkitRow() {
  const t0 = process.hrtime.bigint();
  const loadBefore = os.loadavg();
  const work = 'the Apache jail (default jailfile.ts)';
  const section = `7. the Apache jail of the default jailfile (<repo>/jailfile.ts): jail make vs jailkit. Both jails are in $JB, emptied (untimed) before every first build; "jail make" keeps the transpiled jailfile in .jail/cache/ and removes the rest of .jail/, "jail make, cold" removes all of .jail/. The jailfile is a byte copy of <repo>/jailfile.ts in $WORK/apache/ so that its .jail/ record stays out of the repository. jk_init reads a copy of /etc/jailkit/jk_init.ini with this section appended (emptydirs lists the ones the host has):`;

  // jailkit: installed? (Debian package jailkit)
  let jkInit = which('jk_init') ?? (have('/usr/sbin/jk_init') ? '/usr/sbin/jk_init' : null);
  if (!jkInit && process.getuid?.() === 0 && which('apt-get')) {
    log('installing jailkit (apt-get install -y jailkit)');
    const r = spawnSync('apt-get', ['install', '-y', 'jailkit'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0) log(`apt-get install jailkit failed: ${r.stderr?.toString().trim().split('\n').at(-1)}`);
    jkInit = have('/usr/sbin/jk_init') ? '/usr/sbin/jk_init' : null;
  }
  const jkDir = jkInit ? path.dirname(jkInit) : '/usr/sbin';
  const jkCp = path.join(jkDir, 'jk_cp');
  const jkUpdate = path.join(jkDir, 'jk_update');
  const na = (why) => {
    for (const [w, y] of [['first build', 'jk_init + jk_cp'], ['no-op re-run', 'jk_update']]) rows.push({ work: `${work}: ${w}`, jail: 'jail make: not run', yard: `${y}: not run`, ratio: '—', target: 'faster (< 1×)', met: 'n/a' });
    notes.push(`Row 7: ${why}`);
    row7Header = `not run: ${why.replace(/\.$/, '')}`;
  };
  if (process.getuid?.() !== 0) return na('jailkit needs root (devices, owners, its own checks); run the bench as root.');
  if (!jkInit || !have(jkCp) || !have(jkUpdate)) return na('jailkit is not installed (apt-get install -y jailkit).');
  if (!fs.existsSync('/etc/jailkit/jk_init.ini')) return na('/etc/jailkit/jk_init.ini is missing (reinstall jailkit).');

  // What the default jailfile declares, read from the recipes.
  const modDir = /APACHE_MODULES\s*=\s*'([^']+)'/.exec(fs.readFileSync(path.join(REPO, 'recipes/apache.ts'), 'utf8'))?.[1] ?? '/usr/lib/apache2/modules';
  const modules = constList(path.join(REPO, 'recipes/apache.ts'), 'DEFAULT_MODULES').map((m) => `${modDir}/mod_${m}.so`);
  const tools = constList(path.join(REPO, 'recipes/shell.ts'), 'SHELL_TOOLS').filter((p) => fs.existsSync(p)); // as shell() does
  const programs = ['/usr/sbin/apache2', ...modules];
  const missing = programs.filter((p) => !fs.existsSync(p));
  if (missing.length) return na(`apache2 is not installed (missing ${missing.join(', ')}; apt-get install -y apache2).`);
  const jkFiles = [...programs, '/etc/mime.types', '/etc/localtime', ...tools];

  const { note: jbNote, unsafe } = setupJb();
  log(`row 7: jails in ${JB} on ${jbNote}`);
  if (unsafe) return na(`jailkit would refuse ${JB}: parents not root-owned or writable by group/others: ${unsafe}.`);

  // The jailfile, copied so its record goes to $WORK/apache/.jail.
  const jfDir = path.join(WORK, 'apache');
  fs.mkdirSync(jfDir, { recursive: true });
  const jailfile = path.join(jfDir, 'jailfile.ts');
  fs.copyFileSync(APACHE_JAILFILE, jailfile);
  const stateDir = path.join(jfDir, '.jail');
  const root = path.join(JB, 'jail');
  const jk = path.join(JB, 'jk');
  const jailMake = (extra = [], opts = {}) =>
    cmd([NODE, CLI, 'make', '-f', jailfile, `ROOT=${root}`, `PORT=${APACHE_PORT}`, ...extra], { ...opts, display: `jail make -f ${jailfile} ROOT=${root} PORT=${APACHE_PORT}${extra.length ? ' ' + extra.map(shq).join(' ') : ''}` });

  // jk_init's configuration: the system one, plus the part of the jailfile that is neither a program nor a library.
  const emptydirs = ['/tmp', '/etc/apache2', '/var/log/apache2', '/var/www/html'].filter((d) => fs.existsSync(d));
  const iniSection = [
    `[${JK_SECTION}]`,
    'comment = what the default jailfile declares besides programs: users(), devices(), layout() and apache() directories',
    'users = www-data',
    'groups = www-data',
    'devices = /dev/null, /dev/zero, /dev/random, /dev/urandom',
    `emptydirs = ${emptydirs.join(', ')}`,
  ];
  const iniDir = path.join(WORK, 'jailkit');
  fs.mkdirSync(iniDir, { recursive: true });
  const ini = path.join(iniDir, 'jk_init.ini');
  fs.writeFileSync(ini, `${fs.readFileSync('/etc/jailkit/jk_init.ini', 'utf8')}\n${iniSection.join('\n')}\n`);
  const sections = ['uidbasics', 'netbasics', JK_SECTION];

  const jkBuild = shCmd('"$JK_INIT" -c "$INI" -j "$JK" uidbasics netbasics "$SECTION" && "$JK_CP" -j "$JK" "$@"', jkFiles, {
    env: { JK_INIT: jkInit, JK_CP: jkCp, INI: ini, JK: jk, SECTION: JK_SECTION },
    display: `jk_init -c ${ini} -j ${jk} ${sections.join(' ')} && jk_cp -j ${jk} ${jkFiles.map(shq).join(' ')}`,
  });
  const rowA = [
    { name: 'jail make', cmd: jailMake() },
    { name: 'jail make, cold', cmd: jailMake() },
    { name: 'jk_init + jk_cp', cmd: jkBuild },
  ];
  const jkDirs = ['/usr'];
  const rowB = [
    { name: 'jail make', cmd: jailMake(['--json'], { stdout: 'pipe' }) },
    { name: 'jk_update', cmd: cmd([jkUpdate, '-j', jk, ...jkDirs], { stdout: 'pipe', display: `jk_update -j ${jk} ${jkDirs.join(' ')}` }) },
  ];
  record(`${section}\n\n\`\`\`ini\n${iniSection.join('\n')}\n\`\`\`\n\nFirst build`, rowA.map((c) => [c.name, c.cmd]));
  record('7. no-op re-run of the same two jails (jk_update is given /usr, which holds every program and library in a merged-/usr jail; with no directories it scans /bin /usr /lib /opt: through the jail\'s bin and lib links it checks usr/bin and usr/lib twice, and it prints an ERROR for the jail\'s missing opt, exit 0)', rowB.map((c) => [c.name, c.cmd]));

  // The jailfile's first transpile, untimed (the cold runs redo it every time).
  fs.mkdirSync(root, { recursive: true });
  must(jailMake(['-n']), 'row 7: jail make -n (transpiles the jailfile)');
  const jkStderr = new Set();
  const tA = interleave(rowA, RUNS, {
    label: 'row 7 (Apache jail, first build)', cpuNote: 'the Apache jail, first build',
    prepare: (name) => {
      if (name === 'jail make') {
        for (const n of fs.existsSync(stateDir) ? fs.readdirSync(stateDir) : []) if (n !== 'cache') fs.rmSync(path.join(stateDir, n), { recursive: true, force: true });
        emptyDir(root);
      } else if (name === 'jail make, cold') { fs.rmSync(stateDir, { recursive: true, force: true }); emptyDir(root); }
      else { emptyDir(jk); fs.chmodSync(jk, 0o755); }
    },
    check: (name, r) => {
      if (name !== 'jk_init + jk_cp') return;
      for (const l of r.stderr.split('\n')) if (l.trim()) jkStderr.add(l.trim().replaceAll(jk, '$JB/jk'));
    },
  });

  // Both jails hold apache2, its modules and libaprutil, and apache2 runs in both.
  const libDir = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'].find((d) => fs.existsSync(`${d}/libaprutil-1.so.0`));
  const mustHave = ['/usr/sbin/apache2', ...modules, ...(libDir ? [`${libDir}/libaprutil-1.so.0`] : [])];
  const verify = (j, who) => {
    const bad = [];
    for (const p of mustHave) {
      const real = resolveIn(j, p);
      const st = real && fs.statSync(real, { throwIfNoEntry: false });
      if (!st?.isFile() || st.size !== fs.statSync(p).size) bad.push(p);
    }
    const v = spawnSync('chroot', [j, '/usr/sbin/apache2', '-v'], { encoding: 'utf8' });
    const ver = /Server version: (\S+)/.exec(v.stdout ?? '')?.[1];
    if (bad.length || v.status !== 0 || !ver) throw new StepFailed(`row 7: the ${who} jail is not an Apache jail: ${bad.length ? `missing or wrong ${bad.join(', ')}; ` : ''}chroot ${show(j)} /usr/sbin/apache2 -v exited ${v.status}: ${(v.stderr || v.stdout || '').trim().slice(0, 300)}`);
    return ver;
  };
  const verJail = verify(root, 'jail make');
  const verJk = verify(jk, 'jailkit');
  const sj = snapshot(root), sk = snapshot(jk);
  const nonDir = (snap) => [...snap].filter(([, v]) => v !== 'dir').map(([k]) => k);
  const onlyJail = nonDir(sj).filter((k) => !sk.has(k));
  const onlyJk = nonDir(sk).filter((k) => !sj.has(k));
  const size = (j) => census([j]).bytes;

  // The no-op: the jails the last first-build round left.
  const q = run(jailMake(['-q']));
  if (q.status !== 0) throw new StepFailed(`row 7: jail make -q right after a build says the Apache jail is not up to date (exit ${q.status}): ${q.stderr.trim()}`);
  let noopSeen = '';
  const jkNoopOut = new Set();
  const tB = interleave(rowB, RUNS, {
    label: 'row 7 (Apache jail, no-op)', cpuNote: 'the Apache jail, no-op',
    check: (name, r) => {
      if (name === 'jk_update') {
        for (const l of `${r.stdout}\n${r.stderr}`.split('\n')) if (l.trim()) jkNoopOut.add(l.trim().replaceAll(jk, '$JB/jk'));
        return;
      }
      const rep = JSON.parse(r.stdout);
      const changed = rep.created.length + rep.updated.length + rep.removed.length;
      if (changed) throw new StepFailed(`row 7: the no-op jail make changed ${changed} paths: ${JSON.stringify([...rep.created, ...rep.updated, ...rep.removed].slice(0, 3))}`);
      noopSeen = `${int(rep.upToDate)} up to date`;
    },
  });

  addRow({ work: `${work}: first build`, jail: tA['jail make'], jailName: 'jail make', yard: tA['jk_init + jk_cp'], yardName: 'jk_init + jk_cp', target: { speedup: 1 } });
  addRow({ work: `${work}: first build, cold: no .jail/ (jailfile transpiled too)`, jail: tA['jail make, cold'], jailName: 'jail make', yard: tA['jk_init + jk_cp'], yardName: 'jk_init + jk_cp', target: {} });
  addRow({ work: `${work}: no-op re-run`, jail: tB['jail make'], jailName: 'jail make', yard: tB['jk_update'], yardName: `jk_update ${jkDirs.join(' ')}`, target: { speedup: 1 } });

  /** Paths, the ones under usr/lib/ summed up by their names. */
  const ex = (xs) => {
    const libs = xs.filter((x) => x.startsWith('usr/lib/')).map((x) => path.basename(x));
    const other = xs.filter((x) => !x.startsWith('usr/lib/'));
    return [...other, ...(libs.length ? [`${libs.length} under usr/lib/ (${libs.join(', ')})`] : [])].join(', ') || 'nothing';
  };
  notes.push(`Row 7: both jails hold /usr/sbin/apache2, ${modules.length} modules (${modules.map((m) => path.basename(m)).join(', ')})${libDir ? ` and ${libDir}/libaprutil-1.so.0` : ''}, the same sizes as the host's, and \`chroot JAIL /usr/sbin/apache2 -v\` runs in both (${verJail}; ${verJk}). jail's jail: ${int(sj.size)} entries, ${(size(root) / MiB).toFixed(1)} MiB; jailkit's: ${int(sk.size)} entries, ${(size(jk) / MiB).toFixed(1)} MiB. Only in jailkit's (${onlyJk.length}, directories not counted): ${ex(onlyJk)}. Only in jail's (${onlyJail.length}): ${ex(onlyJail)}.`);
  notes.push(`Row 7: jailkit copies the ${jkFiles.length} files named and their ldd closures, the uidbasics/netbasics files and the section's account, devices and directories; it writes no apache2.conf, index page, rc.d script or /etc/hostname (jail make does, from the jailfile), so its jail does not start Apache as it stands. Every first build exited 0${jkStderr.size ? `; jk_init + jk_cp printed on stderr: ${[...jkStderr].slice(0, 4).map((l) => `"${l}"`).join(', ')}` : ''}.`);
  notes.push(`Row 7: every no-op jail make reported 0 created, 0 updated, 0 removed, ${noopSeen}; jk_update ${jkDirs.join(' ')} ${jkNoopOut.size ? `printed: ${[...jkNoopOut].slice(0, 4).map((l) => `"${l}"`).join(', ')}` : 'printed nothing (nothing to update)'}. jk_update compares only what lies under the directories it is given (never etc/ or dev/); jail make checks every path it declared.`);

  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const loadAfter = os.loadavg();
  row7Header = `jailkit ${pkgVersion('jailkit')}, apache2 ${pkgVersion('apache2')}; both jails on ${jbNote}; ${RUNS} runs each; load average ${loadBefore.map((x) => x.toFixed(2)).join(', ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(', ')} after; ${elapsed.toFixed(0)} s`;
  for (const d of [root, jk]) fs.rmSync(d, { recursive: true, force: true });
}

/** The commit dist/ was built from, and whether tasks/ had uncommitted changes (others work on it concurrently). */
function gitState() {
  const git = (...a) => spawnSync('git', ['-C', REPO, ...a], { encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD').stdout?.trim();
  if (!head) return 'an unknown commit (no git)';
  const dirty = git('status', '--porcelain', '--', 'tasks', 'recipes').stdout?.trim().split('\n').filter(Boolean).length ?? 0;
  return `git ${head}${dirty ? ` plus uncommitted changes to ${dirty} paths in tasks/ and recipes/` : ''}`;
}

const CPU_INTRO = [
  'CPU time, user + system, of each run\'s whole process tree (medians; from /proc/self/stat cutime + cstime, 10 ms ticks). The',
  'machine is shared, so wall times stretch when others run; CPU time stretches less. jail make is one node process with',
  'helper threads (libuv\'s pool does the file I/O and hashing), so its CPU time can exceed its wall time:',
];

/**
 * `--only jailkit`: row 7's lines replace an earlier row 7 (or join) in each part of the
 * existing RESULTS.md: the header list, the table, the notes, the CPU notes and the commands.
 * Returns null when the file does not have those parts.
 */
function spliceRow7(md, { header, tableLines, noteLines, cpuLines, commandLines }) {
  const L = md.split('\n');
  const tableStart = L.findIndex((l) => l.startsWith('| work |'));
  const cpuStart = L.findIndex((l) => l.startsWith('CPU time, user + system'));
  const cmdStart = L.findIndex((l) => l === '## Commands');
  if (tableStart < 0 || cpuStart < tableStart || cmdStart < cpuStart) return null;
  /** The end (exclusive) of the run of lines from `i` that satisfy `ok`. */
  const runEnd = (i, ok) => { while (i < L.length && ok(L[i])) i++; return i; };
  const isBullet = (l) => l.startsWith('- ');
  // Work from the bottom up, so earlier indexes stay valid.
  // Commands: row 7's sections run from the first "7. " line to the next numbered section (or the end).
  let c0 = L.findIndex((l, i) => i > cmdStart && l.startsWith('7. '));
  let c1 = L.length;
  if (c0 < 0) c0 = L.length;
  else { const n = L.findIndex((l, i) => i > c0 && /^\d+\. /.test(l) && !l.startsWith('7. ')); if (n >= 0) c1 = n; }
  const tail = L.slice(c1);
  let head = L.slice(0, c0);
  while (head.length && head.at(-1) === '') head.pop();
  const out1 = [...head, '', ...commandLines, ...tail];
  // CPU notes: the bullet list after the CPU paragraph.
  const cpuBullets = out1.findIndex((l, i) => i > cpuStart && isBullet(l));
  const cpuEnd = runEnd(cpuBullets, isBullet);
  const cpuKept = out1.slice(cpuBullets, cpuEnd).filter((l) => !l.startsWith('- the Apache jail'));
  const out2 = [...out1.slice(0, cpuBullets), ...cpuKept, ...cpuLines, ...out1.slice(cpuEnd)];
  // Table and notes.
  const tEnd = runEnd(tableStart, (l) => l.startsWith('|'));
  const tKept = out2.slice(tableStart, tEnd).filter((l) => !l.startsWith('| the Apache jail'));
  const nStart = out2.findIndex((l, i) => i > tEnd && isBullet(l));
  const nEnd = nStart >= 0 && nStart < cpuStart ? runEnd(nStart, isBullet) : tEnd + 1;
  const nKept = nStart >= 0 && nStart < cpuStart ? out2.slice(nStart, nEnd).filter((l) => !l.startsWith('- Row 7:')) : [];
  const out3 = [...out2.slice(0, tableStart), ...tKept, ...tableLines, '', ...nKept, ...noteLines, ...out2.slice(nEnd)];
  // The header list: the bullets right before the table.
  let hEnd = tableStart;
  while (hEnd > 0 && out3[hEnd - 1] === '') hEnd--;
  let hStart = hEnd;
  while (hStart > 0 && isBullet(out3[hStart - 1])) hStart--;
  const hKept = out3.slice(hStart, hEnd).filter((l) => !l.startsWith('- row 7 '));
  return [...out3.slice(0, hStart), ...hKept, header, ...out3.slice(hEnd)].join('\n');
}

function report({ m, fsNote, cen, loadBefore, loadAfter, elapsed, trees, only }) {
  const tbl = table();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const commandLines = (list) => list.flatMap(({ section, entries }) => [`${section}:`, '', '```sh', ...entries.map(([name, text]) => `# ${name}\n${text}`), '```', '']);
  const done = (where) => process.stdout.write(`\n${tbl}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n\nCPU time (user + system) medians:\n${cpuNotes.map((n) => `- ${n}`).join('\n')}\n\nwork files on ${fsNote}; ${elapsed.toFixed(0)} s in all; ${where}\n`);
  if (only) {
    const old = fs.existsSync(RESULTS) ? fs.readFileSync(RESULTS, 'utf8') : '';
    const header = `- row 7 (the Apache jail vs jailkit) re-run alone with \`node bench/run.mjs --only jailkit\` on ${date} (jail ${version([NODE, CLI, '--version'])} built from ${gitState()}; ${m.nproc} CPUs, ${m.kernel}, node ${m.node}): ${row7Header}`;
    const spliced = old && spliceRow7(old, {
      header,
      tableLines: table().split('\n').slice(2),
      noteLines: notes.map((n) => `- ${n}`),
      cpuLines: cpuNotes.map((n) => `- ${n}`),
      commandLines: commandLines(commands),
    });
    if (spliced) {
      fs.writeFileSync(RESULTS, spliced);
      return done(`row 7 spliced into ${path.relative(process.cwd(), RESULTS) || RESULTS}`);
    }
    log(`${RESULTS} is missing or not in the expected shape; writing row 7 alone`);
  }
  const tools = [
    ['cp', version(['cp', '--version'])],
    ['tar', version(['tar', '--version'])],
    ['rsync', version(['rsync', '--version'])],
    ['ldd', version(['ldd', '--version'])],
  ];
  const md = [
    '# jail benchmark results',
    '',
    'Written by `npm run bench` (bench/run.mjs). Every row times jail and its yardstick in the same run, on the same files,',
    `interleaved (A B A B, order reversed every other round) after one untimed warm-up round: medians of ${RUNS} runs (start-up ${STARTUP_RUNS}, deps ${DEPS_RUNS}) with min and max.`,
    'Ratio is jail ÷ yardstick (of the medians): below 1 jail is faster. Only ratios from one run mean anything; the absolute',
    'times depend on the machine and on what else ran on it.',
    '',
    `- date: ${date}`,
    `- machine: ${m.nproc} CPUs (nproc; ${m.cpu}), ${(m.memTotalKiB / 1024 / 1024).toFixed(1)} GiB memory (MemTotal ${int(m.memTotalKiB)} kB), ${m.distro}`,
    `- kernel: ${m.kernel}; node ${m.node}; jail ${version([NODE, CLI, '--version'])} built from ${gitState()}`,
    `- tools: ${tools.map(([k, v]) => `${k}: ${v}`).join('; ')}`,
    `- load average (1, 5, 15 min): ${loadBefore.map((x) => x.toFixed(2)).join(', ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(', ')} after`,
    `- work files: ${fsNote}`,
    `- environment: the caller's with LC_ALL=C${STRIPPED_ENV.length ? `, less ${STRIPPED_ENV.join(' and ')} (set by the caller; it makes every node start-up, jail's and node -e 0's alike, parse a CA bundle that none of the commands uses)` : ''}`,
    ...(cen ? [`- the jail (bench/jailfiles/tenk.ts): ${trees.join(', ')}: ${int(cen.files)} files, ${int(cen.links)} symlinks, ${int(cen.dirs)} directories, ${(cen.bytes / MiB).toFixed(0)} MiB`] : []),
    `- total bench time: ${elapsed.toFixed(0)} s`,
    ...(row7Header ? [`- row 7 (the Apache jail vs jailkit): ${row7Header}`] : []),
    '',
    tbl,
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    ...CPU_INTRO,
    '',
    ...cpuNotes.map((n) => `- ${n}`),
    '',
    '## Commands',
    '',
    '`$WORK` is the temporary work directory; `jail` is `node dist/tasks/cli.js`. Output goes to /dev/null unless the harness',
    'reads it (--json reports, ldd output). Every command is run with spawnSync from an argument array; shell loops and pipes',
    'get their file names as arguments ("$@"), not spliced into the script.',
    '',
    ...commandLines(commands),
  ].join('\n');
  fs.writeFileSync(RESULTS, md);
  done(`written to ${path.relative(process.cwd(), RESULTS) || RESULTS}`);
}

/** `--only jailkit`: row 7 alone. */
function mainOnlyJailkit() {
  if (process.platform !== 'linux') throw new StepFailed('the bench needs Linux');
  if (!fs.existsSync(CLI)) throw new StepFailed(`${CLI} is missing: build first (npx tsc -p tsconfig.json)`);
  const m = machine();
  const loadBefore = os.loadavg();
  const fsNote = setupWork(0);
  log(`work directory ${WORK} on ${fsNote}`);
  jailkitRow();
  return { m, fsNote, loadBefore, loadAfter: os.loadavg(), elapsed: Number(process.hrtime.bigint() - t0All) / 1e9, only: true };
}

let code = 0;
/** The build's own rule for its default -j, to say in the notes what row 1 ran with. */
const JOBS = await import(path.join(REPO, 'dist', 'tasks', 'jobs.js')).catch(() => undefined);

try {
  const r = ONLY === 'jailkit' ? mainOnlyJailkit() : main();
  report(r);
} catch (err) {
  if (err instanceof Interrupted) { log('interrupted'); code = 130; }
  else if (err instanceof StepFailed) { log(`FAILED: ${err.message}`); code = 1; }
  else { log(`error: ${err?.stack ?? err}`); code = 2; }
  if (rows.length) process.stdout.write(`\npartial results:\n${table()}\n`);
} finally {
  cleanupJb();
  dropClaims(WORK);
  cleanupWork();
}
process.exitCode = code;
