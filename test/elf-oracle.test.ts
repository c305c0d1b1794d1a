// Oracle: the system ldd (test only, on this machine's own trusted files) must agree with
// the resolver on every dynamically linked ELF under /usr/bin, /usr/sbin and
// /usr/lib/x86_64-linux-gnu. The resolver itself never runs anything.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ElfFactsCache, Resolver, readElf } from '../tasks/elf/index.js';

const DIRS: [string, boolean][] = [
  ['/usr/bin', false],
  ['/usr/sbin', false],
  ['/usr/lib/x86_64-linux-gnu', true],
];
const PARALLEL = 4;

function listFiles(dir: string, recursive: boolean, out: string[]): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names.sort()) {
    const p = path.join(dir, n);
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    // Symlinks are skipped: their targets are listed under their own names, and ldd would
    // derive $ORIGIN from the link's directory where the kernel uses the real one.
    if (st.isFile()) out.push(p);
    else if (st.isDirectory() && recursive) listFiles(p, recursive, out);
  }
}

interface LddView {
  pairs: Map<string, string>;
  bare: Set<string>;
  notFound: Set<string>;
}

type LddOutcome = { kind: 'ok'; view: LddView } | { kind: 'excluded'; why: string };

function runLdd(file: string): Promise<LddOutcome> {
  return new Promise((resolve) => {
    execFile('ldd', [file], { timeout: 20_000, maxBuffer: 4 * 1024 * 1024, env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } },
      (err, stdout, stderr) => {
        const text = String(stdout);
        if (/statically linked/.test(text)) return resolve({ kind: 'excluded', why: 'statically linked' });
        if (/not a dynamic executable/.test(text + stderr)) return resolve({ kind: 'excluded', why: 'not a dynamic executable (ldd)' });
        if (err && !/=>/.test(text)) return resolve({ kind: 'excluded', why: `ldd failed: ${String(stderr).trim().split('\n')[0] ?? err.message}` });
        const view: LddView = { pairs: new Map(), bare: new Set(), notFound: new Set() };
        for (const line of text.split('\n')) {
          const l = line.trim();
          if (l === '') continue;
          let m: RegExpMatchArray | null;
          if ((m = l.match(/^(\S+) => not found$/))) view.notFound.add(m[1] as string);
          else if ((m = l.match(/^(\S+) => (\S+) \(0x[0-9a-f]+\)$/))) view.pairs.set(m[1] as string, m[2] as string);
          else if ((m = l.match(/^(\S+) \(0x[0-9a-f]+\)$/))) {
            if (!(m[1] as string).startsWith('linux-vdso')) view.bare.add(m[1] as string);
          } else return resolve({ kind: 'excluded', why: `unparsed ldd line: ${l}` });
        }
        resolve({ kind: 'ok', view });
      });
  });
}

describe('resolver agrees with the system ldd', () => {
  const hasLdd = fs.existsSync('/usr/bin/ldd');

  it.skipIf(!hasLdd)('on every dynamic ELF in /usr/bin, /usr/sbin, /usr/lib/x86_64-linux-gnu', async () => {
    const t0 = Date.now();
    const files: string[] = [];
    for (const [d, rec] of DIRS) listFiles(d, rec, files);

    const resolver = new Resolver({ cache: new ElfFactsCache() });
    const excluded = new Map<string, number>();
    const exclude = (why: string) => excluded.set(why, (excluded.get(why) ?? 0) + 1);
    const elfs: string[] = [];
    for (const f of files) {
      const r = readElf(f);
      if (!r.ok) exclude(`unreadable or broken ELF (${r.error.code})`);
      else if (r.value === null) exclude('not ELF');
      else if (!r.value.dynamic) exclude('static (no PT_DYNAMIC)');
      else if (r.value.type !== 'exec' && r.value.type !== 'dyn') exclude(`ELF type ${r.value.type}`);
      else elfs.push(f);
    }

    let agreeing = 0;
    let hwcapsTolerated = 0;
    const disagreements: string[] = [];
    let resolverMs = 0;
    const check = (file: string, ldd: LddView) => {
      const t = Date.now();
      const c = resolver.closure(file);
      resolverMs += Date.now() - t;
      if (!c.ok) {
        disagreements.push(`${file}: resolver error ${c.error.code}: ${c.error.message}`);
        return;
      }
      const cl = c.value;
      const problems: string[] = [];
      const ourPaths = new Set(Object.values(cl.libraries));
      const rtld = cl.interpreter ?? '/lib64/ld-linux-x86-64.so.2';
      const lddPaths = new Set<string>([...ldd.pairs.values(), ...ldd.bare]);
      for (const [name, p] of ldd.pairs) {
        const ours = cl.libraries[name];
        if (ours === p) continue;
        // ldd may pick a CPU-specific glibc-hwcaps copy; the resolver prefers the generic one on purpose.
        const generic = p.replace(/\/glibc-hwcaps\/[^/]+\//, '/');
        if (generic !== p && ours === generic) {
          hwcapsTolerated++;
          lddPaths.add(generic);
          continue;
        }
        problems.push(`${name}: ldd ${p}, resolver ${ours ?? 'nothing'}`);
      }
      for (const p of ldd.bare) {
        if (!ourPaths.has(p) && p !== rtld) problems.push(`${p}: listed by ldd, not in the closure`);
      }
      for (const n of ldd.notFound) {
        if (!cl.missing.some((m) => m.soname === n)) problems.push(`${n}: ldd says not found, resolver found ${cl.libraries[n] ?? '?'}`);
      }
      for (const [name, p] of Object.entries(cl.libraries)) {
        if (!lddPaths.has(p)) problems.push(`${name} => ${p}: in the closure, not listed by ldd`);
      }
      for (const m of cl.missing) {
        if (!ldd.notFound.has(m.soname) && m.soname !== cl.interpreter) problems.push(`${m.soname}: resolver says missing (${m.reason}), ldd does not`);
      }
      if (problems.length) disagreements.push(`${file}:\n    ${problems.join('\n    ')}`);
      else agreeing++;
    };

    let next = 0;
    let checked = 0;
    const worker = async () => {
      while (next < elfs.length) {
        const f = elfs[next++] as string;
        const o = await runLdd(f);
        if (o.kind === 'excluded') {
          exclude(o.why);
          continue;
        }
        checked++;
        check(f, o.view);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));

    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    const lines = [
      `elf oracle: ${files.length} files listed, ${elfs.length} dynamic ELF, ${checked} compared with ldd, ${agreeing} agree, ${disagreements.length} disagree (${secs}s total, resolver ${resolverMs} ms)`,
      ...(hwcapsTolerated ? [`  ${hwcapsTolerated} ldd answers were glibc-hwcaps copies where the resolver chose the generic library`] : []),
      '  excluded:',
      ...[...excluded].sort((a, b) => b[1] - a[1]).map(([why, n]) => `    ${n} ${why}`),
    ];
    console.log(lines.join('\n'));
    if (disagreements.length) console.log('disagreements:\n  ' + disagreements.slice(0, 50).join('\n  '));
    expect(checked).toBeGreaterThan(100);
    expect(disagreements).toEqual([]);
  }, 600_000);
});
