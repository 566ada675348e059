import { expect, test } from 'vitest';
import type { CopyOutcome } from '../../functions/core/copy-job.js';
import type { SyncJob } from '../../functions/core/jobs.js';
import { runJobs } from '../../functions/core/run-jobs.js';

const noWait = { now: () => 0, sleep: async () => {} };
const jobs: SyncJob[] = Array.from({ length: 5 }, (_, i) => ({
  kind: 'log_hour',
  appUuid: 'a-b',
  hour: i * 3_600_000,
}));
const copied = (key: string): CopyOutcome => ({
  status: 'copied',
  key,
  bytes: 1,
  servedBytes: 1,
  malformedRows: 0,
  rows: 1,
  warnings: [],
  apiRequests: 1,
  downloads: 1,
});

test('a throttled job goes back in the queue and still ends with exactly one report', async () => {
  const calls = new Map<number, number>();
  const reports = await runJobs(jobs, {
    concurrency: 3,
    clock: noWait,
    copy: async (job) => {
      const hour = (job as { hour: number }).hour;
      const n = (calls.get(hour) ?? 0) + 1;
      calls.set(hour, n);
      return n <= 2 ? { status: 'throttled', retryAfterMs: 10, apiRequests: 1 } : copied(String(hour));
    },
  });
  expect(reports).toHaveLength(5);
  expect(reports.every((report) => report.outcome.status === 'copied' && report.attempts === 3)).toBe(true);
});

test('a retryable failure is retried up to maxAttempts, then reported with its reason', async () => {
  let calls = 0;
  const reports = await runJobs(jobs.slice(0, 1), {
    concurrency: 2,
    clock: noWait,
    maxAttempts: 3,
    copy: async () => {
      calls++;
      return { status: 'failed', reason: 'file host answered 503', retryable: true, apiRequests: 1, downloads: 1 };
    },
  });
  expect(calls).toBe(3);
  expect(reports[0]?.outcome).toMatchObject({ status: 'failed', reason: 'file host answered 503' });
});

test('a permanent failure is not retried', async () => {
  let calls = 0;
  await runJobs(jobs.slice(0, 1), {
    concurrency: 1,
    clock: noWait,
    copy: async () => {
      calls++;
      return { status: 'failed', reason: '403', retryable: false, apiRequests: 1, downloads: 0 };
    },
  });
  expect(calls).toBe(1);
});

test('never runs more jobs at once than the concurrency', async () => {
  let inFlight = 0;
  let peak = 0;
  await runJobs(jobs, {
    concurrency: 2,
    copy: async (job) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      return copied(String((job as { hour: number }).hour));
    },
  });
  expect(peak).toBe(2);
});

test('a job throttled maxThrottles times is reported failed (kept for the next run), not dropped', async () => {
  const reports = await runJobs(jobs.slice(0, 1), {
    concurrency: 1,
    clock: noWait,
    maxThrottles: 4,
    copy: async () => ({ status: 'throttled', retryAfterMs: 1, apiRequests: 1 }),
  });
  expect(reports[0]?.outcome).toMatchObject({ status: 'failed', retryable: true });
  expect(reports[0]?.attempts).toBe(4);
});

test('a copy function that throws still yields one failed report instead of a hung run', async () => {
  const reports = await runJobs(jobs.slice(0, 2), {
    concurrency: 2,
    clock: noWait,
    copy: async () => {
      throw new Error('bug');
    },
  });
  expect(reports.map((report) => report.outcome)).toMatchObject([
    { status: 'failed', reason: 'bug' },
    { status: 'failed', reason: 'bug' },
  ]);
});

test('after an abort, jobs not started yet are reported interrupted, not run', async () => {
  const controller = new AbortController();
  let calls = 0;
  const reports = await runJobs(jobs, {
    concurrency: 1,
    clock: noWait,
    signal: controller.signal,
    copy: async (job) => {
      calls++;
      controller.abort();
      return copied(String((job as { hour: number }).hour));
    },
  });
  expect(calls).toBe(1);
  expect(reports.filter((report) => report.outcome.status === 'interrupted')).toHaveLength(4);
});
