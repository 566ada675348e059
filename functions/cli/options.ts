import path from 'node:path';
import { checkApiUrl } from '../adapters/api-url.js';
import { parseS3Url, type S3Destination } from '../adapters/s3-sink.js';
import { ConfigError } from '../core/errors.js';
import { DAY_MS, floorHour, formatHour, HOUR_MS, parseHour } from '../core/hours.js';
import { DATASETS, type Dataset, isDataset, parseAppUuid } from '../core/identifiers.js';

/** A usage or configuration error: exit code 2, before any API call. */
export class UsageError extends ConfigError {}

export type Destination = ({ readonly type: 's3' } & S3Destination) | { readonly type: 'local'; readonly dir: string };

export interface WindowOptions {
  readonly from: number;
  readonly to: number;
}

export function parseDestination(value: string | undefined): Destination {
  if (!value) throw new UsageError('--dest is required (s3://bucket/prefix or a local directory)');
  if (value.startsWith('s3://')) {
    try {
      return { type: 's3', ...parseS3Url(value) };
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  // `s3:/bucket`, `S3://bucket`, `s3:bucket`: meant for S3, but would be read as a local folder named `s3:`.
  if (/^s3:/i.test(value)) {
    throw new UsageError(
      `--dest "${value}": an S3 destination is written s3://bucket/prefix (a local folder with this name: ./${value})`,
    );
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new UsageError(`--dest ${value}: only s3:// URLs and local directories are supported`);
  }
  const dir = path.resolve(value);
  if (path.parse(dir).root === dir) {
    throw new UsageError(`--dest "${value}" is the root of the file system; name a folder for the export`);
  }
  return { type: 'local', dir: value };
}

export function parseDatasets(value: string | undefined): Set<Dataset> {
  if (value === undefined) return new Set(DATASETS);
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (names.length === 0) throw new UsageError(`--datasets is empty; use any of ${DATASETS.join(',')}`);
  for (const name of names) {
    if (!isDataset(name))
      throw new UsageError(`unknown dataset "${name}" in --datasets; use any of ${DATASETS.join(',')}`);
  }
  return new Set(names as Dataset[]);
}

export function parseApps(value: string | undefined): string[] {
  if (value === undefined) return [];
  const apps: string[] = [];
  for (const raw of value.split(',')) {
    const text = raw.trim();
    if (!text) continue;
    const app = parseAppUuid(text);
    if (!app) {
      throw new UsageError(
        `--apps: "${text}" is not a Localytics app ID (hex groups separated by dashes, e.g. 1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8)`,
      );
    }
    if (!apps.includes(app)) apps.push(app);
  }
  return apps;
}

/**
 * The `[from, to)` window of UTC hours. Defaults: `--to` is the current hour (so the last complete hour is the
 * newest one asked for) and `--from` is 24 hours before `--to`.
 */
export function parseWindow(fromText: string | undefined, toText: string | undefined, now: number): WindowOptions {
  const to = toText === undefined ? floorHour(now) : parseHourOption('--to', toText);
  const from = fromText === undefined ? to - 24 * HOUR_MS : parseHourOption('--from', fromText);
  if (from >= to) throw new UsageError(`--from ${formatHour(from)} must be before --to ${formatHour(to)}`);
  if (to > floorHour(now)) {
    // --to is exclusive: at most the current hour, so that the newest hour asked for is the last complete one.
    throw new UsageError(
      `--to ${formatHour(to)} is too late: it is exclusive and may be at most the current hour ${formatHour(floorHour(now))} (the hour in progress has no file yet)`,
    );
  }
  if (to - from > 400 * DAY_MS) throw new UsageError('the window from --from to --to may span at most 400 days');
  return { from, to };
}

function parseHourOption(flag: string, text: string): number {
  // Date.UTC reads years 0 to 99 as 1900 to 1999; no export is older than 1970 anyway.
  if (/^\d{4}-/.test(text) && Number(text.slice(0, 4)) < 1970) {
    throw new UsageError(`${flag} "${text}": hours before 1970 are not supported`);
  }
  const hour = parseHour(text);
  if (hour === undefined)
    throw new UsageError(`${flag} "${text}" is not a UTC hour written YYYY-MM-DDTHH (e.g. 2026-11-28T05)`);
  return hour;
}

export function parsePositiveInteger(flag: string, value: string | undefined, fallback: number, max = 100_000): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new UsageError(`${flag} "${value}" must be a whole number from 1 to ${max}`);
  }
  return Number(value);
}

export function parseApiUrl(value: string | undefined, fallback: string): string {
  try {
    return checkApiUrl(value ?? fallback, '--api-url');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
