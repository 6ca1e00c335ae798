// The error vocabulary shared by every layer. Each error carries a stable string `code`
// (never matched by message text), a message that says what to do next, optional
// structured `details`, and whether retrying the same call can help. Errors cross the
// socket as data (code, message, details), never as stack traces.

export type ErrorCode =
  | 'invalid_name'
  | 'invalid_input'
  | 'template_invalid'
  | 'config_invalid'
  | 'not_found'
  | 'already_exists'
  | 'conflict'
  | 'locked'
  /** A shared-store write for a task whose lease this daemon no longer holds (another daemon took it). */
  | 'lease_lost'
  | 'invalid_transition'
  | 'not_allowed'
  | 'corrupt'
  | 'unsupported_schema'
  | 'storage'
  | 'daemon_unreachable'
  | 'internal';

export interface AtlasErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
  retryable?: boolean;
}

export class AtlasError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: AtlasErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AtlasError';
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? false;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

export function isAtlasError(err: unknown, code?: ErrorCode): err is AtlasError {
  return err instanceof AtlasError && (code === undefined || err.code === code);
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'string'
    ? (err as { code: string }).code
    : undefined;
}

/** Wraps a filesystem error into a storage error that names the file and what to do. */
export function storageError(action: string, file: string, err: unknown): AtlasError {
  if (err instanceof AtlasError) return err;
  const code = errnoCode(err);
  const hint =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? 'the disk is full: free some space; the previous state is intact'
      : code === 'EMFILE' || code === 'ENFILE'
        ? 'too many open files: raise the limit (ulimit -n) or run fewer tasks at once'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied: check the owner and mode of the atlas home'
          : code === 'EROFS'
            ? 'the filesystem is read-only'
            : 'see the cause for details';
  return new AtlasError('storage', `could not ${action} ${file}: ${code ?? String(err)} (${hint})`, {
    cause: err,
    details: { file, errno: code },
    retryable: code === 'ENOSPC' || code === 'EMFILE' || code === 'ENFILE' || code === 'EAGAIN',
  });
}
