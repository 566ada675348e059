import { type Coverage, destinationCoverage, GRID_LEGEND } from '../core/coverage.js';
import { type CliIo, EXIT_OK } from './io.js';
import { parseApps, parseDestination, parseWindow } from './options.js';
import { checkDestination, createSink } from './wiring.js';

export interface StatusCommandOptions {
  dest?: string;
  apps?: string;
  from?: string;
  to?: string;
  json?: boolean;
}

/** `localytics-sync status`: what the destination holds for a window; no API call, no credentials needed. */
export async function statusCommand(options: StatusCommandOptions, io: CliIo): Promise<number> {
  const destination = parseDestination(options.dest);
  const apps = parseApps(options.apps ?? io.env.LOCALYTICS_APPS);
  const window = parseWindow(options.from, options.to, io.now());
  const sink = createSink(destination, io);
  await checkDestination(sink);
  const coverage = await destinationCoverage({ apps, from: window.from, to: window.to, now: io.now() }, sink);
  io.stdout(options.json ? `${JSON.stringify(coverage, null, 2)}\n` : formatCoverage(coverage));
  return EXIT_OK;
}

export function formatCoverage(coverage: Coverage): string {
  const lines = [`Destination ${coverage.destination}, window ${coverage.window.from} .. ${coverage.window.to} (UTC)`];
  for (const app of coverage.apps) {
    lines.push(
      `app ${app.appUuid}: ${app.present} present, ${app.pending.length} pending, ${app.missing.length} missing` +
        (app.beyondRetention.length ? `, ${app.beyondRetention.length} beyond the 30-day retention` : '') +
        (app.newestHour ? `; newest hour ${app.newestHour} (lag ${app.lagHours} h)` : '; nothing copied yet'),
    );
    lines.push(`  ${'UTC day'.padEnd(10)}  00    04    08    12    16    20`);
    for (const day of app.grid) lines.push(`  ${day.dt}  ${spaced(day.hours)}`);
    if (app.missing.length) lines.push(`  missing (a sync over the window fills these): ${compressHours(app.missing)}`);
    if (app.pending.length) lines.push(`  pending: ${compressHours(app.pending)}`);
    if (app.beyondRetention.length) {
      lines.push(`  beyond the 30-day retention (cannot be backfilled): ${compressHours(app.beyondRetention)}`);
    }
  }
  if (coverage.apps.length) {
    lines.push(
      `legend: ${GRID_LEGEND.present} present  ${GRID_LEGEND.pending} pending (recent)  ${GRID_LEGEND.missing} missing (backfillable)  ${GRID_LEGEND.beyondRetention} gone (older than 30 days)`,
    );
  }
  for (const generation of coverage.generations) {
    lines.push(
      `${generation.dataset} ${generation.export}: ${generation.files} file(s), latest ${generation.latestKey}`,
    );
  }
  for (const key of coverage.pendingChangeSets) lines.push(`change set awaiting copy (next sync finishes it): ${key}`);
  for (const key of coverage.lostChangeSets) lines.push(`LOST change set (URL expired before it was saved): ${key}`);
  return `${lines.join('\n')}\n`;
}

/** 24 marks in groups of four hours, for reading on a terminal. */
function spaced(hours: string): string {
  return (hours.match(/.{1,4}/g) ?? []).join('  ');
}

/** `2026-11-28T01..2026-11-28T05, 2026-11-28T09` */
function compressHours(hours: string[]): string {
  const ranges: string[] = [];
  let start = hours[0];
  let previous = hours[0];
  const next = (hour: string) => new Date(Date.parse(`${hour}:00:00Z`) + 3_600_000).toISOString().slice(0, 13);
  for (const hour of hours.slice(1)) {
    if (previous && hour === next(previous)) {
      previous = hour;
      continue;
    }
    ranges.push(start === previous ? `${start}` : `${start}..${previous}`);
    start = hour;
    previous = hour;
  }
  if (start) ranges.push(start === previous ? start : `${start}..${previous}`);
  return ranges.join(', ');
}
