import { type ExportConcern, type WatchedList, watchExports } from './export-watch.js';
import { formatDate, hoursBetween, LOG_RETENTION_MS, parseCompactTimestamp } from './hours.js';
import { type Dataset, isIdentifierType, isPositiveIntegerId } from './identifiers.js';
import {
  CHANGE_SET_STATE_PREFIX,
  dataKey,
  type LogHourJob,
  logAppPrefix,
  type ProfileChangesJob,
  parseLogKey,
  pendingChangeSetKey,
  type SyncJob,
} from './jobs.js';
import type { ExportListing, ExportSource, ListOptions, Logger, ObjectSink } from './ports.js';
import { describeError } from './redact.js';

export interface PlanRequest {
  readonly datasets: ReadonlySet<Dataset>;
  /** App IDs whose raw logs are wanted. */
  readonly apps: readonly string[];
  /** First hour (inclusive), epoch ms. */
  readonly from: number;
  /** Last hour (exclusive), epoch ms. */
  readonly to: number;
  readonly now: number;
  /** Stops planning (Ctrl-C): lists fail with their reason, no more apps are listed. */
  readonly signal?: AbortSignal;
  /** Stops only the lists' retries (a Lambda's deadline for them): planning the log hours goes on. */
  readonly listSignal?: AbortSignal;
  /** Most time one list may take with its retries (a throttled list must not use up a planner's run). */
  readonly listTimeLimitMs?: number;
  /** An audience or profile export whose newest generation is older than this is reported. Default 48. */
  readonly staleExportHours?: number;
  /** A dry run: read the lists and the destination, write and remove nothing (not even `_state/` records). */
  readonly readOnly?: boolean;
}

export interface SkippedExport {
  readonly what: string;
  readonly reason: string;
}

export interface Plan {
  /** Jobs to run: audiences and profiles first, then log hours oldest first (they are deleted after 30 days). */
  readonly jobs: SyncJob[];
  /** Keys already at the destination: the destination is the ledger. */
  readonly present: { readonly logs: number; readonly audiences: number; readonly profiles: number };
  /** Log hours older than Localytics' 30-day retention that are not at the destination: permanent gaps. */
  readonly beyondRetention: { readonly appUuid: string; readonly hour: number }[];
  /** List entries that cannot be copied (no results yet, unknown type, unsafe id). */
  readonly skipped: SkippedExport[];
  /** Lists that could not be read: their datasets are not synced this run; the others are. */
  readonly listFailures: { readonly endpoint: string; readonly reason: string }[];
  /** Per app, the newest log hour present at the destination within the window (absent: none). */
  readonly newestLogHour: Map<string, number>;
  /** Audience and profile exports that vanished from their list or stopped being refreshed. */
  readonly exportConcerns: ExportConcern[];
}

export interface PlanDependencies {
  readonly source: ExportSource;
  readonly sink: ObjectSink;
  readonly logger: Logger;
}

/** Decide what to copy: list exports, compute log hours, skip what the destination already holds. */
export async function planSync(request: PlanRequest, deps: PlanDependencies): Promise<Plan> {
  const plan: Plan = {
    jobs: [],
    present: { logs: 0, audiences: 0, profiles: 0 },
    beyondRetention: [],
    skipped: [],
    listFailures: [],
    newestLogHour: new Map(),
    exportConcerns: [],
  };
  const watched = new Map<WatchedList, SyncJob[]>();
  const present = plan.present as { logs: number; audiences: number; profiles: number };
  if (request.datasets.has('audiences')) {
    const entries = await listSafely('/v1/exports/audiences', (o) => deps.source.listAudiences(o), plan, request);
    const listed = audienceJobs(entries, plan.skipped);
    if (!plan.listFailures.length) watched.set('audiences', listed);
    for (const job of listed) {
      if (await deps.sink.exists(dataKey(job))) present.audiences++;
      else plan.jobs.push(job);
    }
  }
  if (request.datasets.has('profiles')) {
    // Change sets consumed by an earlier run and not saved yet come first, and block a new request for their
    // profile database: asking again would consume the next change set.
    const resumed: ProfileChangesJob[] = [];
    for (const job of await savedChangeSets(deps.sink)) {
      // A record whose change set is already copied is a leftover (copyJob removes it); it blocks nothing.
      if (await deps.sink.exists(dataKey(job))) {
        present.profiles++;
        if (!request.readOnly) await deps.sink.delete(pendingChangeSetKey(job)).catch(() => undefined);
      } else {
        resumed.push(job);
        plan.jobs.push(job);
      }
    }
    const blocked = new Set(resumed.map((job) => job.profileDbId));
    const failuresBefore = plan.listFailures.length;
    const listed = await listSafely('/v1/exports/profiles', (o) => deps.source.listProfiles(o), plan, request);
    const profileExports = profileJobs(listed, plan.skipped);
    if (plan.listFailures.length === failuresBefore) watched.set('profiles', profileExports);
    for (const job of profileExports) {
      if (job.kind === 'profile_changes' && blocked.has(job.profileDbId)) {
        if (!resumed.some((saved) => saved.generatedAt === job.generatedAt)) {
          plan.skipped.push({
            what: `profile_changes ${job.profileDbId}`,
            reason: 'an earlier change set is still being saved; the next run asks for the new one',
          });
        }
        continue;
      }
      if (await deps.sink.exists(dataKey(job))) present.profiles++;
      else plan.jobs.push(job);
    }
  }
  if (request.datasets.has('logs')) {
    const retentionStart = request.now - LOG_RETENTION_MS;
    const logJobs: LogHourJob[] = [];
    // Apps not listed by the deadline are left to the next run (the listings done form a prefix of the apps).
    const listed = await listAppsConcurrently(request.apps, request.signal, (appUuid) =>
      presentLogHours(deps.sink, appUuid, request.from, request.to),
    );
    for (const [index, appUuid] of request.apps.entries()) {
      const have = listed[index];
      if (have === undefined) break;
      if (have.size > 0) plan.newestLogHour.set(appUuid, Math.max(...have));
      for (const hour of hoursBetween(request.from, request.to)) {
        if (have.has(hour)) present.logs++;
        else if (hour < retentionStart) plan.beyondRetention.push({ appUuid, hour });
        else logJobs.push({ kind: 'log_hour', appUuid, hour });
      }
    }
    logJobs.sort((a, b) => a.hour - b.hour);
    // Not push(...logJobs): 1,000 apps × 720 hours overflow the call stack as arguments.
    for (const job of logJobs) plan.jobs.push(job);
  }
  if (watched.size > 0) {
    const staleAfterHours = request.staleExportHours ?? 48;
    const record = !request.readOnly;
    plan.exportConcerns.push(...(await watchExports(watched, deps, request.now, staleAfterHours, { record })));
  }
  for (const skipped of plan.skipped) deps.logger.warn('export skipped', { ...skipped });
  return plan;
}

/**
 * A failing list (no access, HTML page, still throttled at its time limit or the deadline) is reported and leaves
 * the other datasets alone.
 */
async function listSafely(
  endpoint: string,
  list: (options: ListOptions) => Promise<ExportListing[]>,
  plan: Plan,
  request: PlanRequest,
): Promise<ExportListing[]> {
  const limits = [
    request.signal,
    request.listSignal,
    request.listTimeLimitMs ? AbortSignal.timeout(Math.floor(request.listTimeLimitMs)) : undefined,
  ];
  const signals = limits.filter((signal): signal is AbortSignal => signal !== undefined);
  try {
    return await list({ signal: signals.length > 0 ? AbortSignal.any(signals) : undefined });
  } catch (error) {
    plan.listFailures.push({ endpoint, reason: describeError(error) });
    return [];
  }
}

/** Change sets whose records wait under `_state/profile_changes/`, as jobs that resume them. */
async function savedChangeSets(sink: ObjectSink): Promise<ProfileChangesJob[]> {
  const jobs: ProfileChangesJob[] = [];
  for await (const object of sink.list(CHANGE_SET_STATE_PREFIX)) {
    const match = /profiledb_id=(\d+)\/(\d{8}T\d{6}Z)\.json$/.exec(object.key);
    if (!match) continue;
    const [, profileDbId, stamp] = match as unknown as [string, string, string];
    const generatedAt = parseCompactTimestamp(stamp);
    jobs.push({ kind: 'profile_changes', profileDbId, generatedAt });
  }
  return jobs;
}

/** Listings of the destination at once: 1,000 apps must list well within the planner's timeout. */
const LIST_CONCURRENCY = 8;

/** `list` for every app, `LIST_CONCURRENCY` at a time, none started after `signal`; results in the apps' order. */
async function listAppsConcurrently<T>(
  apps: readonly string[],
  signal: AbortSignal | undefined,
  list: (appUuid: string) => Promise<T>,
): Promise<(T | undefined)[]> {
  const results: (T | undefined)[] = new Array(apps.length);
  let next = 0;
  const worker = async () => {
    while (next < apps.length && !signal?.aborted) {
      const index = next++;
      results[index] = await list(apps[index] as string);
    }
  };
  await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, apps.length) }, worker));
  return results;
}

/** Hours of one app present at the destination within [from, to), from one listing (no per-key requests). */
export async function presentLogHours(sink: ObjectSink, appUuid: string, from: number, to: number) {
  const prefix = logAppPrefix(appUuid);
  const lastDate = formatDate(to - 1);
  const hours = new Set<number>();
  // Keys sort by date then hour: start the listing at the window and stop after it.
  for await (const object of sink.list(prefix, { startAfter: `${prefix}dt=${formatDate(from)}` })) {
    const parsed = parseLogKey(object.key);
    if (!parsed) continue;
    if (formatDate(parsed.hour) > lastDate) break;
    if (parsed.hour >= from && parsed.hour < to) hours.add(parsed.hour);
  }
  return hours;
}

/** Audience jobs of a list; entries that cannot be jobs are added to `skipped` with their reason. */
export function audienceJobs(entries: ExportListing[], skipped: SkippedExport[]): SyncJob[] {
  const jobs: SyncJob[] = [];
  for (const entry of entries) {
    const what = `audience ${entry.sourceId}/${entry.jobType}`;
    if (!/^audiences?$/.test(entry.sourceType)) {
      skipped.push({ what, reason: `unexpected source_type "${entry.sourceType}" in the audience list` });
    } else if (!isPositiveIntegerId(entry.sourceId)) {
      skipped.push({ what: 'audience', reason: `source_id "${entry.sourceId}" is not a positive integer` });
    } else if (!isIdentifierType(entry.jobType)) {
      skipped.push({ what, reason: `unknown identifier type "${entry.jobType}"` });
    } else if (entry.resultsGeneratedAt === undefined) {
      skipped.push({ what, reason: 'no results generated yet' });
    } else {
      jobs.push({
        kind: 'audience',
        audienceId: entry.sourceId,
        identifierType: entry.jobType,
        generatedAt: entry.resultsGeneratedAt,
        resultsCount: entry.resultsCount,
      });
    }
  }
  return jobs;
}

/** Profile and change-set jobs of a list; entries that cannot be jobs are added to `skipped`. */
export function profileJobs(entries: ExportListing[], skipped: SkippedExport[]): SyncJob[] {
  const jobs: SyncJob[] = [];
  for (const entry of entries) {
    const what = `profile ${entry.sourceId}/${entry.jobType}`;
    if (!/^profiles?$/.test(entry.sourceType)) {
      skipped.push({ what, reason: `unexpected source_type "${entry.sourceType}" in the profile list` });
    } else if (!isPositiveIntegerId(entry.sourceId)) {
      skipped.push({ what: 'profile', reason: `source_id "${entry.sourceId}" is not a positive integer` });
    } else if (entry.jobType !== 'profile' && entry.jobType !== 'profile_changes') {
      skipped.push({ what, reason: `unknown job type "${entry.jobType}"` });
    } else if (entry.resultsGeneratedAt === undefined) {
      skipped.push({ what, reason: 'no results generated yet' });
    } else {
      jobs.push({
        kind: entry.jobType,
        profileDbId: entry.sourceId,
        generatedAt: entry.resultsGeneratedAt,
        resultsCount: entry.resultsCount,
      });
    }
  }
  return jobs;
}
