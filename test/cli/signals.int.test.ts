/**
 * Issue 10, item 5: `sync` exits within 2 s of SIGINT or SIGTERM at any point — planning, a 429 pause, mid-upload —
 * with its summary, leaving no partial object and no open upload (a cron job or a container stop must not end in
 * SIGKILL). The CLI runs as its own process, as a user or a scheduler would start it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { dataKey } from '../../functions/core/jobs.js';
import type { SyncSummary } from '../../functions/core/sync.js';
import { createS3Client, createTestBucket, listAllKeys, s3Endpoint, s3Environment } from '../support/s3.js';
import { S3RecordingProxy } from '../support/s3-proxy.js';
import { credentialEnv, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator();
const proxy = new S3RecordingProxy(s3Endpoint());
beforeAll(() => proxy.start());
afterAll(() => proxy.stop());
afterEach(() => simulator.faults.clear());

const to = floorHour(Date.now()) - 2 * HOUR_MS;
const from = to - 2 * HOUR_MS;
const app = () => simulator.dataset.apps[0] as string;

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; at: number }>;
  stdout: string;
}

function startSync(dest: string, extra: string[], env: Record<string, string> = {}): Running {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.resolve('bin/localytics-sync.ts'),
      'sync',
      '--dest',
      dest,
      '--api-url',
      simulator.url,
      ...extra,
    ],
    { env: { PATH: process.env.PATH ?? '', ...credentialEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const running: Running = {
    child,
    stdout: '',
    exited: new Promise((resolve) => child.once('exit', (code) => resolve({ code, at: Date.now() }))),
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    running.stdout += chunk.toString();
  });
  child.stderr?.resume();
  return running;
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const giveUp = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Let the process get well into what it is doing (a 429's pause starts once the answer is read). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 500));

/** Send `signal` and answer how long the process took to exit, its code and its JSON summary. */
async function stop(running: Running, signal: NodeJS.Signals) {
  const sent = Date.now();
  running.child.kill(signal);
  const { code, at } = await running.exited;
  return { code, exitMs: at - sent, summary: JSON.parse(running.stdout) as SyncSummary };
}

test('SIGTERM while a throttled list waits out a 2-minute Retry-After: exits at once with its summary', async () => {
  simulator.faults.add({ kind: 'throttle', match: '/v1/exports/audiences', retryAfterSeconds: 120, count: 10 });
  const running = spawnSync(await tempDir(), ['--datasets', 'audiences']);
  await until(() => simulator.requests.some((r) => r.path === '/v1/exports/audiences' && r.status === 429), 'the 429');
  await settle();
  const { code, exitMs, summary } = await stop(running, 'SIGTERM');
  expect(exitMs).toBeLessThan(2_000);
  expect(code).toBe(1);
  expect(summary.failed).toEqual([
    { job: 'list /v1/exports/audiences', reason: expect.stringMatching(/gave up at the deadline/) },
  ]);
});

test('SIGINT during a 429 pause of the copies: exits at once with its summary', async () => {
  simulator.faults.add({ kind: 'throttle', match: '/v1/exports/analytics/logs/', retryAfterSeconds: 120, count: 10 });
  const running = spawnSync(await tempDir(), ['--datasets', 'logs', '--apps', app()]);
  await until(() => simulator.requests.some((r) => r.path.includes('/analytics/logs/') && r.status === 429), 'the 429');
  await settle();
  const { code, exitMs, summary } = await stop(running, 'SIGINT');
  expect(exitMs).toBeLessThan(2_000);
  expect(code).toBe(1);
  expect(summary.copied + summary.failed.length).toBe(summary.planned);
  expect(summary.failed.some((failure) => /interrupted/.test(failure.reason))).toBe(true);
});

test('SIGTERM mid-upload into S3: exits at once; no partial object and no open multipart upload', async () => {
  const bucket = await createTestBucket(createS3Client());
  simulator.setLargeHour(app(), from, 24 * 1024 * 1024);
  simulator.faults.add({ kind: 'slow', match: app(), delayMs: 20 });
  const running = spawnSync(`s3://${bucket}/lake`, ['--datasets', 'logs', '--apps', app(), '--concurrency', '1'], {
    ...s3Environment(),
    AWS_ENDPOINT_URL_S3: proxy.url,
  });
  const parts = proxy.count('UploadPart');
  await until(() => proxy.count('UploadPart') > parts, 'the first uploaded part');
  const { code, exitMs, summary } = await stop(running, 'SIGTERM');
  expect(exitMs).toBeLessThan(2_000);
  expect(code).toBe(1);
  expect(summary.failed.some((failure) => /interrupted/.test(failure.reason))).toBe(true);
  expect(proxy.openUploads()).toEqual([]);
  const interrupted = `lake/${dataKey({ kind: 'log_hour', appUuid: app(), hour: from })}`;
  expect(await listAllKeys(createS3Client(), bucket, interrupted)).toEqual([]);
});

function spawnSync(dest: string, extra: string[], env: Record<string, string> = {}): Running {
  return startSync(dest, [...window(), '--rate', '6000', '--json', ...extra], env);
}

function window(): string[] {
  return ['--from', formatHour(from), '--to', formatHour(to)];
}
