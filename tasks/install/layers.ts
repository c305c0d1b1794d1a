// Where an install step's captured layer lives, and its key: the step's name, its
// command and environment, and the bytes of every input file. Input hashes are cached by
// stat in the install directory, so a no-op build does not re-read a source tree.

import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { globNaming, isGlob } from '../glob.js';
import { badNameMessage, hostBadName } from '../byte-names.js';
import type { InstallEntry } from '../entries.js';
import { stateDir } from '../manifest.js';
import { readPack, type ReadPack } from '../pack/read.js';
import { jailError, type JailError } from '../result.js';
import { stampOf } from '../targets.js';

export interface Layer {
  entry: InstallEntry;
  key: string;
  /** The captured layer, in pack format: `.jail/layers/<name>-<key>.tar`. */
  tar: string;
  /** Its files unpacked (the sources of its targets), and the staged map. */
  dir: string;
  /** Present when the layer has been captured: its index and files. */
  pack?: ReadPack;
}

export const layersDir = (installDir: string) => path.join(stateDir(installDir), 'layers');

interface HashCache { [file: string]: [stamp: string, sha256: string] }

function inputFiles(e: InstallEntry, errors: JailError[]): string[] {
  const out = new Set<string>();
  const walk = (p: string, input: string) => {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) {
      // Read as text, a name that is not UTF-8 names no file: say so, not that it is missing.
      const bad = hostBadName(p);
      if (bad !== undefined) errors.push(jailError('bad-name', `${e.at}: ${e.label}: ${badNameMessage(bad, p === input ? '' : `found in the input ${input}`)}`, { path: bad, entry: e.at }));
      else errors.push(jailError('missing-source', `${e.at}: ${e.label}: the input ${p} does not exist on this host. Fix the path or remove it from inputs.`, { path: p, entry: e.at }));
      return;
    }
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n), input);
    else out.add(p);
  };
  for (const i of e.inputs) {
    if (isGlob(i)) {
      const { matches: m, badNames } = globNaming(i, { onlyFiles: false, dot: true, followSymbolicLinks: false, absolute: true });
      for (const b of badNames) errors.push(jailError('bad-name', `${e.at}: ${e.label}: ${badNameMessage(b, `met by the input pattern ${i}`)}`, { path: b, entry: e.at }));
      if (m.length === 0 && badNames.length === 0) errors.push(jailError('missing-source', `${e.at}: ${e.label}: the input pattern ${i} matches nothing on this host.`, { path: i, entry: e.at }));
      for (const f of m.sort()) walk(f, f);
    } else {
      walk(i, i);
    }
  }
  return [...out].sort();
}

function layerKey(e: InstallEntry, files: string[], cache: HashCache): string {
  const h = createHash('sha256').update(JSON.stringify([e.name, e.run, e.env, e.timeoutMs]));
  for (const f of files) {
    const st = fs.lstatSync(f, { bigint: true });
    const stamp = `${stampOf(st)}:${st.mode}`;
    let digest = cache[f]?.[0] === stamp ? cache[f]![1] : undefined;
    if (!digest) {
      const body = st.isSymbolicLink() ? Buffer.from('link:' + fs.readlinkSync(f)) : fs.readFileSync(f);
      digest = createHash('sha256').update(body).digest('hex');
      cache[f] = [stamp, digest];
    }
    h.update(`${f}\0${Number(st.mode) & 0o7777}\0${digest}\0`);
  }
  return h.digest('hex').slice(0, 20);
}

/** Works out each install step's key, and loads the layer already captured for it, if any. */
export async function prepareLayers(entries: InstallEntry[], installDir: string, errors: JailError[]): Promise<Layer[]> {
  if (entries.length === 0) return [];
  const dir = layersDir(installDir);
  const cacheFile = path.join(dir, 'input-hashes.json');
  let cache: HashCache = {};
  try { cache = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as HashCache; } catch { /* first time */ }
  const before = JSON.stringify(cache);
  const out: Layer[] = [];
  for (const e of entries) {
    const key = layerKey(e, inputFiles(e, errors), cache);
    const tar = path.join(dir, `${e.name}-${key}.tar`);
    const layer: Layer = { entry: e, key, tar, dir: path.join(dir, `${e.name}-${key}.d`) };
    if (fs.existsSync(tar)) {
      const stagedFile = path.join(layer.dir, 'staged.json');
      try {
        const s = JSON.parse(fs.readFileSync(stagedFile, 'utf8')) as { index: ReadPack['index']; staged: [string, string][] };
        layer.pack = { index: s.index, staged: new Map(s.staged) };
        if ([...layer.pack.staged.values()].some((f) => !fs.existsSync(f))) throw new Error('staged files missing');
      } catch {
        // Unpacked again from the tar (the install directory was copied, or the cache cleared).
        const { pack, errors: bad } = await readPack(tar, path.join(layer.dir, 'files'));
        if (!pack) errors.push(...bad.map((b) => ({ ...b, message: `${e.at}: ${e.label}: the captured layer ${tar} is damaged (${b.message}). Delete it to run the step again.` })));
        else {
          layer.pack = pack;
          fs.writeFileSync(stagedFile, JSON.stringify({ index: pack.index, staged: [...pack.staged] }));
        }
      }
    }
    out.push(layer);
  }
  if (JSON.stringify(cache) !== before) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(cacheFile, JSON.stringify(cache));
  }
  return out;
}
