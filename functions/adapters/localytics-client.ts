import http from 'node:http';
import https from 'node:https';
import * as z from 'zod/mini';
import { backoffMs } from '../core/backoff.js';
import {
  ApiResponseError,
  AuthError,
  LocationExpiredError,
  PermanentJobError,
  RequestInFlightError,
  RequestNotSentError,
  ThrottledError,
  TransientError,
} from '../core/errors.js';
import { hourParts, parseUtcTimestamp } from '../core/hours.js';
import type { SyncJob } from '../core/jobs.js';
import type {
  Credentials,
  DownloadedFile,
  DownloadOptions,
  ExportListing,
  ExportSource,
  ListOptions,
  ResolveOptions,
  ResolveOutcome,
} from '../core/ports.js';
import { describeError, redactUrl, registerSecret } from '../core/redact.js';
import { budgetRetryAfterMs, type RequestBudget } from '../core/request-budget.js';
import '../core/schema.js';
import { sleep } from '../core/sleep.js';
import { checkApiUrl } from './api-url.js';
import { assertAllowedLocation, type LocationPolicy } from './location-policy.js';

export const DEFAULT_API_URL = 'https://api.localytics.com';
const MAX_LIST_BYTES = 5 * 1024 * 1024;
const MAX_LIST_ATTEMPTS = 8;
const MAX_FILE_REDIRECTS = 3;

const timestamp = z.pipe(
  z.string().check(z.refine((value) => !Number.isNaN(parseUtcTimestamp(value)), 'not a date-time')),
  z.transform((value: string) => parseUtcTimestamp(value)),
);

const listEntrySchema = z.object({
  id: z.union([z.int(), z.pipe(z.string().check(z.regex(/^\d+$/)), z.transform(Number))]),
  name: z.string().check(z.maxLength(1000)),
  source_type: z.string().check(z.maxLength(100)),
  source_id: z.union([z.string().check(z.maxLength(100)), z.pipe(z.int(), z.transform(String))]),
  job_type: z.string().check(z.maxLength(100)),
  results_count: z.nullish(z.int().check(z.nonnegative())),
  results_generated_at: z.nullish(timestamp),
  results_expire_at: z.nullish(timestamp),
  last_requested_at: z.nullish(timestamp),
});
const listSchema = z.array(listEntrySchema).check(z.maxLength(10_000));

export interface LocalyticsClientOptions {
  readonly apiUrl?: string;
  readonly credentials: Credentials;
  readonly budget: RequestBudget;
  /** Time allowed for one API request, ms. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** A download that sends nothing for this long is abandoned, ms. Default 60 s. */
  readonly downloadIdleTimeoutMs?: number;
  readonly locationPolicy?: Partial<LocationPolicy>;
  readonly random?: () => number;
}

export interface ClientStats {
  apiRequests: number;
  throttled: number;
  downloads: number;
}

/** The `ExportSource` adapter for the Localytics Export APIs (and the simulator, which speaks the same protocol). */
export class LocalyticsClient implements ExportSource {
  readonly apiUrl: string;
  readonly stats: ClientStats = { apiRequests: 0, throttled: 0, downloads: 0 };
  private readonly authorization: string;
  private readonly budget: RequestBudget;
  private readonly requestTimeoutMs: number;
  private readonly downloadIdleTimeoutMs: number;
  private readonly policy: LocationPolicy;
  private readonly random: () => number;
  private consecutiveThrottles = 0;
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent = new https.Agent({ keepAlive: true });

  constructor(options: LocalyticsClientOptions) {
    // HTTPS only (plain HTTP on loopback): every entry point builds its client here (issue 21, item 2).
    this.apiUrl = checkApiUrl(options.apiUrl ?? DEFAULT_API_URL);
    const apiHost = new URL(this.apiUrl).hostname;
    registerSecret(options.credentials.apiKey);
    registerSecret(options.credentials.apiSecret);
    this.authorization = `Basic ${Buffer.from(`${options.credentials.apiKey}:${options.credentials.apiSecret}`).toString('base64')}`;
    registerSecret(this.authorization.slice('Basic '.length));
    this.budget = options.budget;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.downloadIdleTimeoutMs = options.downloadIdleTimeoutMs ?? 60_000;
    this.policy = {
      apiHost,
      extraHosts: options.locationPolicy?.extraHosts ?? [],
      allowAnyHost: options.locationPolicy?.allowAnyHost ?? false,
    };
    this.random = options.random ?? Math.random;
  }

  listAudiences(options: ListOptions = {}): Promise<ExportListing[]> {
    return this.list('/v1/exports/audiences', options);
  }

  listProfiles(options: ListOptions = {}): Promise<ExportListing[]> {
    return this.list('/v1/exports/profiles', options);
  }

  async resolve(job: SyncJob, options: ResolveOptions = {}): Promise<ResolveOutcome> {
    const path = exportPath(job);
    let response: Response;
    try {
      response = await this.request(path, options);
    } catch (error) {
      // No budget slot before the caller's deadline: nothing was sent; hand the job back for later.
      const retryAfterMs = budgetRetryAfterMs(error);
      if (retryAfterMs !== undefined) return { status: 'throttled', retryAfterMs, byBudget: true };
      if (error instanceof TransientError) return failure(error, true);
      // `beforeSend` refused: nothing was sent; the caller knows what its own error means.
      return failure(error instanceof Error ? error : new RequestNotSentError(String(error)), false);
    }
    await response.body?.cancel().catch(() => undefined);
    const status = response.status;
    if (status !== 429) this.consecutiveThrottles = 0;
    if (status >= 300 && status < 400) {
      const location = response.headers.get('location');
      if (!location) {
        return failure(new ApiResponseError(`${status} without a Location header from ${path}`, path), false);
      }
      let url: URL;
      try {
        url = new URL(location, `${this.apiUrl}${path}`);
      } catch {
        // Sent and answered: the export may be consumed (a change set). The value may hold a signature: not quoted.
        return failure(new ApiResponseError(`${status} with a Location that is not a URL from ${path}`, path), false);
      }
      return { status: 'ready', location: url.toString() };
    }
    if (status === 429) return { status: 'throttled', retryAfterMs: await this.throttle(response) };
    if (status === 401 || status === 403) {
      const meaning = status === 401 ? 'credentials not valid' : 'no access to this export';
      return failure(new AuthError(`${path} answered ${status} (${meaning})`, status), false);
    }
    if (status === 404) {
      // For a log hour, 404 means "not completed yet" (or no such app): pending, never done.
      if (job.kind === 'log_hour') return { status: 'not_ready' };
      return failure(new PermanentJobError(`${path} answered 404 (export not found)`), false);
    }
    if (status >= 500) return failure(new TransientError(`${path} answered ${status}`), true);
    return failure(new ApiResponseError(`${path} answered unexpected status ${status}`, path), false);
  }

  async download(location: string, options: DownloadOptions = {}): Promise<DownloadedFile> {
    let url = new URL(location);
    for (let redirects = 0; ; redirects++) {
      assertAllowedLocation(url, this.policy);
      this.stats.downloads++;
      const response = await this.get(url, options.signal);
      const status = response.statusCode ?? 0;
      if (status === 200) {
        const length = response.headers['content-length'];
        return { body: response, contentLength: length === undefined ? undefined : Number(length) };
      }
      response.resume();
      const where = redactUrl(url);
      if (status >= 300 && status < 400 && response.headers.location && redirects < MAX_FILE_REDIRECTS) {
        url = new URL(response.headers.location, url);
        continue;
      }
      if (status === 403 || status === 404 || status === 410) {
        throw new LocationExpiredError(`file host answered ${status} for ${where} (expired or invalid URL)`);
      }
      if (status >= 500 || status === 429 || status === 408) {
        throw new TransientError(`file host answered ${status} for ${where}`);
      }
      throw new PermanentJobError(`file host answered unexpected status ${status} for ${where}`);
    }
  }

  /** Release pooled connections (the CLI calls this before exiting). */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private get(url: URL, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const secure = url.protocol === 'https:';
    const lib = secure ? https : http;
    return new Promise((resolve, reject) => {
      // No Authorization header, ever: the file host gets only the presigned URL.
      const request = lib.get(url, {
        agent: secure ? this.httpsAgent : this.httpAgent,
        headers: { 'accept-encoding': 'identity', 'user-agent': 'localytics-export-sync' },
        // Aborts connecting and waiting for the headers; once the response is handed over, the body's reader
        // (a pipeline with the same signal) destroys it.
        signal,
      });
      request.setTimeout(this.downloadIdleTimeoutMs, () => {
        request.destroy(new TransientError(`download from ${redactUrl(url)} stalled`));
      });
      request.once('response', resolve);
      request.once('error', (error) => {
        reject(
          error instanceof TransientError
            ? error
            : new TransientError(`download from ${redactUrl(url)} failed: ${describeError(error)}`, { cause: error }),
        );
      });
    });
  }

  /**
   * A list, retried on network failures, 5xx and 429 until `signal` aborts (a Lambda's deadline, Ctrl-C): then the
   * list fails at once with the last reason, so that the rest of a run can go on.
   */
  private async list(path: string, options: ListOptions): Promise<ExportListing[]> {
    const { signal } = options;
    const beforeSend = options.beforeSend
      ? async () => {
          options.beforeSend?.();
        }
      : undefined;
    const stopped = (reason: string) =>
      new TransientError(`${path}: gave up at the deadline (${reason})`, { cause: signal?.reason });
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await this.request(path, { signal, beforeSend });
      } catch (error) {
        if (signal?.aborted) throw stopped(describeError(error));
        // No budget slot before the caller's deadline: nothing was sent, and asking again at once would not help.
        if (budgetRetryAfterMs(error) !== undefined) throw error;
        if (attempt >= MAX_LIST_ATTEMPTS) throw error;
        if (await sleep(backoffMs(attempt - 1, { random: this.random }), signal)) throw stopped(describeError(error));
        continue;
      }
      if (response.status === 429) {
        const wait = await this.throttle(response);
        await response.body?.cancel().catch(() => undefined);
        if (options.failOnThrottle) throw new ThrottledError(`${path} answered 429`, wait);
        if (attempt >= MAX_LIST_ATTEMPTS) throw new TransientError(`${path} still throttled after ${attempt} attempts`);
        if (await sleep(wait, signal)) throw stopped(`throttled (429), asked to wait ${Math.ceil(wait / 1000)} s`);
        continue;
      }
      this.consecutiveThrottles = 0;
      if (response.status >= 500 && attempt < MAX_LIST_ATTEMPTS) {
        await response.body?.cancel().catch(() => undefined);
        if (await sleep(backoffMs(attempt - 1, { random: this.random }), signal)) {
          throw stopped(`answered ${response.status}`);
        }
        continue;
      }
      return this.parseList(path, response);
    }
  }

  private async parseList(path: string, response: Response): Promise<ExportListing[]> {
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel().catch(() => undefined);
      throw new AuthError(`${path} answered ${response.status} (credentials not valid or no access)`, response.status);
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      throw new ApiResponseError(`${path} answered ${response.status}, expected 200 with a JSON list`, path);
    }
    const { text, bytes } = await readLimited(response, MAX_LIST_BYTES, path);
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      // Never the parser's message: it quotes the body's first characters, and a body can echo the Authorization
      // header (issue 21, item 3). The length and the content type say enough.
      const type = mediaType(response.headers.get('content-type'));
      const html = type === 'text/html' ? ' (got an HTML page)' : '';
      throw new ApiResponseError(
        `${path} did not answer JSON${html}: ${response.status} with ${bytes} bytes of ${type}`,
        path,
      );
    }
    const parsed = listSchema.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` at [${issue.path.join('.')}]` : '';
      throw new ApiResponseError(`${path} answered a malformed list${where}: ${issue?.message ?? 'invalid'}`, path);
    }
    return parsed.data.map((entry) => ({
      id: entry.id,
      name: entry.name,
      sourceType: entry.source_type,
      sourceId: entry.source_id,
      jobType: entry.job_type,
      resultsCount: entry.results_count ?? undefined,
      resultsGeneratedAt: entry.results_generated_at ?? undefined,
      resultsExpireAt: entry.results_expire_at ?? undefined,
      lastRequestedAt: entry.last_requested_at ?? undefined,
    }));
  }

  /**
   * One API request through the shared budget. Failures throw `RequestNotSentError` (no slot before `signal`
   * aborted, DNS failure, connection refused: nothing reached the API) or `RequestInFlightError` (it may have);
   * an error thrown by `beforeSend` is passed through as it is (nothing was sent).
   */
  private async request(path: string, options: ResolveOptions = {}): Promise<Response> {
    // The budget runs `beforeSend` once the slot is due and decides whether the request may still leave on it.
    let refusal: { error: unknown } | undefined;
    const { beforeSend } = options;
    try {
      await this.budget.acquire(options.signal, {
        beforeSend:
          beforeSend &&
          (async () => {
            try {
              await beforeSend();
            } catch (error) {
              refusal = { error };
              throw error;
            }
          }),
      });
    } catch (error) {
      if (refusal) throw refusal.error;
      throw new RequestNotSentError(describeError(error), { cause: error });
    }
    if (options.signal?.aborted) throw new RequestNotSentError(`request to ${path} not sent: stopped`);
    const inFlight = options.inFlightSignal ?? options.signal;
    // A late slot's new wait may outlast what the holder of a change-set claim may do: then nothing is sent.
    if (inFlight?.aborted) throw new RequestNotSentError(`request to ${path} not sent: stopped`);
    this.stats.apiRequests++;
    const timeout = AbortSignal.timeout(this.requestTimeoutMs);
    try {
      return await fetch(`${this.apiUrl}${path}`, {
        headers: { authorization: this.authorization, accept: 'application/json' },
        redirect: 'manual',
        signal: inFlight ? AbortSignal.any([timeout, inFlight]) : timeout,
      });
    } catch (error) {
      const message = `request to ${path} failed: ${describeError(error)}`;
      throw neverSent(error)
        ? new RequestNotSentError(message, { cause: error })
        : new RequestInFlightError(message, { cause: error });
    }
  }

  /** Handle a 429: pause the whole budget and say how long. */
  private async throttle(response: Response): Promise<number> {
    this.stats.throttled++;
    this.consecutiveThrottles++;
    const wait =
      parseRetryAfter(response.headers.get('retry-after')) ??
      backoffMs(this.consecutiveThrottles - 1, { baseMs: 1000, maxMs: 60_000, random: this.random });
    await this.budget.pause(wait);
    return wait;
  }
}

/** Error codes of failures before a single byte of the request can have reached the server. */
const NOT_SENT_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Whether a failed fetch certainly never sent the request: every underlying cause (Node tries each address of a
 * host, hence several) failed before a connection existed. Anything else — a reset, a timeout, an abort — may have
 * reached the API.
 */
function neverSent(error: unknown): boolean {
  const causes: unknown[] = [];
  const collect = (value: unknown, depth: number) => {
    if (!value || typeof value !== 'object' || depth > 4) return;
    const { cause, errors, code } = value as { cause?: unknown; errors?: unknown[]; code?: unknown };
    if (Array.isArray(errors) && errors.length > 0) for (const inner of errors) collect(inner, depth + 1);
    else if (cause) collect(cause, depth + 1);
    else causes.push(code);
  };
  collect(error, 0);
  return causes.length > 0 && causes.every((code) => typeof code === 'string' && NOT_SENT_CODES.has(code));
}

function failure(error: Error, retryable: boolean): ResolveOutcome {
  return { status: 'failed', error, retryable };
}

/** The API path of a job, with zero-padded values. */
export function exportPath(job: SyncJob): string {
  switch (job.kind) {
    case 'log_hour': {
      const { year, month, day, hour } = hourParts(job.hour);
      return `/v1/exports/analytics/logs/${job.appUuid}/${year}/${month}/${day}/${hour}`;
    }
    case 'audience':
      return `/v1/exports/audiences/${job.audienceId}/${job.identifierType}`;
    case 'profile':
    case 'profile_changes':
      return `/v1/exports/profiles/${job.profileDbId}/${job.kind}`;
  }
}

/** `Retry-After` as seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, 15 * 60_000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(0, date - now), 15 * 60_000);
}

/** The media type of a `Content-Type` (`text/html`), or a placeholder when it is anything but a plain one. */
function mediaType(header: string | null): string {
  if (header === null) return 'no content type';
  const type = header.split(';')[0]?.trim().toLowerCase() ?? '';
  return /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$/.test(type)
    ? type
    : 'an unreadable content type';
}

async function readLimited(response: Response, maxBytes: number, path: string) {
  if (!response.body) return { text: '', bytes: 0 };
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += chunk.byteLength;
    if (total > maxBytes) {
      throw new ApiResponseError(`${path} answered more than ${maxBytes} bytes; refusing an oversized list`, path);
    }
    chunks.push(chunk);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), bytes: total };
}
