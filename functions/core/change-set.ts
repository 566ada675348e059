/**
 * `profile_changes`: every `302` consumes a change set at Localytics, so its request is claimed, its `Location`
 * saved, and it is never asked for twice. The state of one change set lives at `pendingChangeSetKey(job)`:
 *
 * - `requesting` — written (create-if-absent, or a compare-and-swap over a stale record) only after the request
 *   budget granted the slot and right before the request is sent, so that a claim never ages while its holder waits
 *   for the budget, and a holder that stops before that point leaves nothing to report. `staleAfter` is the
 *   holder's deadline (a Lambda's hard timeout; a CLI gives itself `LEASE_MS` and keeps to it): before it, others
 *   come back later; after it, one of them (conditional write) reports the change set possibly consumed and takes
 *   over.
 * - `resolved` — the `Location` is saved: any later run copies that URL and nobody asks again.
 *
 * A request whose answer we cannot trust once it was sent (5xx, timeout, reset, an unexpected status) is reported
 * as possibly consumed; one that never left this machine, a `429`, `401`, `403` or `404` consumed nothing and is
 * simply retried or failed.
 */
import { randomUUID } from 'node:crypto';
import type { CopyOutcome, CopyRun } from './copy-run.js';
import { AuthError, PermanentJobError, RequestNotSentError, SinkError } from './errors.js';
import { compactTimestamp } from './hours.js';
import {
  CHANGE_SET_LOST_PREFIX,
  CHANGE_SET_STATE_PREFIX,
  type ProfileChangesJob,
  pendingChangeSetKey,
} from './jobs.js';
import type { ObjectSink, ResolveOutcome } from './ports.js';
import { describeError } from './redact.js';

export interface ChangeSetRecord {
  /** `claimed` is the record of versions before 0.2, written before the request was sent: treated as `requesting`. */
  readonly state: 'requesting' | 'resolved' | 'claimed';
  readonly profileDbId: string;
  readonly generatedAt: number;
  readonly key: string;
  /** Random id of the run that wrote the record. */
  readonly holder?: string;
  readonly claimedAt: string;
  /** After this time the holder can no longer act on the record (absent on `claimed` records). */
  readonly staleAfter?: string;
  readonly location?: string;
  readonly resolvedAt?: string;
}

/**
 * How long a holder without a hard deadline (the CLI) owns a claim; it stops using it before then. It needs the
 * request's 30 s and saving the Location; a run killed meanwhile blocks the next one this long.
 */
export const LEASE_MS = 3 * 60_000;
/** No claim is honoured longer than this after it was taken (Lambda's 15-minute maximum), whatever it says. */
const MAX_LEASE_MS = 15 * 60_000;
/** Claims carry times of the writer's clock: this much skew between two machines is tolerated. */
const CLOCK_SKEW_MARGIN_MS = 60_000;
/** A `claimed` record of an earlier version is stale this long after it was written (that version's rule). */
const LEGACY_CLAIM_TTL_MS = 15 * 60_000;
/**
 * A change-set request is started only when its holder has this much time left: the request's own timeout (30 s)
 * plus saving the `Location`, so that a claim is never abandoned mid-request by its own deadline.
 */
export const REQUEST_ALLOWANCE_MS = 45_000;
/** A claim's holder: the random UUID this code writes (`randomUUID`). */
const HOLDER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Once sent, a change-set request is let run this long past a soft stop (Ctrl-C, the copier's deadline). */
const DEFAULT_IN_FLIGHT_GRACE_MS = 1_500;

/** The change set was copied by another run meanwhile. */
class AlreadyPresent extends Error {
  override readonly name = 'AlreadyPresent';
}

/** Another run holds (or just took) the claim. */
class ClaimHeld extends Error {
  override readonly name = 'ClaimHeld';
}

export type Download = (location: string) => Promise<CopyOutcome | 'expired'>;

/** Copy one change set: resume a saved `Location`, or claim, request, save and copy a new one. */
export async function copyChangeSet(job: ProfileChangesJob, run: CopyRun, download: Download): Promise<CopyOutcome> {
  const { deps, clock } = run;
  const stateKey = pendingChangeSetKey(job);
  const current = await readChangeSetRecord(deps.sink, stateKey, deps.signal);
  if (current?.record.state === 'resolved') {
    deps.logger.info('resuming saved change set', run.fields);
    return finish(run, stateKey, current.record.location as string, current.version, download);
  }
  const now = clock.now();
  if (current && now < staleAfter(current.record)) {
    return run.deferred(staleAfter(current.record) - now, 'another run is requesting this change set right now');
  }
  const leaseEnd = (claimTime: number) => deps.holderDeadline ?? claimTime + LEASE_MS;
  const tooLate = () => {
    const time = clock.now();
    return leaseEnd(time) - time < REQUEST_ALLOWANCE_MS;
  };
  if (tooLate() || deps.signal?.aborted) return run.interrupted();

  const holder = randomUUID();
  let claim: { record: ChangeSetRecord; version: string } | undefined;
  // The claim is taken here, after the budget's slot and right before the request leaves.
  const beforeSend = async () => {
    if (tooLate() || deps.signal?.aborted) {
      throw new RequestNotSentError('not enough time left to request a change set safely');
    }
    if (await deps.sink.exists(run.key, { signal: deps.signal })) throw new AlreadyPresent();
    const claimTime = clock.now();
    const record: ChangeSetRecord = {
      state: 'requesting',
      profileDbId: job.profileDbId,
      generatedAt: job.generatedAt,
      key: run.key,
      holder,
      claimedAt: new Date(claimTime).toISOString(),
      staleAfter: new Date(leaseEnd(claimTime)).toISOString(),
    };
    const text = JSON.stringify(record);
    if (current) {
      // Report the stale holder's request first (idempotent: every taker writes the same marker), then take over:
      // of several runs that found the same stale record, only one replaces it.
      await reportStaleClaim(run, stateKey, current.record);
    }
    const written = current
      ? await deps.sink.replaceText(stateKey, text, current.version, { signal: deps.signal })
      : await deps.sink.createText(stateKey, text, { signal: deps.signal });
    const version = written ?? (await ownWrite(deps.sink, stateKey, text, deps.signal));
    if (!version) throw new ClaimHeld();
    claim = { record, version };
    // Another run may have copied this change set (and removed its record) between our check and our claim: asking
    // now would consume the next change set and write it over that one.
    let copiedMeanwhile: boolean;
    try {
      copiedMeanwhile = await deps.sink.exists(run.key, { signal: deps.signal });
    } catch (error) {
      // Nothing was sent, nothing consumed: the claim is released and the job retried, no loss reported.
      throw new RequestNotSentError(`could not check the destination after claiming: ${describeError(error)}`, {
        cause: error,
      });
    }
    if (copiedMeanwhile) {
      await removeOwnRecord(run, stateKey, version);
      claim = undefined;
      throw new AlreadyPresent();
    }
    // Stopped while the claim was written: nothing is sent, the claim is released.
    if (tooLate() || deps.signal?.aborted) throw new RequestNotSentError('stopped before the request was sent');
    inFlight.leaseStarted(leaseEnd(claimTime) - claimTime);
  };
  const inFlight = inFlightSignal(deps.signal, deps.inFlightGraceMs);
  let outcome: ResolveOutcome;
  try {
    outcome = await deps.source.resolve(job, { signal: deps.signal, inFlightSignal: inFlight.signal, beforeSend });
  } catch (error) {
    // The port answers failures as values; one that throws anyway is a failure too, judged below like any other
    // (once the claim was written: possibly consumed, reported now rather than when the claim goes stale).
    outcome = { status: 'failed', error: error instanceof Error ? error : new Error(String(error)), retryable: false };
  } finally {
    inFlight.dispose();
  }
  // Counted once the claim was written: the request left (or was about to leave) this machine.
  if (claim && !(outcome.status === 'throttled' && outcome.byBudget)) run.apiRequests++;
  if (outcome.status === 'ready') {
    return saveAndCopy(
      run,
      stateKey,
      claim as { record: ChangeSetRecord; version: string },
      outcome.location,
      download,
    );
  }
  // Whatever happened, a claim we took and a request that consumed nothing must not block the next attempt.
  const release = async () => {
    if (claim) await removeOwnRecord(run, stateKey, claim.version);
  };
  if (outcome.status === 'throttled') {
    await release();
    return { ...outcome, apiRequests: run.apiRequests };
  }
  if (outcome.status === 'not_ready') {
    await release();
    return { status: 'not_ready', apiRequests: run.apiRequests };
  }
  const error = outcome.error;
  if (error instanceof AlreadyPresent) return { status: 'present', key: run.key };
  // Look again in a minute: by then the other run has saved its Location, or its claim shows when it goes stale.
  if (error instanceof ClaimHeld) return run.deferred(60_000, 'another run took this change set right now');
  if (!claim || error instanceof RequestNotSentError) {
    // Nothing left this machine (no slot before the deadline, DNS, refused, or the claim could not be written).
    await release();
    // Out of time is a hand-back (requeued at once), not a failure that counts toward the dead-letter queue.
    if (deps.signal?.aborted || tooLate()) return run.interrupted();
    return run.failed(describeError(error), true);
  }
  if (error instanceof AuthError || error instanceof PermanentJobError) {
    // 401/403/404: refused before anything was consumed.
    await release();
    return run.failed(describeError(error), false);
  }
  return lose(
    run,
    stateKey,
    holder,
    `the profile_changes request failed after it was sent (${describeError(error)}); Localytics may have consumed a change set that could not be saved`,
    { version: claim.version },
  );
}

/** Save the consumed change set's `Location` (so that any later run resumes it), then copy it. */
async function saveAndCopy(
  run: CopyRun,
  stateKey: string,
  claim: { record: ChangeSetRecord; version: string },
  location: string,
  download: Download,
): Promise<CopyOutcome> {
  const { deps, clock } = run;
  const resolved: ChangeSetRecord = {
    ...claim.record,
    state: 'resolved',
    location,
    resolvedAt: new Date(clock.now()).toISOString(),
  };
  const text = JSON.stringify(resolved);
  let saved: string | undefined;
  let reason: string | undefined;
  try {
    saved = await settling(run, async (signal) => {
      return (
        (await deps.sink.replaceText(stateKey, text, claim.version, { signal })) ??
        (await ownWrite(deps.sink, stateKey, text, signal))
      );
    });
  } catch (error) {
    reason = describeError(error);
  }
  const holder = claim.record.holder ?? 'unknown';
  if (!saved && reason === undefined) {
    // Another run took the claim over (ours outlived its lease): it asks for its own change set and writes this key,
    // so ours must not be copied there, and its record is not ours to delete. Reported.
    return lose(run, stateKey, holder, 'another run took its claim over before its URL was saved', {
      keepRecord: true,
    });
  }
  if (!saved) {
    // The change set is consumed and only this process knows its URL: copy it now or report it lost.
    deps.logger.error('could not save change set location', { ...run.fields, reason });
    const result = await download(location);
    if (result !== 'expired' && result.status === 'copied') {
      await removeOwnRecord(run, stateKey, claim.version);
      return result;
    }
    return lose(run, stateKey, holder, `its URL could not be saved (${reason}) and the copy failed`, {
      version: claim.version,
    });
  }
  return finish(run, stateKey, location, saved, download);
}

/** Copy a saved `Location`; the record (`version`, the one this run read or wrote) goes once the data is safe. */
async function finish(
  run: CopyRun,
  stateKey: string,
  location: string,
  version: string,
  download: Download,
): Promise<CopyOutcome> {
  const { deps } = run;
  const result = await download(location);
  if (result === 'expired') {
    const record = await readChangeSetRecord(deps.sink, stateKey).catch(() => undefined);
    return lose(run, stateKey, record?.record.holder ?? 'unknown', 'its URL expired before the copy completed', {
      version,
    });
  }
  // The data is safe; a leftover record only makes a later run find the key present and skip it.
  if (result.status === 'copied') await removeOwnRecord(run, stateKey, version);
  return result;
}

/**
 * Delete the change-set record only if it is still the version this run holds (S3 `If-Match`): a holder that
 * outlived its claim must not delete the claim another run took over meanwhile (a third run would then claim again).
 * Best effort: a record left behind is found stale, or its key present, by a later run.
 */
async function removeOwnRecord(run: CopyRun, stateKey: string, version: string): Promise<void> {
  await settling(run, (signal) => run.deps.sink.deleteIfUnchanged(stateKey, version, { signal })).catch(
    (error: unknown) =>
      run.deps.logger.warn('could not delete change set record', { ...run.fields, reason: describeError(error) }),
  );
}

/**
 * Calls made once the request may have been sent (saving its URL, removing or reporting its claim): a soft stop
 * (Ctrl-C, the copier's deadline) lets them finish for the same grace as the request in flight.
 */
async function settling<T>(run: CopyRun, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const grace = inFlightSignal(run.deps.signal, run.deps.inFlightGraceMs);
  try {
    return await work(grace.signal);
  } finally {
    grace.dispose();
  }
}

/** The marker of a change set reported lost: one per claim, so that every loss is kept. */
export function lostChangeSetKey(stateKey: string, holder: string): string {
  const name = stateKey.slice(CHANGE_SET_STATE_PREFIX.length).replace(/\.json$/, '');
  return `${CHANGE_SET_LOST_PREFIX}${name}.${holder}.json`;
}

async function writeLostMarker(run: CopyRun, stateKey: string, holder: string, why: string): Promise<void> {
  await settling(run, (signal) =>
    run.deps.sink.writeText(
      lostChangeSetKey(stateKey, holder),
      JSON.stringify({ key: run.key, lostAt: new Date(run.clock.now()).toISOString(), why }),
      { signal },
    ),
  ).catch((error: unknown) =>
    run.deps.logger.error('could not write lost change set marker', { ...run.fields, reason: describeError(error) }),
  );
}

/** Report a consumed change set that cannot be copied: asking again would return the next one. */
async function lose(
  run: CopyRun,
  stateKey: string,
  holder: string,
  why: string,
  options: { keepRecord?: boolean; version?: string } = {},
): Promise<CopyOutcome> {
  const { deps } = run;
  await writeLostMarker(run, stateKey, holder, why);
  // Only the record this run holds (a claim another run took over stays).
  if (!options.keepRecord && options.version) await removeOwnRecord(run, stateKey, options.version);
  const reason = `change set lost: ${why}; asking again would return the next change set`;
  deps.logger.error('change set lost', { ...run.fields, reason });
  return run.failed(reason, false);
}

/** A stale `requesting` record: its holder sent the request (or was about to) and never saved a `Location`. */
async function reportStaleClaim(run: CopyRun, stateKey: string, record: ChangeSetRecord): Promise<void> {
  const why =
    'a previous run stopped after requesting this change set and before saving it: Localytics may have consumed one that was never saved';
  run.warnings.push(why);
  run.deps.logger.error('change set possibly lost', { ...run.fields, reason: why });
  const holder = record.holder ?? compactTimestamp(Date.parse(record.claimedAt));
  await writeLostMarker(run, stateKey, holder, why);
}

/**
 * When a claim's holder can no longer act, by the reader's clock. Times come from the writer's clock: a margin
 * covers the skew between two machines, and no claim is honoured for longer than a lease from its own claim time
 * (a writer's clock far ahead must not block a profile database for that long).
 */
function staleAfter(record: ChangeSetRecord): number {
  const claimedAt = Date.parse(record.claimedAt);
  const until = record.staleAfter ? Date.parse(record.staleAfter) : claimedAt + LEGACY_CLAIM_TTL_MS;
  return Math.min(until, claimedAt + MAX_LEASE_MS) + CLOCK_SKEW_MARGIN_MS;
}

/**
 * A conditional write that answered "condition failed" may have been our own write, retried by the SDK after its
 * answer was lost: if the record now holds exactly what we wrote, it is ours.
 */
async function ownWrite(
  sink: ObjectSink,
  key: string,
  text: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const stored = await sink.readVersioned(key, { signal });
  return stored?.text === text ? stored.version : undefined;
}

/**
 * The signal that may abort a change-set request once sent: the holder's lease running out (from when the claim
 * is taken), or a soft stop followed by `graceMs` (a sent request is worth letting finish: aborting it may lose the
 * change set).
 */
function inFlightSignal(soft: AbortSignal | undefined, graceMs = DEFAULT_IN_FLIGHT_GRACE_MS) {
  const controller = new AbortController();
  let lease: NodeJS.Timeout | undefined;
  let grace: NodeJS.Timeout | undefined;
  const onSoft = () => {
    grace = setTimeout(() => controller.abort(new Error('stopped')), graceMs);
  };
  if (soft?.aborted) onSoft();
  else soft?.addEventListener('abort', onSoft, { once: true });
  return {
    signal: controller.signal,
    leaseStarted(leaseMs: number) {
      lease = setTimeout(() => controller.abort(new Error('change-set lease ended')), Math.max(0, leaseMs - 5_000));
    },
    dispose() {
      if (lease) clearTimeout(lease);
      if (grace) clearTimeout(grace);
      soft?.removeEventListener('abort', onSoft);
    },
  };
}

async function readChangeSetRecord(
  sink: ObjectSink,
  key: string,
  signal?: AbortSignal,
): Promise<{ record: ChangeSetRecord; version: string } | undefined> {
  const stored = await sink.readVersioned(key, { signal });
  if (stored === undefined) return undefined;
  try {
    const record = JSON.parse(stored.text) as ChangeSetRecord;
    // The holder becomes part of a marker's key: only what this code writes (absent on records before 0.2).
    const valid =
      (record.holder === undefined || (typeof record.holder === 'string' && HOLDER.test(record.holder))) &&
      ((record.state === 'resolved' && typeof record.location === 'string') ||
        ((record.state === 'requesting' || record.state === 'claimed') &&
          typeof record.claimedAt === 'string' &&
          Number.isFinite(staleAfter(record))));
    if (valid) return { record, version: stored.version };
  } catch {
    // fall through
  }
  throw new SinkError(`change set record ${key} is unreadable; inspect it before syncing profile_changes again`);
}
