import type { SyncSummary } from '../core/sync.js';
import type { SyncPreview } from '../core/sync-preview.js';

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** The human summary printed at the end of `sync`. */
export function formatSyncSummary(summary: SyncSummary, extra: { apiRequests: number; throttled: number }): string {
  const lines = [
    `Synced ${summary.window.from} .. ${summary.window.to} (UTC, end exclusive) into ${summary.destination}`,
    `  copied       ${summary.copied} file(s), ${formatBytes(summary.bytes)}, ${summary.rows} row(s)`,
    `  present      ${summary.present} already at the destination`,
    `  pending      ${summary.pending.length} log hour(s) not ready yet (retried by the next run)`,
    `  failed       ${summary.failed.length}`,
  ];
  if (summary.beyondRetention > 0) {
    lines.push(
      `  expired      ${summary.beyondRetention} log hour(s) older than 30 days and missing (deleted by Localytics)`,
    );
  }
  lines.push(
    `  api requests ${extra.apiRequests} (${extra.throttled} throttled), time ${formatDuration(summary.durationMs)}`,
  );
  for (const pending of summary.pending.slice(0, 10)) lines.push(`  pending: ${pending}`);
  if (summary.pending.length > 10) lines.push(`  pending: ... and ${summary.pending.length - 10} more`);
  for (const failure of summary.failed) lines.push(`  FAILED ${failure.job}: ${failure.reason}`);
  for (const warning of summary.warnings) lines.push(`  warning: ${warning}`);
  for (const skipped of summary.skipped) lines.push(`  skipped ${skipped.what}: ${skipped.reason}`);
  return `${lines.join('\n')}\n`;
}

/** Apps shown one per line in a preview; the rest are counted (`--json` lists every one). */
const PREVIEW_APPS_SHOWN = 20;
/** Ranges shown per app in a preview. */
const PREVIEW_RANGES_SHOWN = 4;

/** What `sync --dry-run` prints: the plan of the window, and what copying it would cost in API requests. */
export function formatSyncPreview(preview: SyncPreview): string {
  const { files, present, apiRequests } = preview;
  const toCopy = files.logs + files.audiences + files.profiles + files.profileChanges;
  const lines = [
    `Dry run: nothing was copied or written. Plan for ${preview.window.from} .. ${preview.window.to} (UTC, end exclusive) into ${preview.destination}`,
    `  to copy      ${toCopy} file(s): ${files.logs} log hour(s), ${files.audiences} audience file(s), ` +
      `${files.profiles} profile snapshot(s), ${files.profileChanges} change set(s)`,
    `  present      ${present.logs + present.audiences + present.profiles} already at the destination`,
  ];
  if (preview.beyondRetention > 0) {
    lines.push(
      `  expired      ${preview.beyondRetention} log hour(s) older than 30 days and missing (deleted by Localytics)`,
    );
  }
  lines.push(
    `  api requests ${apiRequests.total}: ${apiRequests.lists} list(s), ${apiRequests.files} file request(s), ` +
      `up to ${apiRequests.confirmations} confirming list(s)`,
    `  floor time   ${formatDuration(preview.floorMs)} at ${preview.rate} requests/minute (requests ÷ rate; downloads not counted)`,
  );
  for (const window of preview.logWindows.slice(0, PREVIEW_APPS_SHOWN)) {
    const ranges = window.ranges.slice(0, PREVIEW_RANGES_SHOWN).map((range) => `${range.from} .. ${range.to}`);
    if (window.ranges.length > PREVIEW_RANGES_SHOWN)
      ranges.push(`and ${window.ranges.length - PREVIEW_RANGES_SHOWN} more`);
    lines.push(`  logs ${window.app}: ${window.hours} hour(s): ${ranges.join(', ')}`);
  }
  if (preview.logWindows.length > PREVIEW_APPS_SHOWN) {
    lines.push(`  logs ... and ${preview.logWindows.length - PREVIEW_APPS_SHOWN} more app(s) (--json lists every one)`);
  }
  for (const what of preview.exports) lines.push(`  export ${what}`);
  for (const failure of preview.listFailures) lines.push(`  FAILED list ${failure.endpoint}: ${failure.reason}`);
  for (const warning of preview.warnings) lines.push(`  warning: ${warning}`);
  for (const skipped of preview.skipped) lines.push(`  skipped ${skipped.what}: ${skipped.reason}`);
  return `${lines.join('\n')}\n`;
}
