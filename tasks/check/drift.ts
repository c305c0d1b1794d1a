// The tamper alarm. A path the last build recorded is judged by plan() against the record
// itself (the targets are rebuilt from the manifest), so an edit of the jailfile or a host
// upgrade since the last build is not drift, while an edited, retyped, chmod'ed,
// hard-linked or deleted output is. Beside that: an executable or library in a program or
// library directory that no target declares, an ELF file or executable #! script no target
// declares anywhere outside the service's data() directories, and an undeclared
// etc/ld.so.preload.

import { createHash } from 'node:crypto';
import { isRecordPath, type Manifest, type Rec } from '../manifest.js';
import { plan } from '../plan.js';
import { comparePaths, octal, parentOf, type Target } from '../targets.js';
import type { Context } from './context.js';
import { hasExecBits, inDataDir, inProgramOrLibraryDir } from './paths.js';
import { readJailFile } from './accounts.js';

const MAX_TEXT = 64 * 1024 * 1024;

/** What the last build put at `p`, as a target; undefined when the record cannot say. */
function recordedTarget(ctx: Context, p: string, rec: Rec): Target | undefined {
  const decl = ctx.declared.get(p);
  const base = { path: p, mode: rec.m, uid: rec.u, gid: rec.g, at: decl?.at ?? '(last build)', label: decl?.label ?? p };
  switch (rec.k) {
    case 'dir': return { ...base, kind: 'dir' };
    case 'symlink': return rec.t === undefined ? undefined : { ...base, kind: 'symlink', target: rec.t };
    case 'device': {
      const m = /^([cb]):(\d+):(\d+)$/.exec(rec.d ?? '');
      return m ? { ...base, kind: 'device', type: m[1] as 'c' | 'b', major: Number(m[2]), minor: Number(m[3]), dangerous: false } : undefined;
    }
    case 'file':
      if (rec.src === undefined || rec.ss === undefined) return undefined;
      return {
        ...base, kind: 'file', source: rec.src, sourceStamp: rec.ss,
        // Hard links of a layer or pack are one file under several names, not drift.
        ...(rec.l ? { linkTo: rec.l } : {}), ...(decl?.kind === 'file' && decl.nlink ? { nlink: decl.nlink } : {}),
      };
    case 'text': {
      if (rec.h === undefined) return undefined;
      let content: Buffer | undefined = decl?.kind === 'text' && decl.contentHash === rec.h ? decl.content : undefined;
      if (!content) {
        // The jailfile changed since: the file itself holds the recorded content if its hash says so.
        const now = ctx.reader.readFile(p, MAX_TEXT);
        if (now && createHash('sha256').update(now).digest('hex') === rec.h) content = now;
      }
      return { ...base, kind: 'text', content: content ?? Buffer.alloc(0), contentHash: rec.h };
    }
  }
}

export function checkDrift(ctx: Context, manifest: Manifest | undefined): void {
  if (manifest && Object.keys(manifest.records).length > 0) checkRecorded(ctx, manifest);
  if (!ctx.cheap) checkUnexpected(ctx);
}

function checkRecorded(ctx: Context, manifest: Manifest): void {
  const targets = new Map<string, Target>();
  for (const [p, rec] of Object.entries(manifest.records)) {
    if (!isRecordPath(p)) continue; // no path in ROOT: the next make forgets it
    const t = recordedTarget(ctx, p, rec);
    if (t) targets.set(p, t);
  }
  // plan() judges a path beneath a directory that is no longer one without looking: every parent must be a target.
  for (const p of [...targets.keys()]) {
    for (let d = parentOf(p); d !== '/' && !targets.has(d); d = parentOf(d)) {
      const decl = ctx.declared.get(d);
      targets.set(d, decl?.kind === 'dir' ? decl : { kind: 'dir', path: d, mode: 0o755, uid: 0, gid: 0, at: '(parent)', label: d });
    }
  }
  const sorted = [...targets.values()].sort((a, b) => comparePaths(a.path, b.path));
  let result: ReturnType<typeof plan>;
  try {
    result = plan(ctx.root, sorted, { ...manifest, complete: true });
  } catch (err) {
    // ROOT changed under the check (a path swapped mid-look): say so rather than guess.
    ctx.note(`drift was not judged: ROOT changed while it was being checked (${(err as NodeJS.ErrnoException).code ?? String(err)}); run jail check again`);
    return;
  }
  const gone = new Set<string>();
  const under = (p: string) => { for (let d = parentOf(p); d !== '/'; d = parentOf(d)) if (gone.has(d)) return true; return false; };
  for (const a of result.actions) {
    if (a.op === 'remove' || manifest.records[a.path] === undefined) continue;
    const missing = a.op === 'create';
    if (a.kind === 'dir' && (missing || a.reasons.some((r) => r.startsWith('output is a')))) gone.add(a.path);
    if (under(a.path)) continue; // its directory's finding says it
    const why = missing ? 'deleted since the last build' : `changed since the last build: ${a.reasons.map((r) => r.replace(/\bdeclared\b/g, 'built')).join('; ')}`;
    ctx.add('drift', a.path, `${why}${a.kind === 'dir' && missing ? ', with everything jail put beneath it' : ''}`,
      'find out who changed it; jail make puts back what the jailfile declares (jail make -n shows what it would do)');
  }
}

function checkUnexpected(ctx: Context): void {
  for (const n of ctx.nodes) {
    if (!n.st.isFile()) continue;
    // In a program or library directory any executable is one to ask about; elsewhere, what
    // can run (an ELF file, an executable #! script) outside the service's own data().
    const progDir = inProgramOrLibraryDir(n.path);
    if (progDir ? !hasExecBits(n.st) && !n.elf : !n.elf && n.interpreter === undefined) continue;
    if (ctx.declared.has(n.path) || ctx.records[n.path] !== undefined) continue;
    if (!progDir && inDataDir(n.path, ctx.dataDirs)) continue;
    const what = n.elf ? 'an ELF file' : progDir ? 'an executable file' : `an executable #! script (for ${n.interpreter})`;
    ctx.add('drift', n.path, `is ${what} (mode ${octal(n.st.mode)}) that no target declares, ${progDir ? 'in a program or library directory' : 'outside every data() directory'}: something put it there after the build`,
      'remove it if nothing should have put it there; if it belongs in the jail, declare it (elf() or copy()), or keep what a service writes in a data() directory');
  }
  checkPreload(ctx);
}

/** The loader reads etc/ld.so.preload before anything else: a planted one puts its libraries in every program. */
function checkPreload(ctx: Context): void {
  const p = '/etc/ld.so.preload';
  if (ctx.declared.has(p) || ctx.records[p] !== undefined) return; // the author's; drift of it is judged against the record
  const { text, real } = readJailFile(ctx.reader, p, MAX_TEXT);
  if (real === undefined) return;
  // As the loader splits it (tasks/elf/resolve.ts): spaces, tabs, newlines and colons; # starts a comment.
  const names = (text ?? '').replace(/#[^\n]*/g, ' ').split(/[: \t\n]+/).filter((x) => x !== '');
  const listed = names.length ? `it names ${names.slice(0, 10).join(', ')}${names.length > 10 ? `, and ${names.length - 10} more` : ''}` : 'it names nothing yet';
  ctx.add('drift', p, `exists and no target declares it (${listed}): the loader loads every library it names into every program of the jail, before the program's own, so whoever wrote it runs code in every process`,
    `remove it, and the libraries it names, unless you put them there on purpose (then declare it with text()); find out who wrote it`);
}

