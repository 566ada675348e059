/**
 * Watching the audience and profile exports themselves: Localytics stops refreshing an export nobody requested for
 * 45 days, and an export can be deleted or lose its access. Either way nothing fails — the daily pull just finds
 * nothing new — so the planner compares each list with what it saw before and reports an export that vanished
 * from the list or whose generation has not advanced for too long.
 */
import { HOUR_MS } from './hours.js';
import type { SyncJob } from './jobs.js';
import type { Logger, ObjectSink } from './ports.js';
import { describeError } from './redact.js';

/** What the planner remembers of the exports it saw, kept at the destination. */
export const EXPORTS_SEEN_KEY = '_state/exports_seen.json';
/** A vanished export is reported this long, then forgotten (deleted on purpose, or noticed by then). */
const REPORT_VANISHED_MS = 72 * HOUR_MS;

export type WatchedList = 'audiences' | 'profiles';

export interface ExportConcern {
  /** `audience 153829/idfa`, `profile 6012`, `profile_changes 6012`. */
  readonly export: string;
  readonly reason: 'not_refreshed' | 'vanished';
  /** The newest generation seen (ISO). */
  readonly generatedAt: string;
  readonly detail: string;
}

interface SeenExport {
  readonly list: WatchedList;
  readonly generatedAt: number;
  readonly lastListed: number;
}

type SeenState = Record<string, SeenExport>;

export function exportName(job: SyncJob): string | undefined {
  switch (job.kind) {
    case 'audience':
      return `audience ${job.audienceId}/${job.identifierType}`;
    case 'profile':
    case 'profile_changes':
      return `${job.kind} ${job.profileDbId}`;
    case 'log_hour':
      return undefined;
  }
}

/**
 * Compare the lists read this run (only those that were read: a failed list says nothing) with the exports seen
 * before; answer the concerns and remember what was listed (unless `record` is false: a dry run). The state is best effort: if it cannot be read or
 * written, exports that vanished go unnoticed for a run, and the rest still works.
 */
export async function watchExports(
  listed: ReadonlyMap<WatchedList, readonly SyncJob[]>,
  deps: { readonly sink: ObjectSink; readonly logger: Logger },
  now: number,
  staleAfterHours: number,
  options: { readonly record: boolean } = { record: true },
): Promise<ExportConcern[]> {
  const seen = await readSeen(deps);
  const concerns: ExportConcern[] = [];
  const next: SeenState = {};
  for (const [list, jobs] of listed) {
    const current = new Set<string>();
    for (const job of jobs) {
      const name = exportName(job);
      if (!name || job.kind === 'log_hour') continue;
      current.add(name);
      next[name] = { list, generatedAt: job.generatedAt, lastListed: now };
      const ageHours = Math.floor((now - job.generatedAt) / HOUR_MS);
      if (ageHours > staleAfterHours) {
        concerns.push({
          export: name,
          reason: 'not_refreshed',
          generatedAt: new Date(job.generatedAt).toISOString(),
          detail: `its newest generation is ${ageHours} h old (Localytics stops refreshing exports nobody requested for 45 days)`,
        });
      }
    }
    for (const [name, before] of Object.entries(seen)) {
      if (before.list !== list || current.has(name)) continue;
      if (now - before.lastListed > REPORT_VANISHED_MS) continue;
      next[name] = before;
      concerns.push({
        export: name,
        reason: 'vanished',
        generatedAt: new Date(before.generatedAt).toISOString(),
        detail: `no longer in the ${list} list since ${new Date(before.lastListed).toISOString()} (deleted, or no access any more)`,
      });
    }
  }
  // Lists not read this run keep what was seen of them.
  for (const [name, before] of Object.entries(seen)) if (!listed.has(before.list)) next[name] = before;
  if (options.record) {
    await deps.sink
      .writeText(EXPORTS_SEEN_KEY, JSON.stringify(next))
      .catch((error: unknown) => deps.logger.warn('could not save the exports seen', { reason: describeError(error) }));
  }
  for (const concern of concerns) {
    deps.logger.warn(concern.reason === 'vanished' ? 'export vanished' : 'export not refreshed', { ...concern });
  }
  return concerns;
}

async function readSeen(deps: { readonly sink: ObjectSink; readonly logger: Logger }): Promise<SeenState> {
  try {
    const text = await deps.sink.readText(EXPORTS_SEEN_KEY);
    if (text === undefined) return {};
    const data = JSON.parse(text) as unknown;
    if (!data || typeof data !== 'object' || Array.isArray(data)) throw new Error('not an object');
    const state: SeenState = {};
    for (const [name, value] of Object.entries(data as Record<string, Partial<SeenExport>>)) {
      if (
        (value?.list === 'audiences' || value?.list === 'profiles') &&
        Number.isFinite(value.generatedAt) &&
        Number.isFinite(value.lastListed)
      ) {
        state[name] = value as SeenExport;
      }
    }
    return state;
  } catch (error) {
    deps.logger.warn('could not read the exports seen', { reason: describeError(error) });
    return {};
  }
}
