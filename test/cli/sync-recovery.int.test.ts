import { readdir, readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { afterEach, expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import type { CliIo } from '../../functions/cli/io.js';
import { runSyncCommand } from '../../functions/cli/sync-command.js';
import { DAY_MS, floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { dataKey, pendingChangeSetKey } from '../../functions/core/jobs.js';
import type { SyncSummary } from '../../functions/core/sync.js';
import { latestGeneration, profileChangeRows, serializeRows } from '../../functions/simulator/dataset.js';
import { runCli } from '../support/cli.js';
import { clientFor, credentialEnv, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator();
afterEach(() => simulator.faults.clear());

const args = (dest: string, extra: string[]) => [
  'sync',
  '--dest',
  dest,
  '--api-url',
  simulator.url,
  '--rate',
  '6000',
  '--json',
  ...extra,
];

test('a change set saved by an earlier run is finished from its saved URL, before any new one is asked for', async () => {
  const dir = await tempDir();
  const sink = new LocalDirSink(dir);
  const consumed = simulator.changeSetsConsumed('6012');
  const earlier = {
    kind: 'profile_changes',
    profileDbId: '6012',
    generatedAt: latestGeneration(Date.now()) - DAY_MS,
  } as const;
  const resolved = await clientFor(simulator).resolve(earlier);
  if (resolved.status !== 'ready') throw new Error('expected a Location');
  await sink.writeText(
    pendingChangeSetKey(earlier),
    JSON.stringify({
      state: 'resolved',
      profileDbId: '6012',
      generatedAt: earlier.generatedAt,
      key: dataKey(earlier),
      claimedAt: new Date().toISOString(),
      location: resolved.location,
    }),
  );
  const mark = simulator.requests.length;

  const run = await runCli(args(dir, ['--datasets', 'profiles']), credentialEnv);
  expect(run.code).toBe(0);
  const summary = JSON.parse(run.stdout) as SyncSummary;
  expect(summary.skipped).toContainEqual({
    what: 'profile_changes 6012',
    reason: 'an earlier change set is still being saved; the next run asks for the new one',
  });
  expect(simulator.requests.slice(mark).filter((r) => r.path.endsWith('/profile_changes'))).toEqual([]);
  expect(simulator.changeSetsConsumed('6012')).toBe(consumed + 1);
  const stored = gunzipSync(await readFile(`${dir}/${dataKey(earlier)}`)).toString();
  expect(stored).toBe(serializeRows(profileChangeRows(simulator.dataset, '6012', consumed + 1)));
  expect(await sink.readText(pendingChangeSetKey(earlier))).toBeUndefined();
});

test('a log hour still 404 a day after it ended is a reported gap (exit 1), not pending', async () => {
  const dir = await tempDir();
  const unknownApp = 'abcdef0123456789abcdef0-00000000-0000-0000-0000-000000000000';
  const to = floorHour(Date.now()) - 26 * HOUR_MS;
  const run = await runCli(
    args(dir, [
      '--datasets',
      'logs',
      '--apps',
      unknownApp,
      '--from',
      formatHour(to - 2 * HOUR_MS),
      '--to',
      formatHour(to),
    ]),
    credentialEnv,
  );
  expect(run.code).toBe(1);
  const summary = JSON.parse(run.stdout) as SyncSummary;
  expect(summary.pending).toEqual([]);
  expect(summary.failed).toHaveLength(2);
  expect(summary.failed[0]?.reason).toMatch(/^not available \(404\) 24 h after the hour ended/);
});

test('a list that fails is reported, and the other datasets are still synced', async () => {
  const dir = await tempDir();
  simulator.faults.add({ kind: 'unauthorized', match: '/v1/exports/profiles' });
  const to = floorHour(Date.now()) - 3 * HOUR_MS;
  const run = await runCli(
    args(dir, [
      '--apps',
      simulator.dataset.apps[0] as string,
      '--from',
      formatHour(to - HOUR_MS),
      '--to',
      formatHour(to),
    ]),
    credentialEnv,
  );
  expect(run.code).toBe(1);
  const summary = JSON.parse(run.stdout) as SyncSummary;
  expect(summary.failed).toEqual([{ job: 'list /v1/exports/profiles', reason: expect.stringMatching(/answered 401/) }]);
  expect(summary.copied).toBe(1 + 4);
});

test('Ctrl-C aborts the copies in flight, leaves no partial file, and still summarises', async () => {
  const dir = await tempDir();
  const app = simulator.dataset.apps[0] as string;
  const hour = floorHour(Date.now()) - 4 * HOUR_MS;
  simulator.setLargeHour(app, hour, 4 * 1024 * 1024);
  simulator.faults.add({ kind: 'slow', match: `log/${app}/${formatHour(hour)}` });
  let interrupt: (() => void) | undefined;
  const io: CliIo = {
    stdout: () => {},
    stderr: () => {},
    env: credentialEnv,
    now: Date.now,
    interactive: false,
    onInterrupt: (handler) => {
      interrupt = handler;
      return () => {
        interrupt = undefined;
      };
    },
  };
  const running = runSyncCommand(
    {
      dest: dir,
      apiUrl: simulator.url,
      datasets: 'logs',
      apps: app,
      from: formatHour(hour),
      to: formatHour(hour + HOUR_MS),
      rate: '6000',
    },
    io,
  );
  // Wait until the download is under way (a temp file exists), then press Ctrl-C.
  for (let i = 0; i < 200; i++) {
    const files = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
    if (files.some((file) => String(file).includes('.partial-'))) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  interrupt?.();
  const result = await running;
  expect(result.exitCode).toBe(1);
  expect(result.summary.failed).toEqual([
    { job: `log_hour/${app}/${formatHour(hour)}`, reason: 'interrupted before it finished; the next run copies it' },
  ]);
  const left = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
  expect(left).toEqual([]);
});
