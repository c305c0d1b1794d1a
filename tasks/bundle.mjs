// The bundle Node runs: dist/tasks/cli.js, the `jail` and `jail/recipes` modules, the
// commands' chunks and the copy thread (npm run build runs this after tsc).
//
// Node resolves, reads and compiles each ES module on its own, at about a millisecond a
// module on a small machine: more than most of our modules take to run. esbuild's code
// splitting makes a chunk of every set of modules reached by the same set of entry points,
// and with a dozen commands that cut what a no-op build loads into twenty chunks. So every
// entry point and lazily imported module imports the core first (the `jail` module,
// `jail/recipes` and the make command): all of it then lands in one chunk, and a command's
// chunk holds only what is its own. Apart from the core:
//   - tasks/cli.ts, so that `jail --version` and a usage error load no more than the parser;
//   - status, stop and deps, which need a tenth of it (deps only the ELF code) and never
//     load a jailfile: each is bundled whole, as dist/tasks/commands/<name>.js where the
//     command line imports it. Their copies of shared modules are never in one process with
//     the core's (a jailfile's 'jail' must be the command line's own instance);
//   - the copy thread, a worker with module instances of its own anyway: it is bundled alone.
//
// Node's own modules are taken with process.getBuiltinModule(), not imported: the ES module
// face of a builtin reads every export once, which for node:fs loads all of Node's streams
// (through fs.ReadStream) and for node:crypto its WebCrypto, milliseconds that a build that
// prints through fs.writeSync (tasks/stdio.ts) never needs.
//
// Dependencies stay in node_modules, except globby: it and fast-glob under it are some
// eighty modules, 200 ms or more to load for any jailfile with a glob and for every watch;
// bundled, they are one chunk that loads in a quarter of that or less.

import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const abs = (f) => path.join(REPO, f);
const CORE = ['tasks/index.ts', 'recipes/index.ts', 'tasks/commands/make.ts'].map(abs);
const APART = ['tasks/commands/status.ts', 'tasks/commands/stop.ts', 'tasks/commands/deps.ts'].map(abs);
const CLI = abs('tasks/cli.ts');

const BUNDLED = ['globby'];
const EXTERNAL = Object.keys(JSON.parse(fs.readFileSync(abs('package.json'), 'utf8')).dependencies).filter((d) => !BUNDLED.includes(d));

const OPTIONS = { bundle: true, format: 'esm', platform: 'node', target: 'node20', external: EXTERNAL, logLevel: 'warning', absWorkingDir: REPO };

const SPLIT = {
  ...OPTIONS,
  entryPoints: [CLI, abs('tasks/index.ts'), abs('recipes/index.ts')],
  splitting: true,
  outdir: abs('dist'),
  outbase: REPO,
  chunkNames: 'lib/[name]-[hash]',
};

/** The command line's import() of a command APART stays as written: it names that command's own bundle. */
const apartPlugin = {
  name: 'apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/commands\// }, (args) => {
      if (args.importer !== CLI || !APART.includes(abs(path.join('tasks', args.path.replace(/\.js$/, '.ts'))))) return undefined;
      return { path: args.path, external: true };
    });
  },
};

/** The modules loaded by import(), from a first build that writes nothing. */
async function lazyModules() {
  const { metafile } = await build({ ...SPLIT, write: false, metafile: true, plugins: [apartPlugin] });
  const lazy = new Set();
  for (const input of Object.values(metafile.inputs)) {
    for (const i of input.imports) if (i.kind === 'dynamic-import' && !i.external) lazy.add(path.resolve(REPO, i.path));
  }
  return lazy;
}

/** Puts `import 'jail:core'` in front of the code of the entry points and lazy modules (`importers`) but the command line. */
function corePlugin(importers) {
  return {
    name: 'core',
    setup(b) {
      b.onResolve({ filter: /^jail:core$/ }, () => ({ path: 'core', namespace: 'jail' }));
      b.onLoad({ filter: /^core$/, namespace: 'jail' }, () => ({
        contents: CORE.map((f) => `import ${JSON.stringify(f)};`).join('\n'),
        resolveDir: REPO,
        loader: 'js',
      }));
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        if (!importers.has(args.path) || args.path === CLI) return undefined;
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

const BUILTINS = new Set(builtinModules);

/**
 * `import x, { y } from 'node:z'` becomes a module of `process.getBuiltinModule('node:z')`
 * with an export per property, each read only if some module uses it. Every importing file
 * gets a copy of its own: one shared by modules of different chunks would be a chunk of its
 * own, one more module for Node to load. A bundled CommonJS dependency's `require('z')`
 * gets the builtin the same way (an ES module has no require() to call).
 */
const builtinsPlugin = {
  name: 'builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
      const id = args.path.replace(/^node:/, '');
      if (!BUILTINS.has(id)) return undefined;
      if (args.kind === 'require-call') return { path: `node:${id}`, namespace: 'builtin-cjs' };
      return args.kind === 'import-statement' ? { path: `node:${id}?${path.relative(REPO, args.importer)}`, namespace: 'builtin' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin-cjs' }, ({ path: id }) => ({ contents: `module.exports = process.getBuiltinModule(${JSON.stringify(id)});`, loader: 'js' }));
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

/**
 * The BUNDLED packages, each made one ES module first: their CommonJS parts are wrapped by
 * esbuild here, so that the split build needs no helpers of its own for them (those would
 * be a chunk that every command, --version too, loads).
 */
async function prebundled() {
  const text = new Map();
  for (const name of BUNDLED) {
    const r = await build({ ...OPTIONS, entryPoints: [fileURLToPath(import.meta.resolve(name))], outfile: `${name}.js`, write: false, plugins: [builtinsPlugin] });
    text.set(name, r.outputFiles[0].text);
  }
  return {
    name: 'prebundled',
    setup(b) {
      b.onResolve({ filter: new RegExp(`^(${BUNDLED.join('|')})$`) }, (args) => ({ path: args.path, namespace: 'prebundled' }));
      b.onLoad({ filter: /.*/, namespace: 'prebundled' }, (args) => ({ contents: text.get(args.path), loader: 'js', resolveDir: REPO }));
    },
  };
}

fs.rmSync(abs('dist/lib'), { recursive: true, force: true });
const importers = new Set([...SPLIT.entryPoints, ...(await lazyModules())]);
await build({ ...SPLIT, plugins: [apartPlugin, corePlugin(importers), builtinsPlugin, await prebundled()] });
for (const f of [...APART, abs('tasks/rootfs-copy-thread.ts')]) {
  await build({ ...OPTIONS, entryPoints: [f], outfile: abs(path.join('dist', path.relative(REPO, f).replace(/\.ts$/, '.js'))), plugins: [builtinsPlugin] });
}
fs.chmodSync(abs('dist/tasks/cli.js'), 0o755);
