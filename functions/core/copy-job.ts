import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { backoffMs } from './backoff.js';
import { IntegrityError, LocationExpiredError, PermanentJobError } from './errors.js';
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
      readonly warnings: readonly string[];
      readonly apiRequests: number;
      readonly downloads: number;
    }
  | { readonly status: 'present'; readonly key: string }
  | { readonly status: 'not_ready'; readonly apiRequests: number }
  | { readonly status: 'throttled'; readonly retryAfterMs: number; readonly apiRequests: number }
  /** Stopped on purpose (the worker's deadline is near); nothing was written; run it again later. */
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
}

interface PendingChangeSet {
  readonly location: string;
  readonly key: string;
  readonly resolvedAt: string;
}

/**
 * Copy one export file to the destination: ask the API for its `Location`, stream the file to its deterministic key,
 * verify it on the way. Never throws for a job's own failures: every way it can end is a `CopyOutcome`.
 */
export async function copyJob(job: SyncJob, deps: CopyDependencies): Promise<CopyOutcome> {
  const clock = deps.clock ?? systemClock;
  const key = dataKey(job);
  const fields = jobFields(job);
  let apiRequests = 0;
  let downloads = 0;
  const failed = (reason: string, retryable: boolean): CopyOutcome => {
    deps.logger.warn('export copy failed', { ...fields, reason, retryable });
    return { status: 'failed', reason, retryable, apiRequests, downloads };
  };

  try {
    if ((deps.checkExisting ?? true) && (await deps.sink.exists(key))) return { status: 'present', key };

    let location: string | undefined;
    if (job.kind === 'profile_changes') location = await readPendingLocation(job, deps.sink);
    if (location) deps.logger.info('resuming saved change set', fields);

    const maxAttempts = deps.maxDownloadAttempts ?? 4;
    let reResolves = 0;
    let attempt = 0;
    for (;;) {
      if (deps.signal?.aborted) return { status: 'interrupted', apiRequests };
      if (!location) {
        const outcome = await deps.source.resolve(job);
        apiRequests++;
        if (outcome.status === 'not_ready') return { status: 'not_ready', apiRequests };
        if (outcome.status === 'throttled')
          return { status: 'throttled', retryAfterMs: outcome.retryAfterMs, apiRequests };
        if (outcome.status === 'failed') return failed(describeError(outcome.error), outcome.retryable);
        location = outcome.location;
        if (job.kind === 'profile_changes') {
          // Saved before the download: the change set is consumed now, and a later run must finish this one.
          await savePendingLocation(job, key, location, deps.sink).catch((error: unknown) =>
            deps.logger.error('could not save change set location', { ...fields, reason: describeError(error) }),
          );
        }
      }
      try {
        downloads++;
        const result = await transfer(location, key, deps);
        if (job.kind === 'profile_changes') await deps.sink.delete(pendingChangeSetKey(job));
        const warnings: string[] = [];
        const expectedRows = job.kind === 'log_hour' ? undefined : job.resultsCount;
        if (expectedRows !== undefined && expectedRows !== result.rows) {
          warnings.push(`row count ${result.rows} differs from results_count ${expectedRows}`);
          deps.logger.warn('row count mismatch', { ...fields, rows: result.rows, resultsCount: expectedRows });
        }
        deps.logger.info('export copied', { ...fields, key, bytes: result.bytes, rows: result.rows });
        return { status: 'copied', key, ...result, warnings, apiRequests, downloads };
      } catch (error) {
        if (deps.signal?.aborted) return { status: 'interrupted', apiRequests };
        if (error instanceof PermanentJobError) return failed(describeError(error), false);
        if (error instanceof LocationExpiredError) {
          if (job.kind === 'profile_changes') {
            await markChangeSetLost(job, deps.sink);
            deps.logger.error('change set lost', { ...fields, reason: describeError(error) });
            return failed(
              'the change set URL expired before its copy completed; asking again would return the next change set, so this one is lost',
              false,
            );
          }
          if (reResolves >= (deps.maxReResolves ?? 2)) return failed(describeError(error), true);
          reResolves++;
          deps.logger.info('location expired, resolving again', fields);
          location = undefined;
          continue;
        }
        attempt++;
        if (attempt >= maxAttempts) return failed(describeError(error), true);
        const wait = backoffMs(attempt - 1, { random: deps.random });
        deps.logger.info('download failed, retrying same location', {
          ...fields,
          attempt,
          waitMs: wait,
          reason: describeError(error),
        });
        await clock.sleep(wait);
      }
    }
  } catch (error) {
    // Destination errors outside a transfer (existence check, state records): retry later.
    return failed(describeError(error), true);
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
  const verifier = new VerifyingStream({ expectedBytes: file.contentLength, gzip });
  const output = new PassThrough();
  const stages: NodeJS.ReadWriteStream[] = gzip ? [verifier] : [verifier, createGzip()];
  const flowing = pipeline([file.body, ...stages, output] as [Readable, ...NodeJS.ReadWriteStream[]], {
    signal: deps.signal,
  });
  // Wait for both sides to settle, so that the sink has cleaned up (temp file, aborted upload) before we return.
  const [written, flowed] = await Promise.allSettled([
    deps.sink.write(key, output, {
      contentType: 'application/gzip',
      metadata: { 'served-bytes': String(file.contentLength ?? ''), 'served-gzip': String(gzip) },
    }),
    flowing,
  ]);
  if (flowed.status === 'rejected') {
    output.destroy();
    const error = flowed.reason as unknown;
    throw error instanceof Error && error.name === 'AbortError' ? new IntegrityError('download aborted') : error;
  }
  if (written.status === 'rejected') throw written.reason;
  return { bytes: written.value.bytes, servedBytes: verifier.servedBytes, rows: verifier.rows };
}

async function readPendingLocation(job: ProfileChangesJob, sink: ObjectSink): Promise<string | undefined> {
  const text = await sink.readText(pendingChangeSetKey(job));
  if (!text) return undefined;
  const record = JSON.parse(text) as Partial<PendingChangeSet>;
  return typeof record.location === 'string' ? record.location : undefined;
}

async function savePendingLocation(job: ProfileChangesJob, key: string, location: string, sink: ObjectSink) {
  const record: PendingChangeSet = { location, key, resolvedAt: new Date().toISOString() };
  await sink.writeText(pendingChangeSetKey(job), JSON.stringify(record));
}

async function markChangeSetLost(job: ProfileChangesJob, sink: ObjectSink) {
  const pendingKey = pendingChangeSetKey(job);
  const lostKey = pendingKey.replace('_state/profile_changes/', '_state/profile_changes_lost/');
  await sink.writeText(lostKey, JSON.stringify({ key: dataKey(job), lostAt: new Date().toISOString() }));
  await sink.delete(pendingKey);
}
