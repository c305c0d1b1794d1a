// Load: import a jailfile (TypeScript, anywhere on disk) and call it with the make
// variables. Whatever goes wrong comes back as one error value naming the file and line.

import fs from 'node:fs';
import path from 'node:path';
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EntryUsageError, type Entries, type JailDefinition, type JailVars } from './entries.js';
import { stateDir } from './manifest.js';
import { fail, jailError, ok, type JailError, type Result } from './result.js';
import type { HookData } from './loader-hooks.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PACKAGE_DIR = path.resolve(HERE, '..', '..');

let registered = false;
const loadedModules = new Set<string>();
let generation = 0;

function version(): string {
  try { return (JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as { version: string }).version; } catch { return '0'; }
}

function ensureHooks(installDir: string): void {
  if (registered) return;
  registered = true;
  process.setSourceMapsEnabled(true);
  const { port1, port2 } = new MessageChannel();
  port1.on('message', (file: string) => loadedModules.add(file));
  port1.unref();
  const data: HookData = {
    aliases: {
      jail: pathToFileURL(path.join(HERE, 'index.js')).href,
      'jail/recipes': pathToFileURL(path.join(PACKAGE_DIR, 'dist', 'recipes', 'index.js')).href,
    },
    cacheDir: path.join(stateDir(installDir), 'cache'),
    port: port2,
    version: version(),
  };
  register(pathToFileURL(path.join(HERE, 'loader-hooks.js')).href, { data, transferList: [port2] });
}

/** The first stack frame in a user's file: where a throw in a jailfile came from. */
function locate(err: unknown): string | undefined {
  const e = err as { jailLocation?: string; at?: string; stack?: string };
  if (err instanceof EntryUsageError) return e.at;
  if (e.jailLocation) return e.jailLocation;
  for (const line of (e.stack ?? '').split('\n').slice(1)) {
    const m = /((?:file:\/\/)?\/[^():]+\.m?[tj]s):(\d+):\d+\)?$/.exec(line.trim());
    if (!m?.[1]) continue;
    const file = m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1];
    if (file.startsWith(PACKAGE_DIR + '/dist/') || file.includes('/node_modules/') || file.startsWith('node:')) continue;
    return `${file}:${m[2]}`;
  }
  return undefined;
}

export interface Loaded {
  readonly entries: Entries;
  /** Every .ts module the jailfile pulled in (itself included), for watch mode. */
  readonly modules: string[];
}

export async function loadJailfile(file: string, vars: JailVars, opts: { fresh?: boolean } = {}): Promise<Result<Loaded, JailError>> {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) {
    return fail(jailError('no-jailfile', `No jailfile at ${abs}. Name one with -f FILE, or run jail in the directory that holds jailfile.ts.`, { path: abs }));
  }
  ensureHooks(path.dirname(abs));
  const url = pathToFileURL(abs);
  if (opts.fresh) url.search = `?jail-generation=${++generation}`;
  try {
    const mod = (await import(url.href)) as { default?: JailDefinition | Entries };
    const def = mod.default;
    if (def === undefined) {
      return fail(jailError('bad-jailfile', `${abs} has no default export. End it with \`export default defineJail(({ ROOT }) => [ ...entries ])\`.`, { path: abs }));
    }
    const entries = typeof def === 'function' ? await (def as JailDefinition)(vars) : def;
    return ok({ entries, modules: [...loadedModules] });
  } catch (err) {
    const where = locate(err) ?? abs;
    const msg = err instanceof Error ? err.message : String(err);
    const shown = where && msg.startsWith(where.replace(/:\d+$/, '')) ? msg : `${where}: ${msg}`;
    return fail(jailError('bad-jailfile', `The jailfile did not load: ${shown}. Fix it and run again; ROOT was not touched.`, { path: abs, entry: where }));
  }
}
