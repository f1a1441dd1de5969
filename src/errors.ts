/**
 * Errors a user can cause carry an exit code and, where there is one, the fix.
 * The CLI prints `message` and `hint` without a stack; anything else is an internal error.
 */
export class ImgbuildError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? 1;
    this.hint = options.hint;
  }
}

/** Bad flags or arguments: exit 2 as most CLIs do. */
export class UsageError extends ImgbuildError {
  constructor(message: string, hint?: string) {
    super(message, { hint, exitCode: 2 });
  }
}

/** A reference that does not parse. */
export class ReferenceError extends UsageError {}

/** The registry answered with an error we cannot recover from. */
export class RegistryError extends ImgbuildError {
  readonly status: number | undefined;
  readonly code: string | undefined;

  constructor(
    message: string,
    options: { status?: number; code?: string; hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
    this.status = options.status;
    this.code = options.code;
  }
}

/** A manifest, blob or repository the registry does not have. */
export class NotFoundError extends RegistryError {}

/** Credentials missing or refused. */
export class AuthError extends RegistryError {}

/** Could not establish a trusted TLS connection. */
export class TlsError extends ImgbuildError {}

/** Bytes that do not match the digest they were asked for by. */
export class DigestMismatchError extends ImgbuildError {}

/** A local input (file to add, CA file, config) that is missing or unusable. */
export class InputError extends ImgbuildError {}

/** `verify` found a different file, or none. Exit 1 without being an error in the tool. */
export class VerifyFailure extends ImgbuildError {}

/**
 * The caller aborted the job (an AbortSignal; Ctrl-C in the CLI). Work in flight was stopped,
 * upload sessions closed and temporary files removed before this was thrown; nothing was tagged.
 * Named `AbortError`, as `fetch` and Node name theirs, so `error.name === 'AbortError'` checks work.
 */
export class AbortedError extends ImgbuildError {
  constructor(what: string, reason?: unknown) {
    super(`${what} was aborted${reason instanceof Error && reason.message ? ` (${reason.message})` : ''}`, { exitCode: 130, cause: reason });
    this.name = 'AbortError';
  }
}
