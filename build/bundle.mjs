// The bundle Node runs: dist/tasks/cli.js, the `jail` and `jail/recipes` modules, the
// commands' chunks and the copy thread (npm run build runs this after tsc).
//
// Node resolves, reads and compiles each ES module on its own, at about a millisecond a
// module on a small machine: more than most of our modules take to run. esbuild's code
// splitting makes a chunk of every set of modules reached by the same set of entry points,
// and with a dozen commands that cut what a no-op build loads into twenty chunks. So every
// entry point and lazily imported module except those below imports the core first (the
// `jail` module, `jail/recipes` and the make command): all of it then lands in one chunk,
// and a command's chunk holds only what is its own. Left out of the core:
//   - tasks/cli.ts, so that `jail --version` and a usage error load no more than the parser;
//   - tasks/commands/deps.ts, which needs only the ELF code (which hence is a chunk of its own);
//   - the copy thread, a worker with module instances of its own anyway: it is bundled alone.
//
// Node's own modules are taken with process.getBuiltinModule(), not imported: the ES module
// face of a builtin reads every export once, which for node:fs loads all of Node's streams
// (through fs.ReadStream) and for node:crypto its WebCrypto, milliseconds that a build that
// prints through fs.writeSync (tasks/stdio.ts) never needs.

import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CORE = ['tasks/index.ts', 'recipes/index.ts', 'tasks/commands/make.ts'];
const ALONE = new Set(['tasks/cli.ts', 'tasks/commands/deps.ts', 'tasks/commands/status.ts', 'tasks/commands/stop.ts', 'tasks/rootfs-copy-thread.ts'].map((f) => path.join(REPO, f)));

const common = { bundle: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', logLevel: 'warning' };

const SPLIT = {
  ...common,
  entryPoints: ['tasks/cli.ts', 'tasks/index.ts', 'recipes/index.ts'].map((f) => path.join(REPO, f)),
  splitting: true,
  outdir: path.join(REPO, 'dist'),
  outbase: REPO,
  chunkNames: 'lib/[name]-[hash]',
};

/** The modules loaded by import(), found by a first build that writes nothing. */
async function lazyModules() {
  const { metafile } = await build({ ...SPLIT, write: false, metafile: true });
  const lazy = new Set();
  for (const input of Object.values(metafile.inputs)) {
    for (const i of input.imports) if (i.kind === 'dynamic-import' && !i.external) lazy.add(path.resolve(REPO, i.path));
  }
  return lazy;
}

/** Puts `import 'jail:core'` in front of the code of the entry points and lazy modules that are not ALONE. */
function corePlugin(importers) {
  return {
    name: 'core',
    setup(b) {
      b.onResolve({ filter: /^jail:core$/ }, () => ({ path: 'core', namespace: 'jail' }));
      b.onLoad({ filter: /^core$/, namespace: 'jail' }, () => ({
        contents: CORE.map((f) => `import ${JSON.stringify(path.join(REPO, f))};`).join('\n'),
        resolveDir: REPO,
        loader: 'js',
      }));
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        if (!importers.has(args.path) || ALONE.has(args.path)) return undefined;
        return { contents: `import 'jail:core';\n${fs.readFileSync(args.path, 'utf8')}`, loader: 'ts' };
      });
    },
  };
}

/**
 * Builtins slow to load that many commands import but never call (node:crypto brings all
 * of Node's streams): their functions load them on the first call.
 */
const LAZY = new Set(['node:crypto']);

/**
 * `import x, { y } from 'node:z'` becomes a module of `process.getBuiltinModule('node:z')`
 * with an export per property, each read only if some module uses it. Every importing file
 * gets a copy of its own: one shared by modules of different chunks would be a chunk of its
 * own, one more module for Node to load.
 */
const builtinsPlugin = {
  name: 'builtins',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => args.kind !== 'import-statement' ? undefined
      : { path: `${args.path}?${args.importer}`, namespace: 'builtin' });
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, ({ path: p }) => {
      const id = p.slice(0, p.indexOf('?'));
      const mod = process.getBuiltinModule(id);
      const lines = ['let m;', `const load = () => (m ??= process.getBuiltinModule(${JSON.stringify(id)}));`, 'export default /* @__PURE__ */ load();'];
      for (const k of Object.keys(mod)) {
        if (!/^[A-Za-z_$][\w$]*$/.test(k) || k === 'default') continue;
        // A function, not a class: a wrapper is called exactly as the function it stands for.
        const late = LAZY.has(id) && /^[a-z]/.test(k) && typeof mod[k] === 'function';
        lines.push(late ? `export function ${k}(...args) { return load().${k}(...args); }` : `export const ${k} = /* @__PURE__ */ (() => load().${k})();`);
      }
      return { contents: lines.join('\n'), loader: 'js' };
    });
  },
};

fs.rmSync(path.join(REPO, 'dist', 'lib'), { recursive: true, force: true });
const importers = new Set([...SPLIT.entryPoints, ...(await lazyModules())]);
await build({ ...SPLIT, plugins: [corePlugin(importers), builtinsPlugin] });
await build({ ...common, entryPoints: [path.join(REPO, 'tasks/rootfs-copy-thread.ts')], outfile: path.join(REPO, 'dist/tasks/rootfs-copy-thread.js'), plugins: [builtinsPlugin] });
fs.chmodSync(path.join(REPO, 'dist/tasks/cli.js'), 0o755);
