// Every ELF file in the jail, resolved as the jail's own loader would resolve it (the
// jail's ld.so.cache, or its ld.so.conf and the loader's default directories; links
// followed inside the jail only): what it needs and the jail lacks.

import { jsString } from '../printable.js';
import { ElfFactsCache, Resolver } from '../elf/index.js';
import type { Context } from './context.js';

export function checkLibraries(ctx: Context, cache = new ElfFactsCache()): void {
  const resolver = new Resolver({ root: ctx.root, cache });
  const unreadable: string[] = [];
  for (const n of ctx.nodes) {
    if (!n.elf || !n.st.isFile()) continue;
    let r: ReturnType<Resolver['closure']>;
    try {
      r = resolver.closure(n.path);
    } catch (err) {
      unreadable.push(`${n.path} (${(err as NodeJS.ErrnoException).code ?? 'changed while it was read'})`);
      continue;
    }
    if (!r.ok) {
      // A damaged ELF file (or one replaced while we looked) is not a program the loader can start; say so once.
      if (r.error.code !== 'elf-not-elf') unreadable.push(`${n.path} (${r.error.code})`);
      continue;
    }
    const c = r.value;
    const seen = new Set<string>();
    for (const m of c.missing) {
      if (seen.has(m.soname)) continue;
      seen.add(m.soname);
      if (m.soname === c.interpreter && m.chain.length === 2) {
        ctx.add('missing-interpreter', n.path, `its program interpreter ${m.soname} is not in the jail${m.reason ? ` (${m.reason})` : ''}: the kernel cannot start it ("No such file or directory")`,
          `add the program with elf(${jsString(n.path)}), which brings its interpreter, or remove the program`);
        continue;
      }
      const chain = m.chain.join(' -> ');
      ctx.add('missing-library', n.path, `needs ${m.soname}, which does not resolve inside the jail (${chain})${m.reason ? `: ${m.reason}` : ''}`,
        `if the jailfile declares ${m.chain[0]} with elf(), jail make brings its whole closure back; otherwise put ${m.soname} in the jail, or remove ${m.chain[0]}`);
    }
  }
  if (unreadable.length) {
    ctx.note(`ELF files that could not be read, so their libraries were not checked: ${unreadable.slice(0, 10).join(', ')}${unreadable.length > 10 ? `, and ${unreadable.length - 10} more` : ''}`);
  }
}
