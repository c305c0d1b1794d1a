// `jail deps [--json] [--root DIR] PATH...`: shows which shared libraries the loader would
// open for each program, as a tree like lddtree or as JSON for scripts, without running the
// programs. One Resolver (and its facts cache) serves all paths, so long lists stay fast.

import fs from 'node:fs';
import { Resolver, type Closure } from '../elf/index.js';

const USAGE = 'usage: jail deps [--json] [--root DIR] PATH...';

interface JsonEntry {
  interpreter?: string;
  needed: string[];
  libraries: Record<string, string>;
  /** Loaded at run time by dlopen (libgcc_s.so.1 for thread exit): not in ldd's answer, but the jail needs them. */
  dlopened?: Record<string, string>;
  missing: string[];
  /** What the tree prints as warnings (only when there are some). */
  warnings?: string[];
  error?: { code: string; message: string };
}

/** Exit status: 0 all resolved, 1 something missing, 2 bad input. */
export function runDeps(args: string[], out: (line: string) => void): number {
  let json = false;
  let root: string | undefined;
  const paths: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') {
      paths.push(...args.slice(i + 1));
      break;
    }
    if (a === '--json') json = true;
    else if (a === '--root') {
      const v = args[++i];
      if (v === undefined || v === '') {
        out(`jail deps: --root needs a directory. ${USAGE}`);
        return 2;
      }
      root = v;
    } else if (a.startsWith('--root=')) root = a.slice('--root='.length);
    else if (a === '-h' || a === '--help') {
      out(USAGE);
      out('Prints the shared libraries each program or library would load (as glibc\'s loader would, without running it).');
      return 0;
    } else if (a.startsWith('-') && a !== '-') {
      out(`jail deps: unknown option ${a}. ${USAGE}`);
      return 2;
    } else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(a) && !fs.existsSync(a)) {
      // make's convention, which deps does not share: it evaluates no jailfile.
      out(`jail deps: takes no VAR=value (got ${a}); to resolve inside a jail, give --root DIR. ${USAGE}`);
      return 2;
    } else paths.push(a);
  }
  if (paths.length === 0) {
    out(`jail deps: no program given. ${USAGE}`);
    return 2;
  }

  const resolver = new Resolver({ root, memoize: true });
  let status = 0;
  const doc: Record<string, JsonEntry> = {};
  for (const p of paths) {
    if (!json) {
      const r = resolver.closure(p);
      if (!r.ok) {
        status = 2;
        out(`jail deps: ${r.error.message}`);
        continue;
      }
      if (r.value.missing.length > 0 && status === 0) status = 1;
      for (const line of renderTree(r.value)) out(line);
      continue;
    }
    // The summary is all JSON shows; programs that look alike to the loader share one.
    const r = resolver.summary(p);
    if (!r.ok) {
      status = 2;
      doc[p] = { needed: [], libraries: {}, missing: [], error: { code: r.error.code, message: r.error.message } };
      continue;
    }
    const { interpreter, needed, libraries, dlopened, missing, warnings } = r.value;
    if (missing.length > 0 && status === 0) status = 1;
    // Plain literals rather than spreads: this runs once per program, mostly unoptimised.
    let e: JsonEntry;
    if (interpreter !== undefined) {
      e = hasKeys(dlopened) ? { interpreter, needed, libraries, dlopened, missing } : { interpreter, needed, libraries, missing };
    } else {
      e = hasKeys(dlopened) ? { needed, libraries, dlopened, missing } : { needed, libraries, missing };
    }
    if (warnings !== undefined) e.warnings = warnings;
    doc[p] = e;
  }
  if (json) out(JSON.stringify(doc, null, 2));
  return status;
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** lddtree-style lines: each library's own dependencies are expanded the first time it appears. */
export function renderTree(c: Closure): string[] {
  const lines: string[] = [];
  lines.push(c.interpreter !== undefined ? `${c.path} (interpreter => ${c.interpreter})` : c.path);
  const missingReason = new Map<string, string | undefined>();
  for (const m of c.missing) if (!missingReason.has(m.soname)) missingReason.set(m.soname, m.reason);
  const expanded = new Set<string>([c.path]);
  const walk = (objPath: string, depth: number) => {
    for (const name of c.graph[objPath] ?? []) {
      const indent = '    '.repeat(depth);
      let target = c.libraries[name];
      let note = '';
      if (target === undefined && (target = c.dlopened[name]) !== undefined) note = ' (loaded at run time by dlopen)';
      if (target === undefined) {
        const unneeded = c.unneeded[name];
        if (missingReason.has(name)) lines.push(`${indent}${name} => not found`);
        else if (unneeded === 'auxiliary') lines.push(`${indent}${name} => (auxiliary, not found: ignored by the loader)`);
        else if (unneeded === 'dlopen') lines.push(`${indent}${name} => not found (to be loaded at run time by dlopen)`);
        else lines.push(`${indent}${name === '' ? '""' : name} => ${c.path} (the program itself)`);
        continue;
      }
      lines.push(`${indent}${name} => ${target}${note}`);
      if (!expanded.has(target)) {
        expanded.add(target);
        walk(target, depth + 1);
      }
    }
  };
  walk(c.path, 1);
  for (const m of c.missing) {
    if (m.chain.length === 2 && m.soname === c.interpreter) lines.push(`    ${m.soname} => not found (program interpreter)`);
  }
  for (const m of c.missing) lines.push(`  missing: ${m.chain.join(' -> ')}${m.reason ? ` (${m.reason})` : ''}`);
  for (const w of c.warnings) lines.push(`  warning: ${w}`);
  return lines;
}
