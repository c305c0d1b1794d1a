// Per-machine facts that glibc bakes in at build time (search dirs, $LIB, $PLATFORM,
// ld.so.cache flags, the standard interpreter). We cannot ask the loader (we never run it),
// so they are tabulated here for Debian-style multiarch glibc, which is what jails are built
// from; ResolverOptions can override each of them for other layouts.

export const EM_386 = 3;
export const EM_ARM = 40;
export const EM_PPC64 = 21;
export const EM_S390 = 22;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const EM_RISCV = 243;

export interface MachineProfile {
  /** Short name used in messages. */
  readonly name: string;
  /** The dynamic loader's built-in search path (SYSTEM_DIRS), in order, without trailing '/'. */
  readonly systemDirs: readonly string[];
  /** Expansion of $LIB (DL_DST_LIB). Debian patches it to the multiarch dir. */
  readonly dstLib: string;
  /** Expansion of $PLATFORM (AT_PLATFORM from the kernel); undefined drops the element, as glibc does. */
  readonly platform: string | undefined;
  /** _dl_cache_check_flags for this loader. */
  readonly cacheFlagsOk: (flags: number) => boolean;
  /** _DL_CACHE_DEFAULT_ID: an entry with these flags ends the cache search. */
  readonly cacheDefaultId: number;
  /** Interpreter ldd would use for an object without PT_INTERP (a library). */
  readonly interpreter: string | undefined;
  /**
   * Legacy hwcap subdirectories the loader tries in each search directory before the
   * directory itself (''), in its order; only those every CPU of the machine gets.
   */
  readonly legacySubdirs: readonly string[];
  /** Legacy hwcap bits of ld.so.cache entries (ldconfig's marks for those subdirectories) the loader takes on every CPU. */
  readonly legacyHwcaps: bigint;
}

/** The directory alone: no legacy hwcap subdirectories (loaders not tabulated here, and glibc 2.37 on). */
const NO_SUBDIRS: readonly string[] = [''];

/**
 * glibc 2.36 on x86-64 (elf/dl-hwcaps.c, legacy part; LD_DEBUG=libs prints the list): the
 * subsets of tls, AT_PLATFORM and the hwcap x86_64 (always set there), tls outermost, in
 * descending order. Those naming the platform are left out like glibc-hwcaps/: the loader
 * takes the platform from CPU features (x86_64 on some CPUs, giving x86_64/x86_64/, another
 * name on some Intel ones), and a jail gets what every CPU loads. The cache bits follow: ldconfig marks tls/
 * with bit 63 and x86_64/ with HWCAP_X86_64 (bit 1); avx512_1/ (bit 2) needs the CPU.
 */
const X86_64_SUBDIRS: readonly string[] = ['tls/x86_64/', 'tls/', 'x86_64/', ''];
const X86_64_HWCAPS = (1n << 63n) | (1n << 1n);

const FLAG_ELF = 0x0001;
const FLAG_ELF_LIBC6 = 0x0003;

function debian(name: string, triplet: string, platform: string | undefined, cacheId: number,
  interpreter: string | undefined, alsoGeneric = false): MachineProfile {
  return {
    name,
    systemDirs: [`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib', '/usr/lib'],
    dstLib: `lib/${triplet}`,
    platform,
    // Most 64-bit ports accept only their exact id; the generic rule also accepts plain ELF.
    cacheFlagsOk: alsoGeneric ? (f) => f === FLAG_ELF || f === cacheId : (f) => f === cacheId,
    cacheDefaultId: cacheId,
    interpreter,
    legacySubdirs: NO_SUBDIRS,
    legacyHwcaps: 0n,
  };
}

/** Pick the loader profile for an object's class/byte order/machine; undefined when unknown. */
export function profileFor(cls: 32 | 64, endian: 'le' | 'be', machine: number, eFlags = 0): MachineProfile | undefined {
  switch (machine) {
    case EM_X86_64:
      return cls === 64
        ? { ...debian('x86-64', 'x86_64-linux-gnu', 'x86_64', 0x0303, '/lib64/ld-linux-x86-64.so.2'), legacySubdirs: X86_64_SUBDIRS, legacyHwcaps: X86_64_HWCAPS }
        : debian('x32', 'x86_64-linux-gnux32', 'x86_64', 0x0803, '/libx32/ld-linux-x32.so.2');
    case EM_386:
      return debian('i386', 'i386-linux-gnu', 'i686', FLAG_ELF_LIBC6, '/lib/ld-linux.so.2', true);
    case EM_AARCH64:
      return cls === 64 && endian === 'le'
        ? debian('aarch64', 'aarch64-linux-gnu', 'aarch64', 0x0a03, '/lib/ld-linux-aarch64.so.1')
        : undefined;
    case EM_ARM: {
      // EF_ARM_ABI_FLOAT_HARD selects armhf; armhf ld.so also takes plain libc6 entries.
      const hard = (eFlags & 0x400) !== 0;
      return hard
        ? { ...debian('armhf', 'arm-linux-gnueabihf', undefined, 0x0903, '/lib/ld-linux-armhf.so.3'),
            cacheFlagsOk: (f: number) => f === 0x0903 || f === FLAG_ELF_LIBC6 }
        : { ...debian('armel', 'arm-linux-gnueabi', undefined, 0x0b03, '/lib/ld-linux.so.3'),
            cacheFlagsOk: (f: number) => f === 0x0b03 || f === FLAG_ELF_LIBC6 };
    }
    case EM_PPC64:
      return cls === 64 && endian === 'le'
        ? debian('ppc64el', 'powerpc64le-linux-gnu', undefined, 0x0503, '/lib64/ld64.so.2')
        : undefined;
    case EM_S390:
      return cls === 64 ? debian('s390x', 's390x-linux-gnu', undefined, 0x0403, '/lib/ld64.so.1') : undefined;
    case EM_RISCV:
      return cls === 64 ? debian('riscv64', 'riscv64-linux-gnu', undefined, 0x1003, '/lib/ld-linux-riscv64-lp64d.so.1') : undefined;
    default:
      return undefined;
  }
}

/** Fallback when the machine is not tabulated: generic glibc rules, no multiarch dirs. */
export function genericProfile(): MachineProfile {
  return {
    name: 'generic',
    systemDirs: ['/lib', '/usr/lib'],
    dstLib: 'lib',
    platform: undefined,
    cacheFlagsOk: (f) => f === FLAG_ELF || f === FLAG_ELF_LIBC6,
    cacheDefaultId: FLAG_ELF_LIBC6,
    interpreter: undefined,
    legacySubdirs: NO_SUBDIRS,
    legacyHwcaps: 0n,
  };
}
