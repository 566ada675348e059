/** UTC hours. An hour is written `YYYY-MM-DDTHH` (the CLI's format) and handled as epoch milliseconds. */

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
/** Localytics deletes raw log files after 30 days. */
export const LOG_RETENTION_MS = 30 * DAY_MS;

const HOUR_PATTERN = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})$/;

/** Parse `YYYY-MM-DDTHH` (UTC) into epoch ms, or undefined when it is not a real hour or is before 1970. */
export function parseHour(text: string): number | undefined {
  const match = HOUR_PATTERN.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour] = match.slice(1).map(Number) as [number, number, number, number];
  // Date.UTC would read years 0 to 99 as 1900 to 1999 (issue 21, item 10); nothing here predates 1970.
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23) return undefined;
  const ms = Date.UTC(year, month - 1, day, hour);
  const check = new Date(ms);
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return undefined;
  return ms;
}

export function floorHour(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

export function formatHour(ms: number): string {
  return new Date(ms).toISOString().slice(0, 13);
}

export function formatDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export interface HourParts {
  year: string;
  month: string;
  day: string;
  hour: string;
}

/** Zero-padded parts, as sent to the API and used in keys. */
export function hourParts(ms: number): HourParts {
  const iso = new Date(ms).toISOString();
  return { year: iso.slice(0, 4), month: iso.slice(5, 7), day: iso.slice(8, 10), hour: iso.slice(11, 13) };
}

/** Every hour start in [from, to). */
export function* hoursBetween(from: number, to: number): Generator<number> {
  for (let hour = floorHour(from); hour < to; hour += HOUR_MS) yield hour;
}

/** `20170213T123043Z`: a compact, sortable, key-safe timestamp. */
export function compactTimestamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/** The inverse of `compactTimestamp`. */
export function parseCompactTimestamp(stamp: string): number {
  const [date, time] = [stamp.slice(0, 8), stamp.slice(9, 15)];
  return Date.UTC(
    Number(date.slice(0, 4)),
    Number(date.slice(4, 6)) - 1,
    Number(date.slice(6, 8)),
    Number(time.slice(0, 2)),
    Number(time.slice(2, 4)),
    Number(time.slice(4, 6)),
  );
}

/**
 * Parse a timestamp from the API as UTC when it names no zone (`2017-02-13T12:30:43`): `Date.parse` would read it
 * in the local time zone, so a CLI machine and a Lambda (UTC) would compute different generation keys.
 * NaN when it is not a date-time.
 */
export function parseUtcTimestamp(text: string): number {
  const value = text.trim();
  const hasZone = /(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$/.test(value);
  const isDateTime = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(value);
  return Date.parse(isDateTime && !hasZone ? `${value.replace(' ', 'T')}Z` : value);
}
