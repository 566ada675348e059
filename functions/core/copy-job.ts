import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { backoffMs } from './backoff.js';
import { IntegrityError, LocationExpiredError, PermanentJobError, RequestInFlightError, SinkError } from './errors.js';
import { dataKey, jobFields, type ProfileChangesJob, pendingChangeSetKey, type SyncJob } from './jobs.js';
import type { ExportSource, Logger, ObjectSink } from './ports.js';
import { describeError } from './redact.js';
import { type Clock, systemClock } from './request-budget.js';
import { isGzipHead, peekBytes, VerifyingStream } from './verify-stream.js';

export type CopyOutcome =
  | {
      readonly status: 'copied';
      readonly key: string;
      /** Bytes stored at the destination. */
      readonly bytes: number;
      /** Bytes served by the file host. */
      readonly servedBytes: number;
      readonly rows: number;
      /** Rows that are not valid JSON: copied byte for byte, counted and reported. */
      readonly malformedRows: number;
      readonly warnings: readonly string[];
      readonly apiRequests: number;
      readonly downloads: number;
    }
  | { readonly status: 'present'; readonly key: string }
  | { readonly status: 'not_ready'; readonly apiRequests: number }
  | { readonly status: 'throttled'; readonly retryAfterMs: number; readonly apiRequests: number }
  /** Stopped on purpose (deadline or Ctrl-C); nothing was written; run it again later. */
  | { readonly status: 'interrupted'; readonly apiRequests: number }
  | {
      readonly status: 'failed';
      readonly reason: string;
      readonly retryable: boolean;
      readonly apiRequests: number;
      readonly downloads: number;
    };

export interface CopyDependencies {
  readonly source: ExportSource;
  readonly sink: ObjectSink;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Download attempts of one `Location` before the job is reported failed (retryable). Default 4. */
  readonly maxDownloadAttempts?: number;
  /** Fresh `Location`s asked for after an expired one. Default 2. */
  readonly maxReResolves?: number;
  /** Skip the job when its key already exists (the planner may have checked already). Default true. */
  readonly checkExisting?: boolean;
  readonly random?: () => number;
  /** Aborting it stops the job between steps or mid-transfer (the sink then aborts its write). */
  readonly signal?: AbortSignal;
  /**
   * Which files have every row parsed to count malformed JSON lines: `plain` (audiences and profiles, served as
   * plain JSON lines; the documentation's own sample has a malformed one), `all` (raw logs too), or `off`.
   * Parsing is the copy's largest CPU cost (bench/RESULTS.md), hence not on gzip log hours by default.
   * Default `plain`.
   */
  readonly checkJson?: JsonCheck;
}

export type JsonCheck = 'plain' | 'all' | 'off';

/**
 * The state of one change set, kept under `_state/` from before it is requested until its copy is confirmed:
 * `claimed` while the request is under way (so that two runs never both consume one), `resolved` once its
 * `Location` is known (so that any later run finishes this change set instead of consuming the next one).
 */
export interface ChangeSetRecord {
  readonly state: 'claimed' | 'resolved';
  readonly profileDbId: string;
  readonly generatedAt: number;
  readonly key: string;
  readonly claimedAt: string;
  readonly location?: string;
  readonly resolvedAt?: string;
}

/** A claim younger than this belongs to a run that is still working on it. */
const CLAIM_TTL_MS = 15 * 60_000;

class CopyRun {
  apiRequests = 0;
  downloads = 0;
  readonly warnings: string[] = [];
  readonly fields: Record<string, string>;
  readonly key: string;
  readonly clock: Clock;

  constructor(
    readonly job: SyncJob,
    readonly deps: CopyDependencies,
  ) {
    this.key = dataKey(job);
    this.fields = jobFields(job);
    this.clock = deps.clock ?? systemClock;
  }

  failed(reason: string, retryable: boolean): CopyOutcome {
    this.deps.logger.warn('export copy failed', { ...this.fields, reason, retryable });
    return { status: 'failed', reason, retryable, apiRequests: this.apiRequests, downloads: this.downloads };
  }

  interrupted(): CopyOutcome {
    return { status: 'interrupted', apiRequests: this.apiRequests };
  }
}

/**
 * Copy one export file to the destination: ask the API for its `Location`, stream the file to its deterministic key,
 * verify it on the way. Never throws: every way a job can end is a `CopyOutcome`.
 */
export async function copyJob(job: SyncJob, deps: CopyDependencies): Promise<CopyOutcome> {
  let run: CopyRun | undefined;
  try {
    run = new CopyRun(job, deps);
    if ((deps.checkExisting ?? true) && (await deps.sink.exists(run.key))) {
      // A change set copied by a run that stopped before removing its record: remove it now, or it would hold
      // back every later change set of that profile database.
      if (job.kind === 'profile_changes') await deps.sink.delete(pendingChangeSetKey(job)).catch(() => undefined);
      return { status: 'present', key: run.key };
    }
    if (deps.signal?.aborted) return run.interrupted();
    return job.kind === 'profile_changes' ? await copyChangeSet(job, run) : await copyFile(run);
  } catch (error) {
    // Destination errors outside a transfer (existence check, state records), or anything unforeseen: retry later.
    const reason = describeError(error);
    deps.logger.warn('export copy failed', { reason, retryable: true });
    return {
      status: 'failed',
      reason,
      retryable: true,
      apiRequests: run?.apiRequests ?? 0,
      downloads: run?.downloads ?? 0,
    };
  }
}

/** Audiences, profiles and log hours: asking again is harmless, so an expired `Location` is simply replaced. */
async function copyFile(run: CopyRun): Promise<CopyOutcome> {
  const { deps } = run;
  let reResolves = 0;
  for (;;) {
    if (deps.signal?.aborted) return run.interrupted();
    const outcome = await deps.source.resolve(run.job, { signal: deps.signal });
    run.apiRequests++;
    if (outcome.status === 'failed' && deps.signal?.aborted) return run.interrupted();
    if (outcome.status === 'not_ready') return { status: 'not_ready', apiRequests: run.apiRequests };
    if (outcome.status === 'throttled') {
      return { status: 'throttled', retryAfterMs: outcome.retryAfterMs, apiRequests: run.apiRequests };
    }
    if (outcome.status === 'failed') return run.failed(describeError(outcome.error), outcome.retryable);
    const result = await downloadWithRetries(run, outcome.location);
    if (result !== 'expired') return result;
    if (reResolves >= (deps.maxReResolves ?? 2))
      return run.failed('the file URL kept expiring before it could be read', true);
    reResolves++;
    deps.logger.info('location expired, resolving again', run.fields);
  }
}

/** `profile_changes`: every 302 consumes the change set, so its `Location` is claimed, saved, and never asked twice. */
async function copyChangeSet(job: ProfileChangesJob, run: CopyRun): Promise<CopyOutcome> {
  const { deps } = run;
  const stateKey = pendingChangeSetKey(job);
  const record = await readChangeSetRecord(deps.sink, stateKey);
  const now = run.clock.now();
  let location = record?.state === 'resolved' ? record.location : undefined;
  if (location) {
    deps.logger.info('resuming saved change set', run.fields);
  } else {
    const claim: ChangeSetRecord = {
      state: 'claimed',
      profileDbId: job.profileDbId,
      generatedAt: job.generatedAt,
      key: run.key,
      claimedAt: new Date(now).toISOString(),
    };
    if (record?.state === 'claimed') {
      if (now - Date.parse(record.claimedAt) < CLAIM_TTL_MS) {
        return run.failed('another run is requesting this change set right now', true);
      }
      const warning =
        'a previous run stopped while requesting this change set: Localytics may have consumed one that was never saved';
      run.warnings.push(warning);
      deps.logger.error('change set possibly lost', { ...run.fields, reason: warning });
      await deps.sink.writeText(stateKey, JSON.stringify(claim));
    } else if (!(await deps.sink.createText(stateKey, JSON.stringify(claim)))) {
      return run.failed('another run is requesting this change set right now', true);
    }
    // Another delivery of this job may have copied it (and removed its record) since our existence check.
    if (await deps.sink.exists(run.key)) {
      await deps.sink.delete(stateKey);
      return { status: 'present', key: run.key };
    }
    if (deps.signal?.aborted) {
      await deps.sink.delete(stateKey);
      return run.interrupted();
    }
    const outcome = await deps.source.resolve(job, { signal: deps.signal });
    run.apiRequests++;
    if (outcome.status === 'failed' && deps.signal?.aborted && !(outcome.error instanceof RequestInFlightError)) {
      // Stopped while waiting for the budget: nothing was asked, nothing consumed.
      await deps.sink.delete(stateKey);
      return run.interrupted();
    }
    if (outcome.status !== 'ready') {
      // Nothing was consumed (or we cannot know): release the claim so that the next attempt can ask.
      await deps.sink.delete(stateKey);
      if (outcome.status === 'not_ready') return { status: 'not_ready', apiRequests: run.apiRequests };
      if (outcome.status === 'throttled') {
        return { status: 'throttled', retryAfterMs: outcome.retryAfterMs, apiRequests: run.apiRequests };
      }
      if (outcome.error instanceof RequestInFlightError) {
        const reason = `the profile_changes request failed in flight (${describeError(outcome.error)}); Localytics may have consumed a change set that could not be saved`;
        deps.logger.error('change set possibly lost', { ...run.fields, reason });
        return run.failed(reason, false);
      }
      return run.failed(describeError(outcome.error), outcome.retryable);
    }
    location = outcome.location;
    try {
      await deps.sink.writeText(
        stateKey,
        JSON.stringify({ ...claim, state: 'resolved', location, resolvedAt: new Date(run.clock.now()).toISOString() }),
      );
    } catch (error) {
      // The change set is consumed and only this process knows its URL: copy it now or report it lost.
      const reason = describeError(error);
      deps.logger.error('could not save change set location', { ...run.fields, reason });
      const result = await downloadWithRetries(run, location);
      if (result !== 'expired' && result.status === 'copied') {
        await deps.sink.delete(stateKey).catch(() => undefined);
        return result;
      }
      return lose(run, stateKey, `its URL could not be saved (${reason}) and the copy failed`);
    }
  }
  const result = await downloadWithRetries(run, location as string);
  if (result === 'expired') {
    return lose(run, stateKey, 'its URL expired before the copy completed');
  }
  if (result.status === 'copied') {
    // The data is safe; a leftover record only makes a later run find the key present and skip it.
    await deps.sink
      .delete(stateKey)
      .catch((error: unknown) =>
        deps.logger.warn('could not delete change set record', { ...run.fields, reason: describeError(error) }),
      );
  }
  return result;
}

/** Report a consumed change set that cannot be copied: asking again would return the next one. */
async function lose(run: CopyRun, stateKey: string, why: string): Promise<CopyOutcome> {
  const { deps } = run;
  const lostKey = stateKey.replace('_state/profile_changes/', '_state/profile_changes_lost/');
  await deps.sink
    .writeText(lostKey, JSON.stringify({ key: run.key, lostAt: new Date(run.clock.now()).toISOString(), why }))
    .catch(() => undefined);
  await deps.sink.delete(stateKey).catch(() => undefined);
  const reason = `change set lost: ${why}; asking again would return the next change set`;
  deps.logger.error('change set lost', { ...run.fields, reason });
  return run.failed(reason, false);
}

/** Download one `Location` with retries; `'expired'` when the file host says the URL is no longer valid. */
async function downloadWithRetries(run: CopyRun, location: string): Promise<CopyOutcome | 'expired'> {
  const { deps } = run;
  const maxAttempts = deps.maxDownloadAttempts ?? 4;
  for (let attempt = 1; ; attempt++) {
    if (deps.signal?.aborted) return run.interrupted();
    try {
      run.downloads++;
      const result = await transfer(location, run.key, deps);
      if (result.malformedRows > 0) {
        run.warnings.push(`${result.malformedRows} malformed JSON line(s), copied as they are`);
        deps.logger.warn('malformed lines copied', { ...run.fields, malformedRows: result.malformedRows });
      }
      if (result.servedBytes === 0) {
        run.warnings.push('the file host served an empty file');
        deps.logger.warn('empty file copied', run.fields);
      }
      const expectedRows = run.job.kind === 'log_hour' ? undefined : run.job.resultsCount;
      if (expectedRows !== undefined && expectedRows !== result.rows) {
        run.warnings.push(`row count ${result.rows} differs from results_count ${expectedRows}`);
        deps.logger.warn('row count mismatch', { ...run.fields, rows: result.rows, resultsCount: expectedRows });
      }
      deps.logger.info('export copied', { ...run.fields, key: run.key, bytes: result.bytes, rows: result.rows });
      return {
        status: 'copied',
        key: run.key,
        bytes: result.bytes,
        servedBytes: result.servedBytes,
        rows: result.rows,
        malformedRows: result.malformedRows,
        warnings: run.warnings,
        apiRequests: run.apiRequests,
        downloads: run.downloads,
      };
    } catch (error) {
      if (deps.signal?.aborted) return run.interrupted();
      if (error instanceof PermanentJobError) return run.failed(describeError(error), false);
      if (error instanceof LocationExpiredError) return 'expired';
      if (attempt >= maxAttempts) return run.failed(describeError(error), true);
      const wait = backoffMs(attempt - 1, { random: deps.random });
      deps.logger.info('download failed, retrying same location', {
        ...run.fields,
        attempt,
        waitMs: wait,
        reason: describeError(error),
      });
      await run.clock.sleep(wait);
    }
  }
}

async function transfer(location: string, key: string, deps: CopyDependencies) {
  const file = await deps.source.download(location);
  let head: Buffer;
  try {
    head = await peekBytes(file.body, 2);
  } catch (error) {
    file.body.destroy();
    throw error;
  }
  const gzip = isGzipHead(head);
  const check = deps.checkJson ?? 'plain';
  const verifier = new VerifyingStream({
    expectedBytes: file.contentLength,
    gzip,
    checkJson: check === 'all' || (check === 'plain' && !gzip),
  });
  const output = new PassThrough();
  const stages: NodeJS.ReadWriteStream[] = gzip ? [verifier] : [verifier, createGzip({ chunkSize: 256 * 1024 })];
  const flowing = pipeline([file.body, ...stages, output] as [Readable, ...NodeJS.ReadWriteStream[]], {
    signal: deps.signal,
  });
  // Wait for both sides to settle, so that the sink has cleaned up (temp file, aborted upload) before we return.
  const [written, flowed] = await Promise.allSettled([
    deps.sink.write(key, output, {
      contentType: 'application/gzip',
      // Stored bytes are the served bytes for gzip content: their length is known before the first byte.
      contentLength: gzip ? file.contentLength : undefined,
      metadata: { 'served-bytes': String(file.contentLength ?? ''), 'served-gzip': String(gzip) },
    }),
    flowing,
  ]);
  if (written.status === 'rejected') {
    const sinkError = written.reason as unknown;
    // When the destination fails first the download only sees a "premature close": report the real cause.
    if (flowed.status === 'fulfilled' || isPrematureClose(flowed.reason) || !(sinkError instanceof SinkError)) {
      throw sinkError;
    }
  }
  if (flowed.status === 'rejected') {
    output.destroy();
    const error = flowed.reason as unknown;
    throw error instanceof Error && error.name === 'AbortError' ? new IntegrityError('download aborted') : error;
  }
  if (written.status === 'rejected') throw written.reason;
  return {
    bytes: written.value.bytes,
    servedBytes: verifier.servedBytes,
    rows: verifier.rows,
    malformedRows: verifier.malformedRows,
  };
}

function isPrematureClose(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

async function readChangeSetRecord(sink: ObjectSink, key: string): Promise<ChangeSetRecord | undefined> {
  const text = await sink.readText(key);
  if (text === undefined) return undefined;
  try {
    const record = JSON.parse(text) as ChangeSetRecord;
    if (record.state === 'resolved' && typeof record.location === 'string') return record;
    if (record.state === 'claimed' && typeof record.claimedAt === 'string') return record;
  } catch {
    // fall through
  }
  throw new SinkError(`change set record ${key} is unreadable; inspect it before syncing profile_changes again`);
}
