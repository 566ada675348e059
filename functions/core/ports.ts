import type { Readable } from 'node:stream';
import type { SyncJob } from './jobs.js';

/** One entry of `GET /v1/exports/audiences` or `GET /v1/exports/profiles`, validated. */
export interface ExportListing {
  readonly id: number;
  readonly name: string;
  readonly sourceType: string;
  readonly sourceId: string;
  readonly jobType: string;
  readonly resultsCount?: number;
  /** Epoch ms; undefined when no results have been generated yet. */
  readonly resultsGeneratedAt?: number;
  readonly resultsExpireAt?: number;
  readonly lastRequestedAt?: number;
}

/** What the API answered for one export request. Errors are values too, so callers must decide. */
export type ResolveOutcome =
  | { readonly status: 'ready'; readonly location: string }
  | { readonly status: 'not_ready' }
  /** A 429; or, with `byBudget`, no request budget slot before the caller's deadline (nothing was sent). */
  | { readonly status: 'throttled'; readonly retryAfterMs: number; readonly byBudget?: boolean }
  | { readonly status: 'failed'; readonly error: Error; readonly retryable: boolean };

export interface DownloadedFile {
  readonly body: Readable;
  /** From `Content-Length`, when the file host sent it. */
  readonly contentLength?: number;
}

export interface ListOptions {
  /** Stop retrying (and waiting for the request budget) when it aborts; the list then fails. */
  readonly signal?: AbortSignal;
  /** Throw `ThrottledError` on a 429 instead of waiting out its `Retry-After` and asking again. */
  readonly failOnThrottle?: boolean;
  /** Called right before each attempt is sent (after the budget granted its slot). */
  readonly beforeSend?: () => void;
}

export interface ResolveOptions {
  /** Stop waiting for the request budget when it aborts (nothing is sent), and abort the request in flight. */
  readonly signal?: AbortSignal;
  /**
   * Once the request is sent, only this signal aborts it (default: `signal`). A `profile_changes` request is
   * consumed by Localytics once sent, so its holder lets it finish past a soft deadline.
   */
  readonly inFlightSignal?: AbortSignal;
  /**
   * Called after the budget granted the slot and right before the request is sent. If it throws, nothing is sent
   * and `resolve` answers `failed` with that error.
   */
  readonly beforeSend?: () => Promise<void>;
}

export interface DownloadOptions {
  /** Aborts the download at any point: connecting, waiting for the first byte, or mid-body. */
  readonly signal?: AbortSignal;
}

/** The Localytics Export APIs (or the simulator). */
export interface ExportSource {
  listAudiences(options?: ListOptions): Promise<ExportListing[]>;
  listProfiles(options?: ListOptions): Promise<ExportListing[]>;
  /** Ask the API for the file of a job: one API request, paced by the request budget. */
  resolve(job: SyncJob, options?: ResolveOptions): Promise<ResolveOutcome>;
  /**
   * Download a resolved `Location`, never with credentials. Throws `LocationExpiredError` (403 from the file host),
   * `TransientError` or `PermanentJobError`.
   */
  download(location: string, options?: DownloadOptions): Promise<DownloadedFile>;
}

export interface StoredObject {
  readonly key: string;
  readonly size: number;
  readonly lastModified?: Date;
}

export interface VersionedText {
  readonly text: string;
  /** Opaque: S3's ETag, or a digest of the content for a local directory. */
  readonly version: string;
}

/** Options of one destination call. */
export interface SinkCallOptions {
  /**
   * Aborts the call (a deadline, Ctrl-C): it fails at once and undoes what it started. Every call also has a time
   * limit of its own, so that a store that stops answering cannot hold it forever.
   */
  readonly signal?: AbortSignal;
}

export interface WriteOptions extends SinkCallOptions {
  readonly contentType: string;
  /** The body's exact length, when known before it streams: the S3 sink then sends one `PutObject`. */
  readonly contentLength?: number;
  /** Small string metadata kept with the object (S3 user metadata; ignored by the local sink). */
  readonly metadata?: Record<string, string>;
  /**
   * Replace an object already at `key` (`convert --rebuild`). Without it a write only creates: when `key` exists
   * (another writer stored it first) it fails with `ObjectExistsError` and leaves that object as it is.
   */
  readonly replace?: boolean;
}

/** The destination: an S3 bucket and prefix, or a local directory. Keys are relative to its prefix. */
export interface ObjectSink {
  /** `s3://bucket/prefix` or the absolute directory, for reports. */
  readonly location: string;
  /**
   * Find out, once, what writing to this destination needs, before the first write (the S3 sink probes an
   * S3-compatible store under `_state/`). Throws `ConfigError` when it cannot be written correctly. Writes run it
   * themselves; a caller may run it first to fail early.
   */
  prepare?(options?: SinkCallOptions): Promise<void>;
  exists(key: string, options?: SinkCallOptions): Promise<boolean>;
  /** Keys under `prefix`, in lexicographic order, optionally starting after `startAfter`. */
  list(prefix: string, options?: { startAfter?: string; signal?: AbortSignal }): AsyncIterable<StoredObject>;
  /**
   * Stream `body` to `key`. Atomic: on any failure nothing is left at `key` and no upload stays open; once it landed,
   * no upload of `key` stays open either (not even a killed writer's).
   */
  write(key: string, body: Readable, options: WriteOptions): Promise<{ bytes: number }>;
  readText(key: string, options?: SinkCallOptions): Promise<string | undefined>;
  /** A small text object and its version (S3's ETag), for a conditional `replaceText`; undefined when missing. */
  readVersioned(key: string, options?: SinkCallOptions): Promise<VersionedText | undefined>;
  writeText(key: string, text: string, options?: SinkCallOptions): Promise<void>;
  /**
   * Create `key` only if it does not exist (S3 `If-None-Match: *`). Resolves to the new object's version, or
   * undefined when the key already exists.
   */
  createText(key: string, text: string, options?: SinkCallOptions): Promise<string | undefined>;
  /**
   * Replace `key` only if it still holds `version` (S3 `If-Match`): of several writers that read the same version,
   * exactly one succeeds. Resolves to the new version, or undefined when the key changed or is gone.
   */
  replaceText(key: string, text: string, version: string, options?: SinkCallOptions): Promise<string | undefined>;
  delete(key: string, options?: SinkCallOptions): Promise<void>;
  /**
   * Delete `key` only if it still holds `version` (S3 `DeleteObject` with `If-Match`): a record another run replaced
   * meanwhile stays. Resolves true when deleted, false when the key holds another version or is gone.
   */
  deleteIfUnchanged(key: string, version: string, options?: SinkCallOptions): Promise<boolean>;
  /**
   * Abort the multipart uploads under `prefix` that writers killed mid-write left open (S3; a local directory has
   * none): those of a key that exists, and those older than any live writer. Resolves how many it aborted.
   */
  abortAbandonedUploads?(prefix: string, options?: SinkCallOptions): Promise<number>;
}

/** Structured logger: a fixed message plus fields. Adapters must pass fields through `redact`. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export interface Credentials {
  readonly apiKey: string;
  readonly apiSecret: string;
}

export interface SecretProvider {
  getCredentials(): Promise<Credentials>;
}
