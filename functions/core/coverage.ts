import { formatDate, formatHour, HOUR_MS, hoursBetween, LOG_RETENTION_MS } from './hours.js';
import { DATASET_FOLDERS } from './jobs.js';
import { presentLogHours } from './planner.js';
import type { ObjectSink } from './ports.js';

export interface CoverageRequest {
  readonly apps: readonly string[];
  readonly from: number;
  readonly to: number;
  readonly now: number;
  /** A missing hour younger than this (after its end) is pending, not missing. Default 2 h. */
  readonly expectedLagMs?: number;
}

export interface AppCoverage {
  readonly appUuid: string;
  readonly present: number;
  /** Missing hours recent enough that Localytics may not have them yet. */
  readonly pending: string[];
  /** Missing hours that Localytics should have and still keeps: a sync over the window fills them. */
  readonly missing: string[];
  /** Missing hours older than the 30-day retention: permanent gaps. */
  readonly beyondRetention: string[];
  readonly newestHour?: string;
  /** Hours between now and the end of the newest present hour. */
  readonly lagHours?: number;
  /** Day × hour grid: one string of 24 marks per UTC day (see `GRID_LEGEND`); blanks are outside the window. */
  readonly grid: { readonly dt: string; readonly hours: string }[];
}

export const GRID_LEGEND = { present: '#', pending: '.', missing: 'x', beyondRetention: '-', outside: ' ' } as const;

export interface GenerationCoverage {
  readonly dataset: 'audiences' | 'profiles' | 'profile_changes';
  /** `audience_id=1/identifier_type=idfa` or `profiledb_id=6012`. */
  readonly export: string;
  readonly files: number;
  readonly latestKey: string;
}

export interface Coverage {
  readonly destination: string;
  readonly window: { readonly from: string; readonly to: string };
  readonly apps: AppCoverage[];
  readonly generations: GenerationCoverage[];
  /** Change sets consumed at Localytics whose copy has not been confirmed yet (a later sync finishes them). */
  readonly pendingChangeSets: string[];
  /** Change sets whose URL expired before they could be saved: lost, reported. */
  readonly lostChangeSets: string[];
}

/** What the destination holds for a window: read from the destination only, no API call. */
export async function destinationCoverage(request: CoverageRequest, sink: ObjectSink): Promise<Coverage> {
  const lag = request.expectedLagMs ?? 2 * HOUR_MS;
  const retentionStart = request.now - LOG_RETENTION_MS;
  const apps: AppCoverage[] = [];
  for (const appUuid of request.apps) {
    const have = await presentLogHours(sink, appUuid, request.from, request.to);
    const coverage = {
      appUuid,
      present: 0,
      pending: [] as string[],
      missing: [] as string[],
      beyondRetention: [] as string[],
    };
    const days = new Map<string, string[]>();
    const mark = (hour: number, symbol: string) => {
      const dt = formatDate(hour);
      const row = days.get(dt) ?? Array.from({ length: 24 }, () => GRID_LEGEND.outside as string);
      row[new Date(hour).getUTCHours()] = symbol;
      days.set(dt, row);
    };
    for (const hour of hoursBetween(request.from, request.to)) {
      if (have.has(hour)) {
        coverage.present++;
        mark(hour, GRID_LEGEND.present);
      } else if (hour < retentionStart) {
        coverage.beyondRetention.push(formatHour(hour));
        mark(hour, GRID_LEGEND.beyondRetention);
      } else if (hour + HOUR_MS + lag > request.now) {
        coverage.pending.push(formatHour(hour));
        mark(hour, GRID_LEGEND.pending);
      } else {
        coverage.missing.push(formatHour(hour));
        mark(hour, GRID_LEGEND.missing);
      }
    }
    const grid = [...days].map(([dt, hours]) => ({ dt, hours: hours.join('') }));
    const newest = Math.max(...have, Number.NEGATIVE_INFINITY);
    apps.push(
      Number.isFinite(newest)
        ? {
            ...coverage,
            grid,
            newestHour: formatHour(newest),
            lagHours: Math.floor((request.now - newest - HOUR_MS) / HOUR_MS),
          }
        : { ...coverage, grid },
    );
  }

  const generations: GenerationCoverage[] = [];
  for (const dataset of [DATASET_FOLDERS.audience, DATASET_FOLDERS.profile, DATASET_FOLDERS.profile_changes] as const) {
    const byExport = new Map<string, { files: number; latestKey: string }>();
    for await (const object of sink.list(`${dataset}/`)) {
      const match =
        /^[^/]+\/((?:audience_id=\d+\/identifier_type=[a-z_]+)|(?:profiledb_id=\d+))\/dt=[\d-]+\/[^/]+$/.exec(
          object.key,
        );
      if (!match) continue;
      const name = match[1] as string;
      const entry = byExport.get(name) ?? { files: 0, latestKey: '' };
      entry.files++;
      // File names carry the generation timestamp, so the greatest name is the latest generation.
      if (fileName(object.key) > fileName(entry.latestKey)) entry.latestKey = object.key;
      byExport.set(name, entry);
    }
    for (const [name, entry] of byExport) generations.push({ dataset, export: name, ...entry });
  }

  const pendingChangeSets: string[] = [];
  for await (const object of sink.list('_state/profile_changes/')) pendingChangeSets.push(object.key);
  const lostChangeSets: string[] = [];
  for await (const object of sink.list('_state/profile_changes_lost/')) lostChangeSets.push(object.key);

  return {
    destination: sink.location,
    window: { from: formatHour(request.from), to: formatHour(request.to) },
    apps,
    generations,
    pendingChangeSets,
    lostChangeSets,
  };
}

function fileName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}
