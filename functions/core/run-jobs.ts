import { backoffMs } from './backoff.js';
import type { CopyOutcome } from './copy-job.js';
import type { SyncJob } from './jobs.js';
import { type Clock, systemClock } from './request-budget.js';

export interface JobReport {
  readonly job: SyncJob;
  readonly outcome: CopyOutcome;
  /** Times the job was started (retries and requeues after throttling included). */
  readonly attempts: number;
}

export interface RunJobsOptions {
  readonly copy: (job: SyncJob) => Promise<CopyOutcome>;
  /** Jobs in flight at once. API calls are paced by the request budget whatever this is. */
  readonly concurrency: number;
  /** Runs of a job whose failure is retryable, before it is reported failed. Default 3. */
  readonly maxAttempts?: number;
  /** Times a job may be throttled before it is reported (it is never silently dropped). Default 30. */
  readonly maxThrottles?: number;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly onReport?: (report: JobReport) => void;
  /** When aborted, jobs not started yet are reported `interrupted` instead of being run. */
  readonly signal?: AbortSignal;
}

/**
 * Run copy jobs in process with bounded concurrency. A throttled job goes back in the queue (the budget is paused
 * meanwhile); a retryable failure is retried with backoff; each job ends with exactly one report.
 */
export async function runJobs(jobs: readonly SyncJob[], options: RunJobsOptions): Promise<JobReport[]> {
  const clock = options.clock ?? systemClock;
  const maxAttempts = options.maxAttempts ?? 3;
  const maxThrottles = options.maxThrottles ?? 30;
  const queue = jobs.map((job) => ({ job, attempts: 0, failures: 0, throttles: 0 }));
  const reports: JobReport[] = [];

  const finish = (job: SyncJob, outcome: CopyOutcome, attempts: number) => {
    const report = { job, outcome, attempts };
    reports.push(report);
    options.onReport?.(report);
  };

  const worker = async () => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      if (options.signal?.aborted) {
        finish(item.job, { status: 'interrupted', apiRequests: 0 }, item.attempts);
        continue;
      }
      item.attempts++;
      const outcome = await safeCopy(options.copy, item.job);
      if (outcome.status === 'throttled') {
        item.throttles++;
        if (item.throttles >= maxThrottles) {
          finish(
            item.job,
            {
              status: 'failed',
              reason: `still throttled (429) after ${item.throttles} tries; run again later`,
              retryable: true,
              apiRequests: outcome.apiRequests,
              downloads: 0,
            },
            item.attempts,
          );
        } else {
          queue.push(item);
        }
        continue;
      }
      if (
        (outcome.status === 'failed' && outcome.retryable) ||
        (outcome.status === 'interrupted' && !options.signal?.aborted)
      ) {
        item.failures++;
        if (item.failures < maxAttempts) {
          await clock.sleep(backoffMs(item.failures - 1, { baseMs: 1000, random: options.random }), options.signal);
          queue.push(item);
          continue;
        }
      }
      finish(item.job, outcome, item.attempts);
    }
  };

  const workers = Math.max(1, Math.min(options.concurrency, queue.length));
  // Workers that find the queue empty stop; a requeued job is picked up by any worker still running. Keep all
  // workers alive until every job has a report.
  const total = queue.length;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (reports.length < total) {
        await worker();
        if (reports.length < total) await clock.sleep(50);
      }
    }),
  );
  return reports;
}

/** A copy function that throws (it should not) still yields one failed report instead of a hung run. */
async function safeCopy(copy: (job: SyncJob) => Promise<CopyOutcome>, job: SyncJob): Promise<CopyOutcome> {
  try {
    return await copy(job);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { status: 'failed', reason, retryable: false, apiRequests: 0, downloads: 0 };
  }
}
