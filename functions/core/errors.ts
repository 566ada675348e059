/** Named errors of the core. Outcomes that are not errors (not ready, throttled) are values, see `outcomes.ts`. */

export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
}

/** The Localytics API answered something we cannot use (bad shape, HTML instead of JSON, unexpected status). */
export class ApiResponseError extends Error {
  override readonly name = 'ApiResponseError';
  constructor(
    message: string,
    readonly endpoint: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** 401/403 from the API: the credentials or the access to this export are wrong. Never retried. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Network failure, timeout or 5xx: worth another try. */
export class TransientError extends Error {
  override readonly name: string = 'TransientError';
}

/** The request may have reached the API (network failure or timeout after sending): retryable, but not harmless. */
export class RequestInFlightError extends TransientError {
  override readonly name = 'RequestInFlightError';
}

/**
 * The request never left this machine (no budget slot before the deadline, DNS failure, connection refused, TLS
 * handshake refused): nothing can have been consumed, so asking again is harmless.
 */
export class RequestNotSentError extends TransientError {
  override readonly name = 'RequestNotSentError';
}

/** The API answered 429 to a caller that would rather come back later than wait (`retryAfterMs`). */
export class ThrottledError extends TransientError {
  override readonly name = 'ThrottledError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** The presigned URL answered 403: ask the API for a fresh one (unless that would consume a change set). */
export class LocationExpiredError extends Error {
  override readonly name = 'LocationExpiredError';
}

/** The downloaded bytes are not what was announced: short body, broken gzip. Retried like a transient failure. */
export class IntegrityError extends Error {
  override readonly name = 'IntegrityError';
}

/** A permanent problem with one job that no retry can fix (not found, no access, unsafe redirect). */
export class PermanentJobError extends Error {
  override readonly name: string = 'PermanentJobError';
}

/**
 * A file that looks hostile rather than broken (a gzip that inflates far beyond real data): not copied, not retried
 * (the same bytes would come again), reported with the reason.
 */
export class SuspiciousFileError extends PermanentJobError {
  override readonly name = 'SuspiciousFileError';
}

/** Writing to the destination failed. The sink guarantees nothing partial is left behind. */
export class SinkError extends Error {
  override readonly name: string = 'SinkError';
}

/**
 * A write that only creates found its key taken: another writer (a duplicate job) stored it first. Nothing of this
 * write is left behind.
 */
export class ObjectExistsError extends SinkError {
  override readonly name = 'ObjectExistsError';
}

/** A queue refused some messages (after its retries): `unsent` lists them; the others were sent. */
export class EnqueueError extends Error {
  override readonly name = 'EnqueueError';
  constructor(
    message: string,
    readonly unsent: readonly unknown[],
  ) {
    super(message);
  }
}

export class SecretError extends Error {
  override readonly name = 'SecretError';
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
