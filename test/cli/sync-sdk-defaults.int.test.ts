/**
 * Issue 18, item 1: a new user runs `sync` into an S3-compatible store that does not decode the SDK's aws-chunked
 * uploads (s3rver), with the SDK's defaults: no `AWS_REQUEST_CHECKSUM_CALCULATION`. The CLI runs as its own process
 * with nothing but the standard AWS SDK environment, as a user would start it. Everything must land exactly once
 * with the served bytes, and no wrong object may sit at a final key at any instant, a kill included.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { dataKey, type SyncJob } from '../../functions/core/jobs.js';
import type { SyncSummary } from '../../functions/core/sync.js';
import {
  audienceRows,
  latestGeneration,
  logRows,
  profileChangeRows,
  profileRows,
  serializeRows,
} from '../../functions/simulator/dataset.js';
import {
  createS3Client,
  createTestBucket,
  getObjectBytes,
  listAllKeys,
  S3RVER_CREDENTIALS,
  s3Endpoint,
} from '../support/s3.js';
import { type ProxiedRequest, S3RecordingProxy } from '../support/s3-proxy.js';
import { credentialEnv, useSimulator } from '../support/simulator.js';

const simulator = useSimulator();
const proxy = new S3RecordingProxy(s3Endpoint());
beforeAll(() => proxy.start());
afterAll(() => proxy.stop());

const s3 = createS3Client();
const to = floorHour(Date.now()) - 2 * HOUR_MS;
const from = to - 3 * HOUR_MS;

/** The standard AWS SDK environment of a new user of an S3-compatible store: an endpoint and credentials, no more. */
function userEnvironment(endpoint: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    ...credentialEnv,
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  };
}

function startSync(
  bucket: string,
  endpoint: string,
  extra: string[] = [],
): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.resolve('bin/localytics-sync.ts'),
      'sync',
      '--dest',
      `s3://${bucket}/lake`,
      '--api-url',
      simulator.url,
      '--apps',
      simulator.dataset.apps.join(','),
      '--from',
      formatHour(from),
      '--to',
      formatHour(to),
      '--rate',
      '6000',
      '--json',
      ...extra,
    ],
    { env: userEnvironment(endpoint), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const done = new Promise<number | null>((resolve) => child.once('exit', resolve)).then((code) => {
    Object.assign(result, { stdout, stderr });
    return code;
  });
  const result = { child, done, stdout: '', stderr: '' };
  return result;
}

async function sync(bucket: string, endpoint: string, extra: string[] = []) {
  const run = startSync(bucket, endpoint, extra);
  const code = await run.done;
  const { stdout, stderr } = run as unknown as { stdout: string; stderr: string };
  return { code, stderr, summary: stdout ? (JSON.parse(stdout) as SyncSummary) : undefined };
}

/** Every job of the window, by data key (change sets only with `profiles`). */
function expectedJobs(profiles = true): Map<string, SyncJob> {
  const generatedAt = latestGeneration(Date.now());
  const jobs: SyncJob[] = [];
  for (const appUuid of simulator.dataset.apps) {
    for (let hour = from; hour < to; hour += HOUR_MS) jobs.push({ kind: 'log_hour', appUuid, hour });
  }
  for (const audience of simulator.dataset.audiences) {
    for (const identifierType of audience.identifierTypes) {
      jobs.push({ kind: 'audience', audienceId: audience.audienceId, identifierType, generatedAt });
    }
  }
  for (const db of profiles ? simulator.dataset.profileDbs : []) {
    jobs.push({ kind: 'profile', profileDbId: db.profileDbId, generatedAt });
    jobs.push({ kind: 'profile_changes', profileDbId: db.profileDbId, generatedAt });
  }
  return new Map(jobs.map((job) => [dataKey(job), job]));
}

/** What the simulator served for a job, as the stored object holds it once inflated. */
function servedText(job: SyncJob, changeSet = 1): string {
  const dataset = simulator.dataset;
  switch (job.kind) {
    case 'log_hour':
      return serializeRows(logRows(dataset, job.appUuid, job.hour));
    case 'audience':
      return serializeRows(audienceRows(dataset, job.audienceId, job.identifierType, job.generatedAt));
    case 'profile':
      return serializeRows(profileRows(dataset, job.profileDbId, job.generatedAt));
    case 'profile_changes':
      return serializeRows(profileChangeRows(dataset, job.profileDbId, changeSet));
  }
}

/** Data objects under the prefix that do not hold what the simulator served (unreadable gzip included). */
async function wrongObjects(bucket: string, jobs: Map<string, SyncJob>): Promise<string[]> {
  const wrong: string[] = [];
  for (const key of await listAllKeys(s3, bucket, 'lake/')) {
    const relative = key.slice('lake/'.length);
    if (relative.startsWith('_state/')) continue;
    const job = jobs.get(relative);
    let text: string | undefined;
    try {
      text = gunzipSync(await getObjectBytes(s3, bucket, key)).toString();
    } catch {
      text = undefined;
    }
    if (!job || text !== servedText(job)) wrong.push(relative);
  }
  return wrong;
}

test('sync into s3rver with the SDK defaults lands every file once, with the served bytes, and nothing else', async () => {
  const bucket = await createTestBucket(s3);
  const jobs = expectedJobs();
  const first = await sync(bucket, s3Endpoint());
  expect(first.stderr).not.toMatch(/MaxListenersExceededWarning/);
  expect(first.code).toBe(0);
  expect(first.summary).toMatchObject({ copied: jobs.size, failed: [] });
  const keys = (await listAllKeys(s3, bucket, 'lake/')).map((key) => key.slice('lake/'.length));
  expect(keys.filter((key) => !key.startsWith('_state/')).sort()).toEqual([...jobs.keys()].sort());
  expect(await wrongObjects(bucket, jobs)).toEqual([]);
  // Nothing left of how the store was found out.
  expect(keys.filter((key) => key.startsWith('_state/'))).toEqual(['_state/exports_seen.json']);

  const second = await sync(bucket, s3Endpoint());
  expect(second.code).toBe(0);
  expect(second.summary).toMatchObject({ copied: 0, planned: 0, failed: [] });
});

test('no data object is ever sent in a framing the store keeps as data; a kill mid-run leaves nothing wrong', {
  timeout: 180_000,
}, async () => {
  const bucket = await createTestBucket(s3);
  // No profiles: a change set requested by the killed run would be held by its claim for minutes.
  const datasets = ['--datasets', 'logs,audiences'];
  const jobs = expectedJobs(false);
  const dataPut = (request: { operation: string; path: string }) =>
    request.operation === 'PutObject' &&
    request.path.startsWith(`/${bucket}/lake/`) &&
    !request.path.includes('/_state/');
  const logHourStored = (request: ProxiedRequest) =>
    dataPut(request) && request.path.includes('/raw_logs/') && request.status === 200;
  const mark = proxy.requests.length;
  const run = startSync(bucket, proxy.url, datasets);
  // SIGKILL as soon as the store answered the first log hour's PUT: whatever is at its key then, stays.
  const giveUp = Date.now() + 30_000;
  while (Date.now() < giveUp && !proxy.requests.slice(mark).some(logHourStored)) {
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  run.child.kill('SIGKILL');
  await run.done;
  expect(await wrongObjects(bucket, jobs)).toEqual([]);

  const rerun = await sync(bucket, proxy.url, datasets);
  expect(rerun.code).toBe(0);
  expect(await wrongObjects(bucket, jobs)).toEqual([]);
  const landed = (await listAllKeys(s3, bucket, 'lake/')).filter((key) => !key.includes('/_state/'));
  expect(landed).toHaveLength(jobs.size);
  // s3rver stores an aws-chunked body as it arrives, framing included: each such PUT of a data key, in either run,
  // was a wrong object at its final key until (at best) a later request removed it.
  const framed = proxy.requests
    .slice(mark)
    .filter((request) => dataPut(request) && request.contentEncoding?.includes('aws-chunked'))
    .map((request) => decodeURIComponent(request.path));
  expect(framed).toEqual([]);
  expect(proxy.openUploads()).toEqual([]);
});
