import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { DAY_MS } from '../../functions/core/hours.js';
import { CHANGE_SET_STATE_PREFIX, dataKey } from '../../functions/core/jobs.js';
import { latestGeneration, profileChangeRows, serializeRows } from '../../functions/simulator/dataset.js';
import { LocalyticsSimulator } from '../../functions/simulator/server.js';
import { runCli } from '../support/cli.js';
import { credentialEnv } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

let now = Date.now();
const simulator = new LocalyticsSimulator({ ratePerMinute: 6000, now: () => now });
beforeAll(() => simulator.start());
afterAll(() => simulator.stop());

test('a copy killed after the profile_changes 302 is finished by the next run: every change row lands exactly once', async () => {
  const dir = await tempDir();
  const sink = new LocalDirSink(dir);
  const args = [
    'sync',
    '--dest',
    dir,
    '--api-url',
    simulator.url,
    '--datasets',
    'profiles',
    '--rate',
    '6000',
    '--json',
  ];
  // The change set's body stalls, so the process is in the middle of copying it when it is killed.
  simulator.faults.add({ kind: 'slow', match: 'profile_changes/6012/', delayMs: 30_000 });
  const child = spawn(process.execPath, [path.resolve('dist/localytics-sync.mjs'), ...args], {
    env: { PATH: process.env.PATH ?? '', ...credentialEnv },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const downloading = () => simulator.requests.some((r) => r.file?.startsWith('profile_changes/6012/'));
  for (let i = 0; i < 400 && !downloading(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  expect(downloading()).toBe(true);
  child.kill('SIGKILL');
  await exited;

  // Killed: the change set is consumed at Localytics, nothing landed, and its URL is saved.
  expect(simulator.changeSetsConsumed('6012')).toBe(1);
  const first = { kind: 'profile_changes', profileDbId: '6012', generatedAt: latestGeneration(now) } as const;
  expect(await sink.exists(dataKey(first))).toBe(false);
  const saved: string[] = [];
  for await (const object of sink.list(CHANGE_SET_STATE_PREFIX)) saved.push(object.key);
  expect(saved).toHaveLength(1);

  // The next run resumes the saved URL instead of asking again (which would consume change set 2).
  const resumed = await runCli(args, credentialEnv, () => now);
  expect(resumed.code).toBe(0);
  expect(simulator.changeSetsConsumed('6012')).toBe(1);
  expect(gunzipSync(await readFile(path.join(dir, dataKey(first)))).toString()).toBe(
    serializeRows(profileChangeRows(simulator.dataset, '6012', 1)),
  );

  // A day later the next generation brings change set 2; across all files every change row appears exactly once.
  now += DAY_MS;
  expect((await runCli(args, credentialEnv, () => now)).code).toBe(0);
  const second = { ...first, generatedAt: latestGeneration(now) };
  const landed = [
    ...gunzipSync(await readFile(path.join(dir, dataKey(first))))
      .toString()
      .split('\n'),
    ...gunzipSync(await readFile(path.join(dir, dataKey(second))))
      .toString()
      .split('\n'),
  ].filter(Boolean);
  const served = [1, 2]
    .flatMap((n) => serializeRows(profileChangeRows(simulator.dataset, '6012', n)).split('\n'))
    .filter(Boolean);
  expect(landed).toEqual(served);
  expect(simulator.changeSetsConsumed('6012')).toBe(2);
  const left: string[] = [];
  for await (const object of sink.list(CHANGE_SET_STATE_PREFIX)) left.push(object.key);
  expect(left).toEqual([]);
}, 60_000);
