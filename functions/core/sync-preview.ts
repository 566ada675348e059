import { formatHour, HOUR_MS } from './hours.js';
import { jobId } from './jobs.js';
import type { Plan } from './planner.js';

/** What a `sync` of the same window would do, from its plan: made with the list requests only. */
export interface SyncPreview {
  readonly destination: string;
  readonly window: { readonly from: string; readonly to: string };
  /** Files the sync would copy, per dataset (`profileChanges` includes change sets saved by an earlier run). */
  readonly files: {
    readonly logs: number;
    readonly audiences: number;
    readonly profiles: number;
    readonly profileChanges: number;
  };
  /** Files already at the destination. */
  readonly present: { readonly logs: number; readonly audiences: number; readonly profiles: number };
  /** Log hours older than Localytics' 30-day retention and missing: no request can bring them back. */
  readonly beyondRetention: number;
  readonly apiRequests: {
    /** The list requests this preview made (a sync makes them again). */
    readonly lists: number;
    /** One per file to copy. */
    readonly files: number;
    /** At most one per audience or profile file: the list asked again before the file is committed (shared). */
    readonly confirmations: number;
    readonly total: number;
  };
  /** API requests per minute the floor is computed at (`--rate`). */
  readonly rate: number;
  /** The least time the API requests take at `rate`: requests ÷ rate. Downloads do not count. */
  readonly floorMs: number;
  /** Per app, the log hours to copy as ranges `[from, to)` (UTC hours, end exclusive). */
  readonly logWindows: readonly {
    readonly app: string;
    readonly hours: number;
    readonly ranges: readonly { readonly from: string; readonly to: string }[];
  }[];
  /** The audience, profile and change-set files to copy, by job id. */
  readonly exports: readonly string[];
  readonly skipped: Plan['skipped'];
  readonly listFailures: Plan['listFailures'];
  readonly warnings: readonly string[];
}

export interface PreviewRequest {
  readonly destination: string;
  readonly from: number;
  readonly to: number;
  readonly rate: number;
  /** List requests made to build the plan. */
  readonly listRequests: number;
}

/** The plan of a dry run, counted: files, requests and the floor time at the rate, and the windows of log hours. */
export function previewSync(plan: Plan, request: PreviewRequest): SyncPreview {
  const files = { logs: 0, audiences: 0, profiles: 0, profileChanges: 0 };
  const hoursOfApp = new Map<string, number[]>();
  const exports: string[] = [];
  for (const job of plan.jobs) {
    switch (job.kind) {
      case 'log_hour': {
        files.logs++;
        const hours = hoursOfApp.get(job.appUuid) ?? [];
        hours.push(job.hour);
        hoursOfApp.set(job.appUuid, hours);
        break;
      }
      case 'audience':
        files.audiences++;
        exports.push(jobId(job));
        break;
      case 'profile':
        files.profiles++;
        exports.push(jobId(job));
        break;
      case 'profile_changes':
        files.profileChanges++;
        exports.push(jobId(job));
        break;
    }
  }
  const fileRequests = plan.jobs.length;
  // Change sets are never confirmed against the list; audience and profile snapshots are, at most once each.
  const confirmations = files.audiences + files.profiles;
  const total = request.listRequests + fileRequests + confirmations;
  return {
    destination: request.destination,
    window: { from: formatHour(request.from), to: formatHour(request.to) },
    files,
    present: plan.present,
    beyondRetention: plan.beyondRetention.length,
    apiRequests: { lists: request.listRequests, files: fileRequests, confirmations, total },
    rate: request.rate,
    floorMs: Math.round((total / request.rate) * 60_000),
    logWindows: [...hoursOfApp].map(([app, hours]) => ({ app, hours: hours.length, ranges: hourRanges(hours) })),
    exports,
    skipped: plan.skipped,
    listFailures: plan.listFailures,
    warnings: plan.exportConcerns.map((concern) => `${concern.export}: ${concern.detail}`),
  };
}

/** Hours (epoch ms, any order) as the fewest contiguous ranges `[from, to)`. */
export function hourRanges(hours: readonly number[]): { from: string; to: string }[] {
  const sorted = [...hours].sort((a, b) => a - b);
  const ranges: { from: string; to: string }[] = [];
  let start: number | undefined;
  let end = 0;
  for (const hour of sorted) {
    if (start !== undefined && hour === end) {
      end += HOUR_MS;
      continue;
    }
    if (start !== undefined) ranges.push({ from: formatHour(start), to: formatHour(end) });
    start = hour;
    end = hour + HOUR_MS;
  }
  if (start !== undefined) ranges.push({ from: formatHour(start), to: formatHour(end) });
  return ranges;
}
