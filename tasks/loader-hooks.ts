// Module hooks that let a jailfile anywhere on disk be TypeScript and `import ... from 'jail'`
// with nothing installed beside it. Runs in Node's hooks thread (module.register).
// A .ts module is transpiled once per content and cached in the install directory, so an
// unchanged jailfile costs a file read and a hash, not a compiler start.

import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { MessagePort } from 'node:worker_threads';

export interface HookData {
  /** Bare specifiers the tool provides: `jail`, `jail/recipes`. */
  aliases: Record<string, string>;
  /** Where transpiled modules are cached; undefined disables the cache. */
  cacheDir?: string;
  /** Told the path of every .ts module loaded (watch mode watches them). */
  port?: MessagePort;
  /** Changes the cache key when the tool itself changes. */
  version: string;
}

let data: HookData;

export async function initialize(d: HookData): Promise<void> {
  data = d;
}

type Next<C, R> = (specifier: string, context: C) => Promise<R>;
interface ResolveContext { parentURL?: string }
interface ResolveResult { url: string; shortCircuit?: boolean; format?: string | null }
interface LoadResult { format: string; source?: string | Buffer; shortCircuit?: boolean }

const TS = /\.(m?ts)$/;

export async function resolve(specifier: string, context: ResolveContext, next: Next<ResolveContext, ResolveResult>): Promise<ResolveResult> {
  const alias = data.aliases[specifier];
  if (alias) return { url: alias, shortCircuit: true };
  const parent = context.parentURL;
  if (parent && (specifier.startsWith('./') || specifier.startsWith('../'))) {
    const parentUrl = new URL(parent);
    if (TS.test(parentUrl.pathname)) {
      let url = new URL(specifier, parentUrl);
      // TypeScript style: `./entries.js` names `./entries.ts`.
      if (url.pathname.endsWith('.js') && !fs.existsSync(url) && fs.existsSync(new URL(url.href.replace(/\.js$/, '.ts')))) {
        url = new URL(url.href.replace(/\.js$/, '.ts'));
      }
      if (TS.test(url.pathname)) {
        // A re-evaluated jailfile (watch mode) carries a generation; its own modules take it too.
        url.search = parentUrl.search;
        return { url: url.href, shortCircuit: true, format: 'module' };
      }
    }
  }
  return next(specifier, context);
}

export async function load(url: string, context: object, next: Next<object, LoadResult>): Promise<LoadResult> {
  const u = new URL(url);
  if (u.protocol !== 'file:' || !TS.test(u.pathname)) return next(url, context);
  const file = fileURLToPath(u);
  const source = fs.readFileSync(file, 'utf8');
  data.port?.postMessage(file);
  const key = createHash('sha256').update(data.version).update('\0').update(file).update('\0').update(source).digest('hex');
  const cached = data.cacheDir ? path.join(data.cacheDir, `${key}.mjs`) : undefined;
  if (cached) {
    try { return { format: 'module', source: fs.readFileSync(cached, 'utf8'), shortCircuit: true }; } catch { /* not cached yet */ }
  }
  const js = await transpile(file, source);
  if (cached) {
    try {
      fs.mkdirSync(path.dirname(cached), { recursive: true });
      const tmp = `${cached}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, js);
      fs.renameSync(tmp, cached);
    } catch { /* a read-only install directory only costs speed */ }
  }
  return { format: 'module', source: js, shortCircuit: true };
}

async function transpile(file: string, source: string): Promise<string> {
  const ts = (await import('typescript')).default;
  const out = ts.transpileModule(source, {
    fileName: file,
    reportDiagnostics: true,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      inlineSourceMap: true,
      isolatedModules: true,
    },
  });
  const d = out.diagnostics?.find((x) => x.category === ts.DiagnosticCategory.Error);
  if (d) {
    const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : { line: 0, character: 0 };
    const err = new SyntaxError(`${file}:${pos.line + 1}:${pos.character + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    (err as SyntaxError & { jailLocation?: string }).jailLocation = `${file}:${pos.line + 1}`;
    throw err;
  }
  // Keep the file name in the source map relative-free so stack traces name the .ts file.
  return out.outputText.replace(/\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/, (_, b64: string) => {
    const map = JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as { sources: string[]; sourceRoot?: string };
    map.sources = [pathToFileURL(file).href];
    delete map.sourceRoot;
    return `//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}`;
  });
}
