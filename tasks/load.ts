// Load: import a jailfile (TypeScript, anywhere on disk) and call it with the make
// variables. Whatever goes wrong comes back as one error value naming the file and line.
//
// A .ts module is transpiled once per content into the install directory's cache
// (.jail/cache), with `jail` and `jail/recipes` rewritten to the running tool and its own
// relative .ts imports rewritten to their cached modules; the cached file is then imported
// by Node directly. An unchanged jailfile costs a read and a hash: no compiler, and no
// module-hook thread between Node and every import.

import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EntryUsageError, definedAt, entriesProblem, type Entries, type JailDefinition, type JailVars } from './entries.js';
import { stateDir } from './manifest.js';
import { personFrame } from './call-site.js';
import { INLINE_MAP, isCachedModule, lineTableJson, linesFile, originalLine, originalSource } from './cached-source.js';
import { fail, jailError, ok, type JailError, type Result } from './result.js';
import { hostFileError } from './host-inputs.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PACKAGE_DIR = path.resolve(HERE, '..', '..');
const ALIASES: Record<string, string> = {
  jail: pathToFileURL(path.join(PACKAGE_DIR, 'dist', 'tasks', 'index.js')).href,
  'jail/recipes': pathToFileURL(path.join(PACKAGE_DIR, 'dist', 'recipes', 'index.js')).href,
};
const ALIAS_KEY = JSON.stringify(ALIASES);
const TS = /\.(m?ts)$/;
/** Import specifiers in transpiled ES module code: `from '...'`, `import '...'`, `import('...')`. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"\n]+)\2/g;
const MAX_MODULES = 200;
/** A cached module's path or URL, in an error message. */
const CACHED_MODULE = /(?:file:\/\/)?\/[^\s'"]*\/\.jail\/cache\/[0-9a-f]+\.mjs/g;
/** In the cache key: modules made by an earlier transpiler, or before line tables were kept beside them, are made again, once. */
const CACHE_FORMAT = 'esbuild\0';

let toolVersion: string | undefined;
function version(): string {
  try {
    toolVersion ??= (JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  } catch { toolVersion = '0'; }
  return toolVersion;
}

class LoadError extends Error {
  constructor(message: string, readonly location: string) {
    super(message);
  }
}

/** A relative import of a .ts module: `./x.ts`, or TypeScript's `./x.js` naming `./x.ts`. */
function tsDependency(spec: string, from: string): string | undefined {
  if (!spec.startsWith('./') && !spec.startsWith('../')) return undefined;
  const p = path.resolve(path.dirname(from), spec);
  if (TS.test(p)) return p;
  if (p.endsWith('.js') && !fs.existsSync(p) && fs.existsSync(p.slice(0, -3) + '.ts')) return p.slice(0, -3) + '.ts';
  return undefined;
}

/** What esbuild's transform rejects a module with: its first error, placed. */
interface TransformFailure { errors?: { text: string; location?: { line: number; column: number } | null }[] }

async function transpile(file: string, source: string): Promise<string> {
  // esbuild strips the types in a few milliseconds once its service runs; loading the
  // TypeScript compiler for the same job cost about a second on every changed jailfile.
  const { transform } = await import('esbuild');
  let code: string;
  try {
    // Comments go (legal ones too): the import scan below must not mistake `from './x.ts'` in a comment for an import.
    ({ code } = await transform(source, { loader: 'ts', format: 'esm', target: 'es2022', sourcemap: 'inline', sourcefile: file, legalComments: 'none' }));
  } catch (err) {
    const e = (err as TransformFailure).errors?.[0];
    if (!e) throw err;
    const line = e.location?.line ?? 1;
    throw new LoadError(`${file}:${line}:${(e.location?.column ?? 0) + 1}: ${e.text}`, `${file}:${line}`);
  }
  // The source map names the .ts file by URL; tasks/cached-source.ts reads it to turn a
  // stack frame into the line a person wrote.
  return code.replace(INLINE_MAP, (_, b64: string) => {
    const map = JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as { sources: string[]; sourceRoot?: string; sourcesContent?: string[] };
    map.sources = [pathToFileURL(file).href];
    delete map.sourceRoot;
    // The .ts file is on disk; a copy of it in every cached module is only weight.
    delete map.sourcesContent;
    return `//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}`;
  });
}

function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** Transpiles `file` and its .ts imports into the cache; returns the cached module's path. */
class ModuleCache {
  readonly modules: string[] = [];
  readonly #done = new Map<string, string>();
  readonly #active = new Set<string>();
  constructor(private readonly dir: string) {}

  async build(file: string): Promise<string> {
    const have = this.#done.get(file);
    if (have) return have;
    if (this.#active.has(file)) throw new LoadError(`${file} imports itself through a cycle of .ts modules; jailfile modules must not import each other in a circle`, file);
    if (this.modules.length >= MAX_MODULES) throw new LoadError(`${file}: more than ${MAX_MODULES} .ts modules imported`, file);
    this.#active.add(file);
    this.modules.push(file);
    let source: string;
    try { source = fs.readFileSync(file, 'utf8'); } catch (err) {
      throw new LoadError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code})`, file);
    }
    // The aliases are in the key: a cached module names the tool's files by absolute URL, so
    // a tool installed somewhere else must not reuse it.
    const own = createHash('sha256').update(CACHE_FORMAT).update(version()).update('\0').update(ALIAS_KEY).update('\0').update(file).update('\0').update(source).digest('hex');
    const depsFile = path.join(this.dir, `${own}.deps.json`);
    let js: string | undefined;
    let deps: string[];
    try {
      deps = JSON.parse(fs.readFileSync(depsFile, 'utf8')) as string[];
    } catch {
      js = await transpile(file, source);
      deps = [...new Set([...js.matchAll(SPECIFIER)].map((m) => tsDependency(m[3]!, file)).filter((d): d is string => d !== undefined))];
      fs.mkdirSync(this.dir, { recursive: true });
      writeAtomic(depsFile, JSON.stringify(deps));
    }
    const depOut = new Map<string, string>();
    for (const d of deps) depOut.set(d, await this.build(d));
    const key = createHash('sha256').update(own).update([...depOut.values()].join('\0')).digest('hex');
    const out = path.join(this.dir, `${key}.mjs`);
    if (!fs.existsSync(out)) {
      js ??= await transpile(file, source);
      const rewritten = js.replace(SPECIFIER, (whole, lead: string, q: string, spec: string) => {
        const alias = ALIASES[spec];
        if (alias) return `${lead}${q}${alias}${q}`;
        const dep = tsDependency(spec, file);
        if (dep) return `${lead}${q}${pathToFileURL(depOut.get(dep)!).href}${q}`;
        if (spec.startsWith('./') || spec.startsWith('../')) return `${lead}${q}${pathToFileURL(path.resolve(path.dirname(file), spec)).href}${q}`;
        return whole;
      });
      fs.mkdirSync(this.dir, { recursive: true });
      // The line table first: a module that is there has its table, unless someone removed it.
      const lines = lineTableJson(rewritten);
      if (lines) writeAtomic(linesFile(out), lines);
      writeAtomic(out, rewritten);
    }
    this.#active.delete(file);
    this.#done.set(file, out);
    return out;
  }
}

/** The first stack frame in a person's file: where a throw in a jailfile came from. */
function locate(err: unknown): string | undefined {
  if (err instanceof EntryUsageError) return err.at;
  if (err instanceof LoadError) return err.location;
  const stack = (err as { stack?: string }).stack ?? '';
  const f = linkedAt(stack) ?? personFrame(stack);
  return f && `${f.file}:${f.line}`;
}

/**
 * A module that fails to link (an import of a name nothing exports) has no frame of its
 * own: Node heads the stack with the module's URL and line, and a caret under the name.
 */
function linkedAt(stack: string): { file: string; line: number } | undefined {
  const [head, , caret] = stack.split('\n');
  const m = /^(file:\/\/\S+):(\d+)$/.exec(head ?? '');
  if (!m) return undefined;
  const file = fileURLToPath(m[1]!);
  if (!isCachedModule(file)) return { file, line: Number(m[2]) };
  return originalLine(file, Number(m[2]), (caret?.indexOf('^') ?? 0) + 1);
}

/** Node's "does not provide an export named" in a person's words, with what the module does export. */
async function missingExport(msg: string): Promise<string | undefined> {
  const m = /^The requested module '([^']+)' does not provide an export named '([^']+)'$/.exec(msg);
  if (!m) return undefined;
  const [, url, name] = m as unknown as [string, string, string];
  const alias = Object.keys(ALIASES).find((k) => ALIASES[k] === url);
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const shown = alias ? `'${alias}'` : isCachedModule(file) ? originalSource(file) ?? file : file;
  let names: string[] = [];
  try { names = Object.keys((await import(url)) as object).filter((k) => k !== 'default'); } catch { /* it said why when imported */ }
  return `${shown} has no export named '${name}'${names.length ? `; it exports ${names.join(', ')}` : ''}`;
}

export interface Loaded {
  readonly entries: Entries;
  /** Every .ts module the jailfile pulled in (itself included), for watch mode. */
  readonly modules: string[];
}

/** `root`: ROOT's real path; a .ts module from inside it is refused before it runs. */
export async function loadJailfile(file: string, vars: JailVars, root?: string): Promise<Result<Loaded, JailError>> {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) {
    return fail(jailError('no-jailfile', `No jailfile at ${abs}. Name one with -f FILE, or run jail in the directory that holds jailfile.ts.`, { path: abs }));
  }
  const cache = new ModuleCache(path.join(stateDir(path.dirname(abs)), 'cache'));
  try {
    const compiled = await cache.build(abs);
    // Code from the jail would run as root here: whatever the jail planted.
    if (root !== undefined) for (const m of cache.modules) {
      const bad = hostFileError(`The jailfile ${abs} imports the module`, m, root, vars.ROOT);
      if (bad) return fail(bad);
    }
    const mod = (await import(pathToFileURL(compiled).href)) as { default?: JailDefinition | Entries };
    const def = mod.default;
    if (def === undefined) {
      return fail(jailError('bad-jailfile', `${abs} has no default export. End it with \`export default defineJail(({ ROOT }) => [ ...entries ])\`.`, { path: abs }));
    }
    const entries = typeof def === 'function' ? await (def as JailDefinition)(vars) : def;
    const problem = entriesProblem(entries, definedAt(def));
    if (problem) {
      return fail(jailError('bad-jailfile', `The jailfile ${abs} ${problem}. Fix it and run again; ROOT was not touched.`, { path: abs }));
    }
    return ok({ entries, modules: cache.modules });
  } catch (err) {
    const where = locate(err) ?? abs;
    const msg = ((err instanceof SyntaxError && await missingExport(err.message)) || (err instanceof Error ? err.message : String(err)))
      // A cached module is named by the .ts file it was made from (`imported from .../.jail/cache/<hash>.mjs`).
      .replace(CACHED_MODULE, (m) => originalSource(m.startsWith('file:') ? fileURLToPath(m) : m) ?? m);
    const shown = msg.startsWith(where.replace(/:\d+$/, '')) ? msg : `${where}: ${msg}`;
    return fail(jailError('bad-jailfile', `The jailfile did not load: ${shown}. Fix it and run again; ROOT was not touched.`, { path: abs, entry: where }));
  }
}
