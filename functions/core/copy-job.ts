import { PassThrough, type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { backoffMs } from './backoff.js';
import { copyChangeSet } from './change-set.js';
import {
  type CopyDependencies,
  type CopyOutcome,
  CopyRun,
  DEFAULT_THROUGHPUT_FLOOR,
  type ThroughputFloor,
} from './copy-run.js';
import {
  IntegrityError,
  LocationExpiredError,
  ObjectExistsError,
  PermanentJobError,
  SinkError,
  ThrottledError,
  TransientError,
} from './errors.js';
import { pendingChangeSetKey, type SyncJob } from './jobs.js';
import { audienceJobs, profileJobs } from './planner.js';
import type { DownloadedFile, ExportListing, ExportSource, ListOptions } from './ports.js';
import { describeError } from './redact.js';
import { budgetRetryAfterMs, type Clock, systemClock } from './request-budget.js';
import { isGzipHead, peekBytes, VerifyingStream } from './verify-stream.js';

export type { CopyDependencies, CopyOutcome, JsonCheck, ThroughputFloor } from './copy-run.js';
export { DEFAULT_THROUGHPUT_FLOOR } from './copy-run.js';

/**
 * Copy one export file to the destination: ask the API for its `Location`, stream the file to its deterministic key,
 * verify it on the way. Never throws: every way a job can end is a `CopyOutcome`.
 */
export async function copyJob(job: SyncJob, deps: CopyDependencies): Promise<CopyOutcome> {
  let run: CopyRun | undefined;
  try {
    run = new CopyRun(job, deps);
    if ((deps.checkExisting ?? true) && (await deps.sink.exists(run.key, { signal: deps.signal }))) {
      // A change set copied by a run that stopped before removing its record: remove it now, or it would hold
      // back every later change set of that profile database.
      if (job.kind === 'profile_changes') await deps.sink.delete(pendingChangeSetKey(job)).catch(() => undefined);
      return { status: 'present', key: run.key };
    }
    if (deps.signal?.aborted) return run.interrupted();
    if (job.kind === 'profile_changes') {
      const copyRun = run;
      return await copyChangeSet(job, run, async (location) => {
        const result = await downloadWithRetries(copyRun, location);
        // Change sets are never confirmed against the list (see the test of issue 10 item 3): unreachable.
        if (result instanceof GenerationChanged) throw result;
        return result;
      });
    }
    return await copyFile(run);
  } catch (error) {
    // Stopped (a deadline, Ctrl-C) during a destination call: handed back, not a failure.
    if (deps.signal?.aborted) return { status: 'interrupted', apiRequests: run?.apiRequests ?? 0 };
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
  let refreshes = 0;
  for (;;) {
    if (deps.signal?.aborted) return run.interrupted();
    const outcome = await deps.source.resolve(run.job, { signal: deps.signal });
    // No budget slot in time: the API was not asked.
    if (!(outcome.status === 'throttled' && outcome.byBudget)) run.apiRequests++;
    if (outcome.status === 'failed' && deps.signal?.aborted) return run.interrupted();
    if (outcome.status === 'not_ready') return { status: 'not_ready', apiRequests: run.apiRequests };
    if (outcome.status === 'throttled') return { ...outcome, apiRequests: run.apiRequests };
    if (outcome.status === 'failed') return run.failed(describeError(outcome.error), outcome.retryable);
    const result = await downloadWithRetries(run, outcome.location);
    if (result instanceof GenerationChanged) {
      // Nothing was committed: copy the generation that is current now, under its own label.
      if (!result.current) {
        return run.failed('the export is no longer in the list: its file cannot be labelled with a generation', false);
      }
      if (refreshes >= 2) return run.failed('the export kept being regenerated while it was copied', true);
      refreshes++;
      deps.logger.info('export regenerated while copying, copying the new generation', {
        ...run.fields,
        generatedAt: new Date(result.current.generatedAt).toISOString(),
      });
      run.relabel(result.current);
      if (await deps.sink.exists(run.key, { signal: deps.signal })) return { status: 'present', key: run.key };
      continue;
    }
    if (result !== 'expired') return result;
    if (reResolves >= (deps.maxReResolves ?? 2))
      return run.failed('the file URL kept expiring before it could be read', true);
    reResolves++;
    deps.logger.info('location expired, resolving again', run.fields);
  }
}

/** The export was regenerated between the list its job came from and the end of the download. */
class GenerationChanged extends Error {
  override readonly name = 'GenerationChanged';
  constructor(readonly current: SnapshotJob | undefined) {
    super('the export was regenerated while it was copied');
  }
}

type SnapshotJob = Extract<SyncJob, { kind: 'audience' | 'profile' }>;

/**
 * Audiences and profile snapshots carry the generation of the list they were planned from, but the file is only
 * requested later (a queue, a retry). Once every byte is in and before anything is committed, the list is asked
 * again: if it still names the planned generation, no refresh happened before the file request, so the bytes are
 * that generation's; otherwise nothing is committed and the current generation is copied instead.
 */
async function confirmGeneration(run: CopyRun): Promise<void> {
  const job = run.job as SnapshotJob;
  const list = job.kind === 'audience' ? 'audiences' : 'profiles';
  let entries: ExportListing[];
  const confirmation = confirmationList(run.deps.source, list, run.deps.signal);
  try {
    entries = await confirmation.entries;
    if (confirmation.opened) run.apiRequests++;
  } catch (error) {
    // No budget slot in time: the list was never sent; the job goes back like one whose file request found none.
    const budgetWait = budgetRetryAfterMs(error);
    if (confirmation.opened && budgetWait === undefined) run.apiRequests++;
    throw new ConfirmationUnavailable(
      `the ${list} list could not confirm the generation: ${describeError(error)}`,
      budgetWait ?? (error instanceof ThrottledError ? error.retryAfterMs : undefined),
      budgetWait !== undefined,
    );
  }
  const listed = job.kind === 'audience' ? audienceJobs(entries, []) : profileJobs(entries, []);
  const current = listed.find((candidate): candidate is SnapshotJob =>
    candidate.kind === 'audience'
      ? job.kind === 'audience' &&
        candidate.audienceId === job.audienceId &&
        candidate.identifierType === job.identifierType
      : candidate.kind === 'profile' && job.kind === 'profile' && candidate.profileDbId === job.profileDbId,
  );
  if (current?.generatedAt !== job.generatedAt) throw new GenerationChanged(current);
}

/** The list that confirms a generation could not be read (throttled: come back after `retryAfterMs`). */
class ConfirmationUnavailable extends Error {
  override readonly name = 'ConfirmationUnavailable';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    /** No request budget slot before the deadline (nothing was sent), rather than a 429. */
    readonly byBudget = false,
  ) {
    super(message);
  }
}

/** Confirmation lists of each source not sent yet: downloads that end while one waits for its slot share it. */
const openConfirmations = new WeakMap<
  ExportSource,
  Map<string, { sent: boolean; entries: Promise<ExportListing[]> }>
>();

/**
 * The list that confirms downloads ended by now: one not sent yet is shared (its answer is at least as new as each
 * joiner's download), otherwise a new one. A 429 is not waited out: the job is requeued instead.
 */
function confirmationList(source: ExportSource, list: 'audiences' | 'profiles', signal?: AbortSignal) {
  let open = openConfirmations.get(source);
  if (!open) {
    open = new Map();
    openConfirmations.set(source, open);
  }
  const pending = open.get(list);
  if (pending && !pending.sent) return { opened: false, entries: pending.entries };
  const batch: { sent: boolean; entries: Promise<ExportListing[]> } = { sent: false, entries: Promise.resolve([]) };
  const options: ListOptions = {
    signal,
    failOnThrottle: true,
    beforeSend: () => {
      batch.sent = true;
    },
  };
  const perSource = open;
  batch.entries = (list === 'audiences' ? source.listAudiences(options) : source.listProfiles(options)).finally(() => {
    if (perSource.get(list) === batch) perSource.delete(list);
  });
  open.set(list, batch);
  return { opened: true, entries: batch.entries };
}

/** Download one `Location` with retries; `'expired'` when the file host says the URL is no longer valid. */
async function downloadWithRetries(
  run: CopyRun,
  location: string,
): Promise<CopyOutcome | 'expired' | GenerationChanged> {
  const { deps } = run;
  const maxAttempts = deps.maxDownloadAttempts ?? 4;
  const beforeCommit =
    run.job.kind === 'audience' || run.job.kind === 'profile' ? () => confirmGeneration(run) : undefined;
  for (let attempt = 1; ; attempt++) {
    if (deps.signal?.aborted) return run.interrupted();
    try {
      run.downloads++;
      const result = await transfer(location, run.key, deps, beforeCommit);
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
      if (error instanceof GenerationChanged) return error;
      // The bytes were fine; the list was not: no point downloading again now.
      if (error instanceof ConfirmationUnavailable) {
        if (error.retryAfterMs !== undefined) {
          return {
            status: 'throttled',
            retryAfterMs: error.retryAfterMs,
            byBudget: error.byBudget || undefined,
            apiRequests: run.apiRequests,
          };
        }
        return run.failed(error.message, true);
      }
      if (error instanceof PermanentJobError) return run.failed(describeError(error), false);
      if (error instanceof LocationExpiredError) return 'expired';
      // Another copy of this job (a duplicate message, another run) stored the key first: nothing of ours is left.
      if (error instanceof ObjectExistsError) return { status: 'present', key: run.key };
      if (attempt >= maxAttempts) return run.failed(describeError(error), true);
      const wait = backoffMs(attempt - 1, { random: deps.random });
      deps.logger.info('download failed, retrying same location', {
        ...run.fields,
        attempt,
        waitMs: wait,
        reason: describeError(error),
      });
      await run.clock.sleep(wait, deps.signal);
    }
  }
}

/**
 * Stream one download to `key`, verified on the way. `beforeCommit` runs once every byte is in and before the sink
 * may commit the object (the stream it reads does not end until it resolves); if it throws, nothing is written.
 */
async function transfer(location: string, key: string, deps: CopyDependencies, beforeCommit?: () => Promise<void>) {
  const file = await deps.source.download(location, { signal: deps.signal });
  let verifier: VerifyingStream | undefined;
  const stopWatching = watchThroughput(
    () => verifier?.servedBytes ?? 0,
    deps.minDownloadThroughput ?? DEFAULT_THROUGHPUT_FLOOR,
    deps.clock ?? systemClock,
    (error) => file.body.destroy(error),
  );
  try {
    return await verifiedTransfer(file, key, deps, beforeCommit, (created) => {
      verifier = created;
    });
  } finally {
    stopWatching();
  }
}

/** The body of `transfer`, handing over its verifier as soon as it exists (for the throughput floor). */
async function verifiedTransfer(
  file: DownloadedFile,
  key: string,
  deps: CopyDependencies,
  beforeCommit: (() => Promise<void>) | undefined,
  onVerifier: (verifier: VerifyingStream) => void,
) {
  let head: Buffer;
  // A body that sends nothing must not hold the job past its deadline: the signal ends the wait for the first bytes.
  const stopWaiting = () => file.body.destroy(new IntegrityError('download aborted'));
  deps.signal?.addEventListener('abort', stopWaiting, { once: true });
  try {
    if (deps.signal?.aborted) stopWaiting();
    head = await peekBytes(file.body, 2);
  } catch (error) {
    file.body.destroy();
    throw error;
  } finally {
    deps.signal?.removeEventListener('abort', stopWaiting);
  }
  const gzip = isGzipHead(head);
  const check = deps.checkJson ?? 'plain';
  const verifier = new VerifyingStream({
    expectedBytes: file.contentLength,
    gzip,
    checkJson: check === 'all' || (check === 'plain' && !gzip),
  });
  onVerifier(verifier);
  const output = new PassThrough();
  const stages: NodeJS.ReadWriteStream[] = gzip ? [verifier] : [verifier, createGzip({ chunkSize: 256 * 1024 })];
  if (beforeCommit) stages.push(commitGate(beforeCommit));
  const flowing = pipeline([file.body, ...stages, output] as [Readable, ...NodeJS.ReadWriteStream[]], {
    signal: deps.signal,
  });
  // Wait for both sides to settle, so that the sink has cleaned up (temp file, aborted upload) before we return.
  const [written, flowed] = await Promise.allSettled([
    deps.sink.write(key, output, {
      contentType: 'application/gzip',
      // Stored bytes are the served bytes for gzip content: their length is known before the first byte. Not when
      // the end waits for a confirmation (a list request, possibly a budget slot away): S3 gives up on a single PUT
      // whose body idles for ~20 s, while a multipart upload can wait.
      contentLength: gzip && !beforeCommit ? file.contentLength : undefined,
      metadata: { 'served-bytes': String(file.contentLength ?? ''), 'served-gzip': String(gzip) },
      signal: deps.signal,
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

/**
 * Check every few seconds that `served()` keeps up with the floor; `abandon` gets a `TransientError` once it does
 * not. Returns the function that stops watching (the body ended or failed).
 */
function watchThroughput(
  served: () => number,
  floor: ThroughputFloor,
  clock: Clock,
  abandon: (error: TransientError) => void,
): () => void {
  const started = clock.now();
  const timer = setInterval(
    () => {
      const elapsedMs = clock.now() - started;
      const bytes = served();
      if (elapsedMs < floor.graceMs || bytes >= (floor.bytesPerSecond * elapsedMs) / 1000) return;
      clearInterval(timer);
      abandon(
        new TransientError(
          `download too slow: ${bytes} bytes in ${Math.round(elapsedMs / 100) / 10} s, below the floor of ${floor.bytesPerSecond} bytes/s`,
        ),
      );
    },
    Math.max(20, Math.min(5_000, floor.graceMs / 4)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * A pass-through that holds its last chunk back until `check` resolves: the sink receives neither the end of the
 * data nor its last byte before then, so neither a multipart upload nor a single PUT of known length can complete.
 */
function commitGate(check: () => Promise<void>): Transform {
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const previous = held;
      held = chunk;
      callback(null, previous);
    },
    flush(callback) {
      check().then(
        () => callback(null, held),
        (error: unknown) => callback(error as Error),
      );
    },
  });
}

function isPrematureClose(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}
