// Expected failures as values: a message for people, a code for scripts.
// Exceptions are reserved for bugs and are turned into exit status 2 at the CLI edge.

export interface JailError {
  /** Stable, machine-readable: 'missing-source', 'bad-root', 'elf-corrupt', ... */
  readonly code: string;
  /** One paragraph for a person: what is wrong, where (entry or path), what to do. */
  readonly message: string;
  /** The jail path or host path the error is about, when there is one. */
  readonly path?: string;
  /** Where the jailfile entry was declared (`file:line`), when the error comes from one. */
  readonly entry?: string;
}

export type Result<T, E = JailError> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const fail = <E = JailError>(error: E): Result<never, E> => ({ ok: false, error });

export function jailError(code: string, message: string, extra: { path?: string; entry?: string } = {}): JailError {
  return { code, message, ...extra };
}

/** Thrown only at the edges (CLI, the `make()` API) to carry a JailError out as an exception. */
export class JailFailure extends Error {
  constructor(readonly errors: readonly JailError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'JailFailure';
  }
}

export function unreachable(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}
