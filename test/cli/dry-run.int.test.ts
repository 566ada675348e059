import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { expect, test } from 'vitest';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import type { SyncSummary } from '../../functions/core/sync.js';
import type { SyncPreview } from '../../functions/core/sync-preview.js';
import { runCli } from '../support/cli.js';
import { credentialEnv, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator();
const to = floorHour(Date.now()) - 2 * HOUR_MS;
const from = to - 6 * HOUR_MS;

function syncArgs(dest: string, window: { from: number; to: number }, ...extra: string[]) {
  return [
    'sync',
    '--dest',
    dest,
    '--api-url',
    simulator.url,
    '--apps',
    simulator.dataset.apps.join(','),
    '--from',
    formatHour(window.from),
    '--to',
    formatHour(window.to),
    '--rate',
    '600',
    ...extra,
  ];
}

/** Every file under `dir` with its size and modification time: what a run that writes nothing leaves unchanged. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true })) {
    const info = await stat(path.join(dir, String(entry)));
    if (info.isFile()) files[String(entry)] = `${info.size}@${info.mtimeMs}`;
  }
  return files;
}

test('sync --dry-run makes only the list requests, writes nothing, and plans exactly what the sync then copies', async () => {
  const dest = await tempDir();
  // Half the window is there already: the dry run must count only what is missing.
  const first = await runCli(syncArgs(dest, { from, to: from + 3 * HOUR_MS }, '--datasets', 'logs'), credentialEnv);
  expect(first.code).toBe(0);
  const before = await snapshot(dest);
  const requestsBefore = simulator.requests.length;

  const dryRun = await runCli(syncArgs(dest, { from, to }, '--dry-run', '--json'), credentialEnv);
  expect(dryRun.code).toBe(0);
  const preview = JSON.parse(dryRun.stdout) as SyncPreview;
  const apps = simulator.dataset.apps;
  expect(simulator.requests.slice(requestsBefore).map((request) => request.path)).toEqual(
    expect.arrayContaining(['/v1/exports/audiences', '/v1/exports/profiles']),
  );
  expect(simulator.requests.slice(requestsBefore)).toHaveLength(2);
  expect(await snapshot(dest)).toEqual(before);
  expect(preview.files.logs).toBe(3 * apps.length);
  expect(preview.present.logs).toBe(3 * apps.length);
  expect(preview.logWindows).toEqual(
    apps.map((app) => ({ app, hours: 3, ranges: [{ from: formatHour(from + 3 * HOUR_MS), to: formatHour(to) }] })),
  );
  const toCopy = preview.files.logs + preview.files.audiences + preview.files.profiles + preview.files.profileChanges;
  expect(preview.files.audiences).toBeGreaterThan(0);
  expect(preview.files.profiles + preview.files.profileChanges).toBeGreaterThan(0);
  expect(preview.apiRequests).toEqual({
    lists: 2,
    files: toCopy,
    confirmations: preview.files.audiences + preview.files.profiles,
    total: 2 + toCopy + preview.files.audiences + preview.files.profiles,
  });
  expect(preview.floorMs).toBe(Math.round((preview.apiRequests.total / 600) * 60_000));

  const sync = await runCli(syncArgs(dest, { from, to }, '--json'), credentialEnv);
  expect(sync.code).toBe(0);
  const summary = JSON.parse(sync.stdout) as SyncSummary & { apiRequests: number };
  expect(summary.copied).toBe(toCopy);
  expect(summary.apiRequests).toBeLessThanOrEqual(preview.apiRequests.total);
});

test('sync --dry-run prints the plan for a person: files per dataset, requests, floor time and windows', async () => {
  const dest = await tempDir();
  const run = await runCli(syncArgs(dest, { from, to }, '--dry-run', '--datasets', 'logs'), credentialEnv);
  expect(run.code).toBe(0);
  const apps = simulator.dataset.apps;
  expect(run.stdout).toMatch(/^Dry run: nothing was copied or written\./);
  expect(run.stdout).toContain(`to copy      ${6 * apps.length} file(s): ${6 * apps.length} log hour(s), 0 audience`);
  expect(run.stdout).toContain(`api requests ${6 * apps.length}: 0 list(s)`);
  expect(run.stdout).toMatch(/floor time {3}\d+\.\d s at 600 requests\/minute/);
  expect(run.stdout).toContain(`logs ${apps[0]}: 6 hour(s): ${formatHour(from)} .. ${formatHour(to)}`);
  expect(await readdir(dest)).toEqual([]);
});
