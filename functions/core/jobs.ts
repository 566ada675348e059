import { compactTimestamp, formatDate, formatHour, hourParts } from './hours.js';
import type { IdentifierType } from './identifiers.js';

/** One raw log file: an app and a UTC hour. */
export interface LogHourJob {
  readonly kind: 'log_hour';
  readonly appUuid: string;
  /** Start of the hour, epoch ms (UTC). */
  readonly hour: number;
}

/** One generation of one audience export for one identifier type. */
export interface AudienceJob {
  readonly kind: 'audience';
  readonly audienceId: string;
  readonly identifierType: IdentifierType;
  /** `results_generated_at` of the list entry, epoch ms. */
  readonly generatedAt: number;
  readonly resultsCount?: number;
}

/** One generation of a full profile snapshot. */
export interface ProfileJob {
  readonly kind: 'profile';
  readonly profileDbId: string;
  readonly generatedAt: number;
  readonly resultsCount?: number;
}

/** One change set of a profile database. Requesting it consumes it at Localytics. */
export interface ProfileChangesJob {
  readonly kind: 'profile_changes';
  readonly profileDbId: string;
  readonly generatedAt: number;
  readonly resultsCount?: number;
}

export type SyncJob = LogHourJob | AudienceJob | ProfileJob | ProfileChangesJob;
export type JobKind = SyncJob['kind'];

/** Top-level folder of each job kind under the destination prefix. */
export const DATASET_FOLDERS = {
  log_hour: 'raw_logs',
  audience: 'audiences',
  profile: 'profiles',
  profile_changes: 'profile_changes',
} as const satisfies Record<JobKind, string>;

/** Destination key of a job's data object, relative to the destination prefix. Deterministic: the ledger. */
export function dataKey(job: SyncJob): string {
  switch (job.kind) {
    case 'log_hour': {
      const parts = hourParts(job.hour);
      const date = `${parts.year}-${parts.month}-${parts.day}`;
      return `${logHourPartition(job.appUuid, job.hour)}${job.appUuid}_${date}_${parts.hour}.json.gz`;
    }
    case 'audience':
      return (
        `${audiencePartition(job.audienceId, job.identifierType)}dt=${formatDate(job.generatedAt)}/` +
        `audience_${job.audienceId}_${job.identifierType}_${compactTimestamp(job.generatedAt)}.json.gz`
      );
    case 'profile':
    case 'profile_changes':
      return (
        `${DATASET_FOLDERS[job.kind]}/profiledb_id=${job.profileDbId}/dt=${formatDate(job.generatedAt)}/` +
        `${job.kind}_${job.profileDbId}_${compactTimestamp(job.generatedAt)}.json.gz`
      );
  }
}

export function logAppPrefix(appUuid: string): string {
  return `${DATASET_FOLDERS.log_hour}/app_uuid=${appUuid}/`;
}

export function logHourPartition(appUuid: string, hour: number): string {
  const parts = hourParts(hour);
  return `${logAppPrefix(appUuid)}dt=${parts.year}-${parts.month}-${parts.day}/hour=${parts.hour}/`;
}

export function audiencePartition(audienceId: string, identifierType: string): string {
  return `${DATASET_FOLDERS.audience}/audience_id=${audienceId}/identifier_type=${identifierType}/`;
}

/** Parse a raw-log data key back to its app and hour (used by listings). */
export function parseLogKey(key: string): { appUuid: string; hour: number } | undefined {
  const match = /^raw_logs\/app_uuid=([0-9a-f-]+)\/dt=(\d{4})-(\d{2})-(\d{2})\/hour=(\d{2})\/[^/]+\.json\.gz$/.exec(
    key,
  );
  if (!match) return undefined;
  const [appUuid, year, month, day, hour] = match.slice(1) as [string, string, string, string, string];
  return { appUuid, hour: Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour)) };
}

/** A stable, human-readable id for logs and reports. */
export function jobId(job: SyncJob): string {
  switch (job.kind) {
    case 'log_hour':
      return `log_hour/${job.appUuid}/${formatHour(job.hour)}`;
    case 'audience':
      return `audience/${job.audienceId}/${job.identifierType}/${compactTimestamp(job.generatedAt)}`;
    case 'profile':
    case 'profile_changes':
      return `${job.kind}/${job.profileDbId}/${compactTimestamp(job.generatedAt)}`;
  }
}

/** Structured log fields of a job. */
export function jobFields(job: SyncJob): Record<string, string> {
  switch (job.kind) {
    case 'log_hour':
      return { dataset: 'logs', app: job.appUuid, hour: formatHour(job.hour), jobId: jobId(job) };
    case 'audience':
      return {
        dataset: 'audiences',
        audienceId: job.audienceId,
        identifierType: job.identifierType,
        jobId: jobId(job),
      };
    case 'profile':
    case 'profile_changes':
      return { dataset: 'profiles', profileDbId: job.profileDbId, jobType: job.kind, jobId: jobId(job) };
  }
}

export const CHANGE_SET_STATE_PREFIX = '_state/profile_changes/';
/** Markers of change sets reported lost (consumed at Localytics, never saved). */
export const CHANGE_SET_LOST_PREFIX = '_state/profile_changes_lost/';

/** Where the `Location` of a consumed change set is kept until its copy is confirmed. Hidden from Athena (`_`). */
export function pendingChangeSetKey(job: ProfileChangesJob): string {
  return `${CHANGE_SET_STATE_PREFIX}profiledb_id=${job.profileDbId}/${compactTimestamp(job.generatedAt)}.json`;
}
