// A uid or gid field of etc/passwd or etc/group as the jail's glibc reads it (nss_files'
// INT_FIELD: strtoul in base 10, so leading whitespace, a sign and leading zeros pass, and
// `-N` wraps modulo 2^64; a value above 2^32-1, an empty field or anything after the
// digits makes it skip the whole line). A person, and a /^\d+$/ test, read `+0` or ` 0`
// differently: what the libc reads is what the jail runs as.

const FIELD = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/;
const WRAP = 2n ** 64n;

/** The id the jail's libc reads from `field`, or undefined when it skips the line. */
export function libcId(field: string): number | undefined {
  const m = FIELD.exec(field);
  if (!m) return undefined;
  let v = BigInt(m[2]!);
  if (v >= WRAP) return undefined; // strtoul overflows to ULONG_MAX, above 2^32-1
  if (m[1] === '-') v = (WRAP - v) % WRAP;
  return v > 0xffffffffn ? undefined : Number(v);
}

/** Plain digits: what a person reads is what the libc reads. */
export const isPlainId = (field: string): boolean => /^\d+$/.test(field);
