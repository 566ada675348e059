import type { SyncSummary } from '../core/sync.js';

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
