// Reads the few ELF facts the dynamic loader uses (header, program headers, PT_INTERP,
// the dynamic section's NEEDED/SONAME/RPATH/RUNPATH/FLAGS_1, the GNU ABI note) with
// bounded positional reads, so a hostile or truncated file yields an error value and
// never a crash, a huge allocation, or a read outside the file.

import * as fs from 'node:fs';
import { fail, jailError, ok, type Result } from '../result.js';
import { Corrupt, escapeBytes, FileReader, notTerminated, utf8Text } from './file-reader.js';

export interface ElfInfo {
  class: 32 | 64;
  endian: 'le' | 'be';
  machine: number;
  osabi: number;
  type: 'exec' | 'dyn' | 'rel' | 'core' | 'other';
  /** PT_INTERP */
  interpreter?: string;
  /** DT_NEEDED in order */
  needed: string[];
  soname?: string;
  /** Raw DT_RPATH split on ':' ([] when absent; [''] when present but empty). */
  rpath: string[];
  /** Raw DT_RUNPATH split on ':' ([] when absent). Its presence alone disables DT_RPATH. */
  runpath: string[];
  /**
   * DT_FILTER (required) and DT_AUXILIARY (ignored when not found) names in dynamic-section
   * order, each with the count of DT_NEEDED entries before it: the loader handles all three
   * tags in that one order, so where a filtee sits among NEEDED decides what loads first.
   */
  filtees: Filtee[];
  /**
   * Libraries the object will dlopen at run time, known from what it imports: glibc
   * dlopens libgcc_s.so.1 for pthread_cancel and pthread_exit (unwinding), and a jail
   * without it aborts the first thread that exits.
   */
  dlopens: string[];
  // ---- extras the resolver needs to mimic open_verify ----
  /** EI_ABIVERSION */
  abiVersion: number;
  /** e_flags (ARM float ABI etc.) */
  flags: number;
  /** DT_FLAGS_1 (DF_1_NODEFLIB = 0x800) */
  flags1: number;
  /** Has a PT_DYNAMIC segment (false: static, or a plain object file). */
  dynamic: boolean;
  /** OS field of the NT_GNU_ABI_TAG note when present (0 = Linux); glibc 2.36's loader no longer checks it. */
  abiTagOs?: number;
  /** Header defects that make glibc's open_verify refuse the file outright (fatal for the process). */
  defects: string[];
  /** Non-fatal oddities (e.g. NEEDED list capped, a string that is not UTF-8). */
  warnings: string[];
  /**
   * Strings above whose bytes are not UTF-8, as they stand there (U+FFFD for each bad
   * sequence): no string path can name what they name, so they are never looked up.
   */
  undecodable: string[];
}

export interface Filtee {
  name: string;
  /** DT_AUXILIARY rather than DT_FILTER. */
  aux: boolean;
  /** How many DT_NEEDED entries come before it. */
  after: number;
}

/** Bounds that keep a hostile file from costing unbounded time or memory. */
export const LIMITS = {
  maxPhnum: 65536,
  maxDynamicBytes: 8 * 1024 * 1024,
  maxNeeded: 4096,
  maxString: 4096,
  maxInterp: 4096,
  maxNoteBytes: 64 * 1024,
};

/**
 * Imports that make glibc dlopen libgcc_s.so.1, NUL-delimited so `xpthread_exit` does not
 * count. Both share a prefix, so one scan for the prefix finds every candidate.
 */
const UNWIND_PREFIX = Buffer.from('\0pthread_');
const UNWIND_SUFFIXES = [Buffer.from('cancel\0'), Buffer.from('exit\0')];

function importsUnwind(table: Buffer): boolean {
  for (let at = table.indexOf(UNWIND_PREFIX); at >= 0; at = table.indexOf(UNWIND_PREFIX, at + 1)) {
    const rest = at + UNWIND_PREFIX.length;
    for (const sfx of UNWIND_SUFFIXES) {
      if (rest + sfx.length <= table.length && table.compare(sfx, 0, sfx.length, rest, rest + sfx.length) === 0) return true;
    }
  }
  return false;
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const PT_NOTE = 4;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
const DT_FLAGS_1 = 0x6ffffffb;
const DT_AUXILIARY = 0x7ffffffd;
const DT_FILTER = 0x7fffffff;

// Fields are read through a DataView: its getters are engine builtins, cheaper than
// Buffer's read methods in code that runs once per file, and 64-bit words are read as two
// 32-bit halves so no BigInt is made for each of them. Inside the head they all read one
// DataView (FileReader.view), so a header costs no object.
function u16(v: DataView, o: number, le: boolean): number {
  return v.getUint16(o, le);
}
function u32(v: DataView, o: number, le: boolean): number {
  return v.getUint32(o, le);
}
/** Number.MAX_SAFE_INTEGER is 2^53 - 1: a high half up to this keeps a 64-bit word exact. */
const MAX_HIGH_HALF = 0x1fffff;

function word(v: DataView, o: number, le: boolean, is64: boolean, what: string): number {
  if (!is64) return u32(v, o, le);
  const hi = v.getUint32(le ? o + 4 : o, le);
  const lo = v.getUint32(le ? o : o + 4, le);
  if (hi > MAX_HIGH_HALF) throw new Corrupt(`${what} is absurdly large (${(BigInt(hi) << 32n) | BigInt(lo)})`);
  return hi * 0x100000000 + lo;
}

interface Phdr { type: number; offset: number; vaddr: number; filesz: number; align: number }

/**
 * Parse an open file. Returns null when the file does not start with the ELF magic
 * (scripts, text), an error value when it claims to be ELF but is broken.
 */
export function parseElfFd(fd: number, size: number, displayPath: string): Result<ElfInfo | null> {
  try {
    if (size < 4) return ok(null);
    const r = new FileReader(fd, size);
    try {
      return ok(parseFile(r, size));
    } finally {
      r.release();
    }
  } catch (e) {
    if (e instanceof Corrupt) {
      return fail(jailError('elf-corrupt',
        `${displayPath} starts like an ELF file but is broken: ${e.message}. The dynamic loader would refuse it; ` +
        'replace it with an intact copy (a truncated download or a partial copy often looks like this).',
        { path: displayPath }));
    }
    if (e instanceof Error && 'code' in e) {
      return fail(jailError('elf-unreadable', `${displayPath} could not be read (${(e as NodeJS.ErrnoException).code}): ${e.message}.`, { path: displayPath }));
    }
    throw e;
  }
}

/** The parse proper; Corrupt for a broken file, null when it is not ELF at all. */
function parseFile(r: FileReader, size: number): ElfInfo | null {
  // Regions are read through views whose start is r.base (0 when read apart from the head).
  let v = r.view(0, 4, 'ELF magic');
  if (v.getUint32(r.base, false) !== 0x7f454c46) return null;
  if (size < 16) throw new Corrupt(`the file is only ${size} bytes long, shorter than an ELF identification`);
  v = r.view(0, 16, 'e_ident');
  const clsByte = v.getUint8(r.base + 4);
  const dataByte = v.getUint8(r.base + 5);
  if (clsByte !== 1 && clsByte !== 2) throw new Corrupt(`EI_CLASS is ${clsByte}, neither ELFCLASS32 nor ELFCLASS64`);
  if (dataByte !== 1 && dataByte !== 2) throw new Corrupt(`EI_DATA is ${dataByte}, neither little- nor big-endian`);
  const is64 = clsByte === 2;
  const le = dataByte === 1;
  const ehsize = is64 ? 64 : 52;
  if (size < ehsize) throw new Corrupt(`the file is ${size} bytes long, shorter than its ${ehsize}-byte ELF header`);
  const ev = r.view(0, ehsize, 'ELF header');
  const e = r.base;

  const defects: string[] = [];
  const warnings: string[] = [];
  const osabi = ev.getUint8(e + 7);
  const abiVersion = ev.getUint8(e + 8);
  if (ev.getUint8(e + 6) !== 1) defects.push('ELF file version ident does not match current one');
  if (osabi !== 0 && osabi !== 3) defects.push(`ELF file OS ABI invalid (${osabi})`);
  // glibc accepts ABI versions up to its LIBC_ABI_MAX for ELFOSABI_GNU, only 0 for SYSV.
  else if ((osabi === 0 && abiVersion !== 0) || (osabi === 3 && abiVersion > 3)) defects.push('ELF file ABI version invalid');
  for (let i = 9; i < 16; i++) {
    if (ev.getUint8(e + i) !== 0) {
      defects.push('nonzero padding in e_ident');
      break;
    }
  }

  const eType = u16(ev, e + 16, le);
  const machine = u16(ev, e + 18, le);
  const eVersion = u32(ev, e + 20, le);
  if (eVersion !== 1) defects.push('ELF file version does not match current one');
  const phoff = word(ev, e + (is64 ? 32 : 28), le, is64, 'e_phoff');
  const shoff = word(ev, e + (is64 ? 40 : 32), le, is64, 'e_shoff');
  const flags = u32(ev, e + (is64 ? 48 : 36), le);
  const phentsize = u16(ev, e + (is64 ? 54 : 42), le);
  let phnum = u16(ev, e + (is64 ? 56 : 44), le);
  const shentsize = u16(ev, e + (is64 ? 58 : 46), le);
  const wantPhent = is64 ? 56 : 32;

  const type: ElfInfo['type'] =
    eType === 1 ? 'rel' : eType === 2 ? 'exec' : eType === 3 ? 'dyn' : eType === 4 ? 'core' : 'other';
  if (type !== 'exec' && type !== 'dyn') defects.push('only ET_DYN and ET_EXEC can be loaded');

  // binfmt_elf's load_elf_phdrs refuses to run a file whose program headers are not whole
  // headers, none, or more than 64 KiB of them (PN_XNUM among them), and glibc cannot load
  // such a file either: both fail, whatever the rest of the file says.
  if (type === 'exec' || type === 'dyn') {
    const refuse = (why: string) => new Corrupt(`${why}, so the kernel refuses to run it (Exec format error)`);
    if (phnum === 0) throw refuse('e_phnum is 0 (no program headers)');
    if (phentsize !== wantPhent) throw refuse(`e_phentsize is ${phentsize}, not the ${wantPhent} bytes of a program header`);
    if (phnum * phentsize > 65536) throw refuse(`e_phnum is ${phnum}${phnum === 0xffff ? ' (PN_XNUM)' : ''}, more than 64 KiB of program headers`);
  }
  if (phnum === 0xffff) {
    // PN_XNUM: the real count lives in section header 0's sh_info.
    if (shoff === 0 || shentsize < (is64 ? 64 : 40)) throw new Corrupt('e_phnum is PN_XNUM but there is no section header 0');
    const sh0 = r.view(shoff, is64 ? 64 : 40, 'section header 0');
    phnum = u32(sh0, r.base + (is64 ? 44 : 28), le);
    if (phnum > LIMITS.maxPhnum) throw new Corrupt(`${phnum} program headers is more than the ${LIMITS.maxPhnum} allowed`);
  }

  // Kept: the segments the loader's view needs, in file order (the first PT_INTERP and
  // PT_DYNAMIC count; notes are walked and loads searched in order). Every header's words
  // are still read, so an absurd value anywhere is reported as before.
  const loads: Phdr[] = [];
  const notes: Phdr[] = [];
  let interp: Phdr | undefined;
  let dyn: Phdr | undefined;
  if (phnum > 0) {
    if (phentsize !== wantPhent) {
      defects.push("ELF file's phentsize not the expected size");
      if (phentsize < wantPhent) throw new Corrupt(`e_phentsize ${phentsize} is smaller than a program header (${wantPhent})`);
    }
    const table = r.view(phoff, phnum * phentsize, 'program header table');
    const base = r.base;
    for (let i = 0; i < phnum; i++) {
      const o = base + i * phentsize;
      const t = u32(table, o, le);
      const kept = t === PT_LOAD || t === PT_NOTE || (t === PT_INTERP && !interp) || (t === PT_DYNAMIC && !dyn);
      if (is64) {
        // Most headers are of no interest: only their words' high halves are checked (as
        // word() would), with word() itself called for its message when one is too large.
        const hi = le ? 4 : 0;
        if (
          table.getUint32(o + 8 + hi, le) > MAX_HIGH_HALF || table.getUint32(o + 16 + hi, le) > MAX_HIGH_HALF ||
          table.getUint32(o + 32 + hi, le) > MAX_HIGH_HALF || table.getUint32(o + 48 + hi, le) > MAX_HIGH_HALF
        ) {
          word(table, o + 8, le, true, 'p_offset');
          word(table, o + 16, le, true, 'p_vaddr');
          word(table, o + 32, le, true, 'p_filesz');
          word(table, o + 48, le, true, 'p_align');
        }
        if (!kept) continue;
      } else if (!kept) {
        continue;
      }
      const p: Phdr = is64
        ? {
          type: t,
          offset: word(table, o + 8, le, true, 'p_offset'),
          vaddr: word(table, o + 16, le, true, 'p_vaddr'),
          filesz: word(table, o + 32, le, true, 'p_filesz'),
          align: word(table, o + 48, le, true, 'p_align'),
        }
        : {
          type: t,
          offset: u32(table, o + 4, le),
          vaddr: u32(table, o + 8, le),
          filesz: u32(table, o + 16, le),
          align: u32(table, o + 28, le),
        };
      if (t === PT_LOAD) loads.push(p);
      else if (t === PT_NOTE) notes.push(p);
      else if (t === PT_INTERP) interp = p;
      else dyn = p;
    }
  }

  const info: ElfInfo = {
    class: is64 ? 64 : 32,
    endian: le ? 'le' : 'be',
    machine,
    osabi,
    type,
    needed: [],
    rpath: [],
    runpath: [],
    filtees: [],
    dlopens: [],
    abiVersion,
    flags,
    flags1: 0,
    dynamic: false,
    defects,
    warnings,
    undecodable: [],
    // Present from the start, in the order they are filled in, so every parse has one
    // shape (code reading them stays monomorphic) and JSON keeps its key order.
    interpreter: undefined,
    abiTagOs: undefined,
    soname: undefined,
  };

  if (interp) {
    if (interp.filesz === 0 || interp.filesz > LIMITS.maxInterp) throw new Corrupt(`PT_INTERP has size ${interp.filesz}`);
    const b = r.bytes(interp.offset, interp.filesz, 'PT_INTERP');
    const nul = b.indexOf(0);
    // The kernel refuses an interpreter string that is not NUL-terminated.
    if (nul < 0) throw new Corrupt('PT_INTERP is not NUL-terminated');
    info.interpreter = text(b.subarray(0, nul), 'PT_INTERP', info);
  }

  for (let i = 0; i < notes.length; i++) {
    const p = notes[i] as Phdr;
    if (p.filesz < 32 || (p.align !== 4 && p.align !== 8)) continue;
    const os = abiTagOs(r, p, le);
    if (os !== undefined) {
      info.abiTagOs = os;
      break;
    }
  }

  if (dyn) {
    info.dynamic = true;
    readDynamic(r, dyn, loads, is64, le, info);
  }
  return info;
}

/** First NT_GNU_ABI_TAG note's OS word, following open_verify's walk. */
function abiTagOs(r: FileReader, p: Phdr, le: boolean): number | undefined {
  const size = Math.min(p.filesz, LIMITS.maxNoteBytes);
  if (p.offset + size > r.size) return undefined;
  const bv = r.view(p.offset, size, 'PT_NOTE');
  const base = r.base;
  let o = 0;
  while (o + 32 <= size) {
    const namesz = u32(bv, base + o, le);
    const descsz = u32(bv, base + o + 4, le);
    const ntype = u32(bv, base + o + 8, le);
    // The name "GNU\0", byte for byte.
    if (namesz === 4 && descsz === 16 && ntype === 1 && bv.getUint32(base + o + 12, false) === 0x474e5500) {
      return u32(bv, base + o + 16, le);
    }
    const align = p.align;
    const next = 12 + Math.ceil(namesz / align) * align + Math.ceil(descsz / align) * align;
    if (!Number.isSafeInteger(next) || next <= 0) return undefined;
    o += next;
  }
  return undefined;
}

const UNDECODABLE: Record<string, string> = {
  DT_RPATH: 'jail cannot search its directories, so a library the loader finds there is reported missing',
  DT_RUNPATH: 'jail cannot search its directories, so a library the loader finds there is reported missing',
  DT_SONAME: 'jail cannot match a request to this name',
  PT_INTERP: 'jail cannot look the interpreter up',
};

/** A string of the file as text (see utf8Text); bytes that are not UTF-8 are noted, with a warning naming the field. */
function text(b: Buffer, what: string, info: ElfInfo): string {
  const s = utf8Text(b);
  if (s !== undefined) return s;
  const shown = b.toString('utf8');
  info.undecodable.push(shown);
  info.warnings.push(`${what} ${escapeBytes(b)} is not valid UTF-8: ${UNDECODABLE[what] ?? 'jail cannot name such a file, so it is reported missing whatever the loader finds'}; ` +
    'rebuild the object with a UTF-8 name or path');
  return shown;
}

/** loads: the PT_LOAD headers in file order. */
function vaddrToOffset(loads: Phdr[], vaddr: number): number | undefined {
  for (let i = 0; i < loads.length; i++) {
    const p = loads[i] as Phdr;
    if (vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz) return vaddr - p.vaddr + p.offset;
  }
  return undefined;
}

function readDynamic(r: FileReader, dyn: Phdr, loads: Phdr[], is64: boolean, le: boolean, info: ElfInfo): void {
  const entSize = is64 ? 16 : 8;
  if (dyn.filesz > LIMITS.maxDynamicBytes) throw new Corrupt(`the dynamic section is ${dyn.filesz} bytes, more than the ${LIMITS.maxDynamicBytes} allowed`);
  const count = Math.floor(dyn.filesz / entSize);
  const b = r.view(dyn.offset, count * entSize, 'dynamic section');
  const base = r.base;
  const neededOffs: number[] = [];
  let strtab: number | undefined;
  let strsz: number | undefined;
  let soname: number | undefined;
  let rpath: number | undefined;
  let runpath: number | undefined;
  let neededTotal = 0;
  const filteeOffs: { off: number; aux: boolean; after: number }[] = [];
  // Tags and values are only compared: a 64-bit one with a nonzero high half becomes -1
  // (clamped, not rejected). Written out, as this loop runs over every entry of every file.
  const hi = le ? 4 : 0;
  const lo = le ? 0 : 4;
  for (let i = 0; i < count; i++) {
    const o = base + i * entSize;
    let tag: number;
    let val: number;
    if (is64) {
      tag = b.getUint32(o + hi, le) !== 0 ? -1 : b.getUint32(o + lo, le);
      if (tag === DT_NULL) break;
      val = b.getUint32(o + 8 + hi, le) !== 0 ? -1 : b.getUint32(o + 8 + lo, le);
    } else {
      tag = b.getUint32(o, le);
      if (tag === DT_NULL) break;
      val = b.getUint32(o + 4, le);
    }
    switch (tag) {
      case DT_NEEDED:
        neededTotal++;
        if (neededOffs.length < LIMITS.maxNeeded) neededOffs.push(val);
        break;
      case DT_STRTAB: strtab = val; break;
      case DT_STRSZ: strsz = val; break;
      // Later entries overwrite earlier ones, as l_info[] does in the loader.
      case DT_SONAME: soname = val; break;
      case DT_RPATH: rpath = val; break;
      case DT_RUNPATH: runpath = val; break;
      case DT_FLAGS_1: info.flags1 = val < 0 ? 0 : val; break;
      case DT_FILTER:
      case DT_AUXILIARY:
        if (filteeOffs.length < LIMITS.maxNeeded) filteeOffs.push({ off: val, aux: tag === DT_AUXILIARY, after: neededOffs.length });
        break;
      default: break;
    }
  }
  if (neededTotal > neededOffs.length) {
    info.warnings.push(`${neededTotal} DT_NEEDED entries; only the first ${neededOffs.length} were read`);
  }
  const wantsStrings = neededOffs.length > 0 || filteeOffs.length > 0 || soname !== undefined || rpath !== undefined || runpath !== undefined;
  if (!wantsStrings) return;
  if (strtab === undefined || strtab < 0) throw new Corrupt('the dynamic section names strings but has no DT_STRTAB');
  const strOff = vaddrToOffset(loads, strtab);
  if (strOff === undefined) throw new Corrupt(`DT_STRTAB address 0x${strtab.toString(16)} is not inside any loaded segment`);
  const limit = strsz !== undefined && strsz >= 0 ? Math.min(strOff + strsz, r.size) : r.size;
  // With a sane DT_STRSZ the whole table is read once (it is needed whole for the import
  // check below anyway) and every string is cut from it; without one, strings are read
  // one by one up to the end of the file, as before.
  const whole = strsz !== undefined && strsz > 0 && strsz <= LIMITS.maxDynamicBytes;
  let table: Buffer | undefined;
  const wholeTable = (): Buffer => (table ??= r.large(strOff, Math.min(strsz as number, r.size - strOff), 'DT_STRTAB'));
  const str = (idx: number, what: string): string => {
    if (idx < 0 || strOff + idx >= limit) throw new Corrupt(`${what} string offset ${idx} is outside DT_STRTAB`);
    if (!whole) return text(r.cstring(strOff + idx, limit, LIMITS.maxString, what), what, info);
    // Here strOff + idx < limit <= size, so the table is inside the file and ends at limit.
    const t = wholeTable();
    const nul = t.indexOf(0, idx);
    if (nul < 0 || nul > idx + LIMITS.maxString) throw new Corrupt(notTerminated(what, LIMITS.maxString));
    return text(t.subarray(idx, nul), what, info);
  };
  info.needed = neededOffs.map((v) => str(v, 'DT_NEEDED'));
  if (filteeOffs.length > 0) info.filtees = filteeOffs.map((f) => ({ name: str(f.off, f.aux ? 'DT_AUXILIARY' : 'DT_FILTER'), aux: f.aux, after: f.after }));
  if (soname !== undefined) info.soname = str(soname, 'DT_SONAME');
  // libc defines these; everyone else naming them imports them.
  if (info.soname !== 'libc.so.6' && whole && importsUnwind(wholeTable())) info.dlopens.push('libgcc_s.so.1');
  if (rpath !== undefined) info.rpath = str(rpath, 'DT_RPATH').split(':');
  if (runpath !== undefined) info.runpath = str(runpath, 'DT_RUNPATH').split(':');
}

/** What the facts cache needs to know to trust a parse: the identity and times of the file read. */
export interface FileStamp {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/**
 * A parse of a path, and whether the file opened was still the one `expect` describes
 * (the stat the caller resolved the path with): undefined when nothing was opened.
 */
export interface ElfRead {
  result: Result<ElfInfo | null>;
  unchanged?: boolean;
}

/**
 * Open a host path for parsing without blocking on FIFOs or touching devices:
 * only regular files are read.
 */
export function readElfPath(
  hostPath: string,
  opts: { noFollow?: boolean; displayPath?: string; expect?: { dev: bigint; ino: bigint } } = {},
): Result<ElfInfo | null> {
  return readElfChecked(hostPath, opts).result;
}

/**
 * readElfPath that also tells whether the file changed since the caller's stat, from the
 * fstat the open needs anyway. A change after that (during the read) gives the file new
 * times, so facts kept under the old stamp are never matched again: checking once more
 * after the parse would cost a second stat per file and protect nothing.
 */
export function readElfChecked(
  hostPath: string,
  opts: { noFollow?: boolean; displayPath?: string; expect?: { dev: bigint; ino: bigint } | FileStamp } = {},
): ElfRead {
  const display = opts.displayPath ?? hostPath;
  let fd: number;
  try {
    fd = fs.openSync(hostPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (opts.noFollow ? fs.constants.O_NOFOLLOW : 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    return { result: fail(jailError('elf-unreadable', `${display} could not be opened (${code}); check that it exists and is readable.`, { path: display })) };
  }
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    const expect = opts.expect;
    // The path was resolved beneath a root before opening; a different inode now means a
    // component was swapped (possibly for a link out of the root) in between.
    const sameFile = !expect || (st.dev === expect.dev && st.ino === expect.ino);
    if (!st.isFile()) {
      return {
        result: fail(jailError('elf-not-regular', `${display} is not a regular file, so it cannot be a program or library.`, { path: display })),
        unchanged: sameFile && sameTimes(st, expect),
      };
    }
    if (!sameFile) {
      return {
        result: fail(jailError('elf-changed', `${display} changed while it was being examined (another file is there now); ` +
          'run the build again when nothing is modifying the tree.', { path: display })),
        unchanged: false,
      };
    }
    return { result: parseElfFd(fd, Number(st.size), display), unchanged: sameTimes(st, expect) };
  } finally {
    fs.closeSync(fd);
  }
}

/** Size and times equal to the expected ones (true when only identity was expected). */
function sameTimes(st: fs.BigIntStats, expect: { dev: bigint; ino: bigint } | FileStamp | undefined): boolean {
  if (!expect || !('size' in expect)) return true;
  return st.size === expect.size && st.mtimeNs === expect.mtimeNs && st.ctimeNs === expect.ctimeNs;
}

/**
 * e_ident class/data and e_machine only: open_verify decides "other class, keep searching"
 * from these before looking at anything else, so a foreign file that our full parse
 * rejects must still be passed over rather than stop the search.
 */
export function peekIdent(hostPath: string, noFollow = false): { class: number; endian: 'le' | 'be' | undefined; machine: number } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(hostPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (noFollow ? fs.constants.O_NOFOLLOW : 0));
  } catch {
    return undefined;
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return undefined;
    const b = Buffer.alloc(20);
    const n = fs.readSync(fd, b, 0, 20, 0);
    if (n < 20 || b.readUInt32BE(0) !== 0x7f454c46) return undefined;
    const endian = b[5] === 1 ? 'le' : b[5] === 2 ? 'be' : undefined;
    return { class: b[4] ?? 0, endian, machine: endian === 'be' ? b.readUInt16BE(18) : b.readUInt16LE(18) };
  } finally {
    fs.closeSync(fd);
  }
}
