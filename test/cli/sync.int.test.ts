import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { dataKey } from '../../functions/core/jobs.js';
import type { SyncSummary } from '../../functions/core/sync.js';
import {
  audienceRows,
  latestGeneration,
  logRows,
  profileChangeRows,
  profileRows,
  serializeRows,
} from '../../functions/simulator/dataset.js';
import { LocalyticsSimulator } from '../../functions/simulator/server.js';
import { runCli } from '../support/cli.js';
import { createS3Client, createTestBucket, getObjectBytes, listAllKeys, s3Environment } from '../support/s3.js';
import { credentialEnv, useSimulator } from '../support/simulator.js';

const simulator = useSimulator();
const s3 = createS3Client();
const to = floorHour(Date.now()) - 2 * HOUR_MS;
const from = to - 4 * HOUR_MS;
let bucket: string;

beforeEach(async () => {
  bucket = await createTestBucket(s3);
  Object.assign(process.env, s3Environment());
});
afterEach(() => {
  // Every fault a test injected must have fired: otherwise the test did not exercise what it claims.
  const unfired = [...simulator.faults.pending];
  simulator.faults.clear();
  expect(unfired).toEqual([]);
});

type JsonSummary = SyncSummary & { apiRequests: number; throttled: number };

async function sync(extra: string[] = [], target = simulator) {
  const run = await runCli(
    [
      'sync',
      '--dest',
      `s3://${bucket}/lake`,
      '--api-url',
      target.url,
      '--apps',
      target.dataset.apps.join(','),
      '--from',
      formatHour(from),
      '--to',
      formatHour(to),
      '--rate',
      '6000',
      '--json',
      ...extra,
    ],
    { ...credentialEnv, ...s3Environment() },
  );
  const summary = run.stdout ? (JSON.parse(run.stdout) as JsonSummary) : undefined;
  return { ...run, summary };
}

async function stored(key: string): Promise<string> {
  return gunzipSync(await getObjectBytes(s3, bucket, `lake/${key}`)).toString();
}

function requestsSince(index: number) {
  return simulator.requests.slice(index);
}

describe('sync into S3', () => {
  test('lands all three datasets under partitioned keys, with exactly the served content', async () => {
    const { code, summary } = await sync();
    expect(code).toBe(0);
    const apps = simulator.dataset.apps;
    expect(summary).toMatchObject({ copied: 4 * apps.length + 4 + 2, failed: [], pending: [] });

    for (const appUuid of apps) {
      for (let hour = from; hour < to; hour += HOUR_MS) {
        expect(await stored(dataKey({ kind: 'log_hour', appUuid, hour }))).toBe(
          serializeRows(logRows(simulator.dataset, appUuid, hour)),
        );
      }
    }
    const generatedAt = latestGeneration(Date.now());
    expect(await stored(dataKey({ kind: 'audience', audienceId: '153829', identifierType: 'idfa', generatedAt }))).toBe(
      serializeRows(audienceRows(simulator.dataset, '153829', 'idfa', generatedAt)),
    );
    expect(await stored(dataKey({ kind: 'profile', profileDbId: '6012', generatedAt }))).toBe(
      serializeRows(profileRows(simulator.dataset, '6012', generatedAt)),
    );
    const keys = await listAllKeys(s3, bucket);
    expect(keys.filter((key) => key.startsWith('lake/raw_logs/'))).toHaveLength(4 * apps.length);
    // No change-set record is left; the only state is what the lists showed (to notice an export vanishing).
    expect(keys.filter((key) => key.includes('/_state/'))).toEqual(['lake/_state/exports_seen.json']);
  });

  test('a rerun over the same window adds nothing and downloads no file', async () => {
    await sync();
    const keysBefore = await listAllKeys(s3, bucket);
    const mark = simulator.requests.length;
    const { code, summary } = await sync();
    expect(code).toBe(0);
    expect(summary).toMatchObject({ copied: 0, planned: 0 });
    expect(await listAllKeys(s3, bucket)).toEqual(keysBefore);
    const after = requestsSince(mark);
    expect(after.filter((r) => r.kind === 'file')).toEqual([]);
    // Only the two list requests: existence is checked at the destination, not by asking the API.
    expect(after.map((r) => r.path).sort()).toEqual(['/v1/exports/audiences', '/v1/exports/profiles']);
  });

  test('never sends the Authorization header to the file host', async () => {
    const mark = simulator.requests.length;
    await sync(['--datasets', 'logs']);
    const files = requestsSince(mark).filter((r) => r.kind === 'file');
    expect(files.length).toBe(8);
    expect(files.some((r) => r.authorization)).toBe(false);
    expect(
      requestsSince(mark)
        .filter((r) => r.kind === 'api')
        .every((r) => r.authorization),
    ).toBe(true);
  });
});

describe('sync under faults', () => {
  test('a 429 storm delays the jobs but drops none', async () => {
    simulator.faults.add({ kind: 'throttle', count: 6, retryAfterSeconds: 1, match: '/analytics/logs/' });
    const { code, summary } = await sync(['--datasets', 'logs']);
    expect(code).toBe(0);
    expect(summary).toMatchObject({ copied: 8, failed: [] });
    expect(summary?.throttled).toBe(6);
  });

  test('5xx answers from the API are retried', async () => {
    simulator.faults.add({ kind: 'server_error', count: 3, match: '/analytics/logs/' });
    const { code, summary } = await sync(['--datasets', 'logs']);
    expect(code).toBe(0);
    expect(summary?.copied).toBe(8);
  });

  test('a connection reset mid-body is retried with the same Location', async () => {
    const appUuid = simulator.dataset.apps[0] as string;
    const name = `log/${appUuid}/${formatHour(from)}`;
    simulator.faults.add({ kind: 'reset', match: name });
    const mark = simulator.requests.length;
    const { code } = await sync(['--datasets', 'logs']);
    expect(code).toBe(0);
    const after = requestsSince(mark);
    expect(after.filter((r) => r.file === name)).toHaveLength(2);
    const hourPath = `/v1/exports/analytics/logs/${appUuid}/${formatHour(from).replace(/[-T]/g, '/')}`;
    expect(after.filter((r) => r.path === hourPath)).toHaveLength(1);
    expect(await stored(dataKey({ kind: 'log_hour', appUuid, hour: from }))).toBe(
      serializeRows(logRows(simulator.dataset, appUuid, from)),
    );
  });

  test('a truncated gzip body is detected and copied again, never stored short', async () => {
    const appUuid = simulator.dataset.apps[1] as string;
    simulator.faults.add({ kind: 'truncate', match: `log/${appUuid}/`, count: 2 });
    const { code } = await sync(['--datasets', 'logs']);
    expect(code).toBe(0);
    for (let hour = from; hour < to; hour += HOUR_MS) {
      expect(await stored(dataKey({ kind: 'log_hour', appUuid, hour }))).toBe(
        serializeRows(logRows(simulator.dataset, appUuid, hour)),
      );
    }
  });

  test('an expired Location is resolved again', async () => {
    const appUuid = simulator.dataset.apps[0] as string;
    const name = `log/${appUuid}/${formatHour(from + HOUR_MS)}`;
    simulator.faults.add({ kind: 'expire', match: name });
    const mark = simulator.requests.length;
    const { code } = await sync(['--datasets', 'logs']);
    expect(code).toBe(0);
    const hourPath = `/v1/exports/analytics/logs/${appUuid}/${formatHour(from + HOUR_MS).replace(/[-T]/g, '/')}`;
    expect(requestsSince(mark).filter((r) => r.path === hourPath)).toHaveLength(2);
  });

  test('a failed profile_changes download is retried with the same URL, so no change set is consumed twice', async () => {
    const consumedBefore = simulator.changeSetsConsumed('6012');
    simulator.faults.add({ kind: 'reset', match: 'profile_changes/6012/' });
    const mark = simulator.requests.length;
    const { code } = await sync(['--datasets', 'profiles']);
    expect(code).toBe(0);
    const after = requestsSince(mark);
    expect(after.filter((r) => r.path === '/v1/exports/profiles/6012/profile_changes')).toHaveLength(1);
    const downloads = after.filter((r) => r.file?.startsWith('profile_changes/6012/'));
    expect(downloads).toHaveLength(2);
    expect(new Set(downloads.map((r) => r.file)).size).toBe(1);
    expect(simulator.changeSetsConsumed('6012')).toBe(consumedBefore + 1);
    const generatedAt = latestGeneration(Date.now());
    expect(await stored(dataKey({ kind: 'profile_changes', profileDbId: '6012', generatedAt }))).toBe(
      serializeRows(profileChangeRows(simulator.dataset, '6012', consumedBefore + 1)),
    );
  });

  test('a permanent failure exits 1 and names the job and the reason', async () => {
    const appUuid = simulator.dataset.apps[0] as string;
    simulator.faults.add({ kind: 'unauthorized', match: `/analytics/logs/${appUuid}/` });
    const { code, summary } = await sync(['--datasets', 'logs']);
    expect(code).toBe(1);
    expect(summary?.failed).toHaveLength(1);
    expect(summary?.failed[0]?.reason).toMatch(/answered 401/);
    expect(summary?.copied).toBe(7);
  });
});

describe('sync pacing', () => {
  const paced = new LocalyticsSimulator({ ratePerMinute: 300 });
  beforeEach(() => paced.start());
  afterEach(() => paced.stop());

  test('eight concurrent copies stay within the rate: evenly spaced requests and no 429', async () => {
    const { code, summary } = await sync(['--datasets', 'logs', '--rate', '300', '--concurrency', '8'], paced);
    expect(code).toBe(0);
    expect(summary?.copied).toBe(8);
    const api = paced.requests.filter((r) => r.kind === 'api');
    expect(api.filter((r) => r.status === 429)).toEqual([]);
    const gaps = api.slice(1).map((r, i) => r.at - (api[i] as { at: number }).at);
    // 300/min is one request per 200 ms. Arrival times at the server jitter by a few ms on a busy machine, so the
    // spacing is checked on average and, per gap, against a floor that an unpaced client (gaps of ~0 ms) misses.
    const meanGap = ((api.at(-1) as { at: number }).at - (api[0] as { at: number }).at) / gaps.length;
    expect(meanGap).toBeGreaterThanOrEqual(190);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(120);
  });
});

describe('pending hours', () => {
  let clock = Date.now();
  const late = new LocalyticsSimulator({ ratePerMinute: 6000, now: () => clock, readyLagMs: 30 * 60_000 });
  beforeEach(() => late.start());
  afterEach(() => late.stop());

  test('hours that answer 404 are pending, exit 0, and a later run copies them', async () => {
    const current = floorHour(Date.now());
    clock = current + 10 * 60_000;
    const window = ['--from', formatHour(current - 2 * HOUR_MS), '--to', formatHour(current), '--datasets', 'logs'];
    const args = [
      'sync',
      '--dest',
      `s3://${bucket}/lake`,
      '--api-url',
      late.url,
      '--apps',
      late.dataset.apps[0] as string,
      '--rate',
      '6000',
      '--json',
      ...window,
    ];
    const first = await runCli(args, { ...credentialEnv, ...s3Environment() }, () => clock);
    expect(first.code).toBe(0);
    const firstSummary = JSON.parse(first.stdout) as SyncSummary;
    expect(firstSummary.copied).toBe(1);
    expect(firstSummary.pending).toEqual([`log_hour/${late.dataset.apps[0]}/${formatHour(current - HOUR_MS)}`]);

    clock = current + 45 * 60_000;
    const second = await runCli(args, { ...credentialEnv, ...s3Environment() }, () => clock);
    expect(JSON.parse(second.stdout)).toMatchObject({ copied: 1, pending: [], present: 1 });
  });
});
