// The shape of the bundle (tasks/bundle.mjs): how many modules Node loads before a
// command runs. Each costs a resolve, a read and a compile of its own, so a change that
// splits the core into more chunks, or gives the command line a chunk it shares with the
// commands, slows every no-op make or every `jail --version`.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers.js';

const DIST = path.join(REPO, 'dist');

/** The modules a module loads before it runs: itself and its static imports, transitively. */
function staticGraph(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = fs.readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s*"(\.[^"]+)";|^import\s*"(\.[^"]+)";/gms)) {
    staticGraph(path.resolve(path.dirname(file), (m[1] ?? m[2])!), seen);
  }
  return seen;
}

/** The module cli.js loads for a command. */
function commandModule(name: string): string {
  const cli = fs.readFileSync(path.join(DIST, 'tasks/cli.js'), 'utf8');
  const m = new RegExp(`import\\("(\\.\\.?/(?:lib|commands)/${name}(?:-[A-Z0-9]+)?\\.js)"\\)`).exec(cli);
  expect(m, `cli.js imports the ${name} command`).not.toBeNull();
  return path.resolve(DIST, 'tasks', m![1]!);
}

describe('the bundle', () => {
  it('loads nothing but cli.js for --version', () => {
    expect([...staticGraph(path.join(DIST, 'tasks/cli.js'))]).toEqual([path.join(DIST, 'tasks/cli.js')]);
  });

  it('loads a build in two modules: the command and the core', () => {
    const make = staticGraph(commandModule('make'));
    expect(make.size).toBeLessThanOrEqual(2);
    // What a jailfile imports is in there already: 'jail' and 'jail/recipes' add only themselves.
    for (const api of ['tasks/index.js', 'recipes/index.js']) {
      const extra = [...staticGraph(path.join(DIST, api))].filter((f) => !make.has(f));
      expect(extra).toEqual([path.join(DIST, api)]);
    }
  });

  it('keeps status, stop and deps light: one module each, not the core', () => {
    for (const name of ['status', 'stop', 'deps']) {
      const graph = staticGraph(commandModule(name));
      expect(graph.size).toBe(1);
      expect(fs.statSync([...graph][0]!).size).toBeLessThan(100_000);
    }
  });
});
