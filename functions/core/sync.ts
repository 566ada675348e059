import { setMaxListeners } from 'node:events';
import { abortScope, withAbortScope } from './abort-scope.js';
import { type CopyDependencies, copyJob } from './copy-job.js';
import { formatHour, HOUR_MS } from './hours.js';
import { jobId, type SyncJob } from './jobs.js';
import { type Plan, type PlanRequest, planSync } from './planner.js';
import type { ExportSource, Logger, ObjectSink } from './ports.js';
import { type Clock, systemClock } from './request-budget.js';
import { type JobReport, runJobs } from './run-jobs.js';
import { sweepAbandonedUploads } from './upload-sweep.js';

export interface SyncOptions {
  readonly concurrency: number;
  /** A log hour still 404 this long after it ended is a reported gap (a failure), not pending. Default 24 h. */
  readonly notReadyDeadlineMs?: number;
  /** Ctrl-C: stop starting jobs, interrupt the ones in flight (their writes are aborted), still summarise. */
  readonly signal?: AbortSignal;
  readonly clock?: Clock;
  readonly onPlanned?: (plan: Plan) => void;
  readonly onReport?: (report: JobReport) => void;
  readonly copyOptions?: Partial<
    Pick<CopyDependencies, 'maxDownloadAttempts' | 'maxReResolves' | 'random' | 'checkJson'>
  >;
  readonly maxAttempts?: number;
}

export interface SyncFailure {
  readonly job: string;
  readonly reason: string;
}

export interface SyncSummary {
  readonly destination: string;
  readonly window: { readonly from: string; readonly to: string };
  readonly planned: number;
  readonly copied: number;
  /** Already at the destination (found while planning or just before copying). */
  readonly present: number;
  /** Log hours not ready yet (404): retried by the next run, never marked done. */
  readonly pending: readonly string[];
  readonly failed: readonly SyncFailure[];
  /** Log hours older than 30 days that are missing: Localytics deleted them. */
  readonly beyondRetention: number;
  readonly skipped: readonly { what: string; reason: string }[];
  readonly warnings: readonly string[];
  readonly bytes: number;
  readonly rows: number;
  readonly durationMs: number;
}

export interface SyncDependencies {
  readonly source: ExportSource;
  readonly sink: ObjectSink;
  readonly logger: Logger;
}

/** The `sync` use case: plan, copy every planned job, and summarise. */
export async function runSync(
  request: PlanRequest,
  deps: SyncDependencies,
  options: SyncOptions,
): Promise<SyncSummary> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  // The run's own signal, one listener on the caller's: every job listens through a scope of its own (one listener
  // on the run's, removed when the job ends), and its waits listen there. A run holds at most a job and a worker's
  // pause per slot of concurrency on it, which may pass Node's leak warning threshold of ten.
  const run = abortScope(options.signal);
  setMaxListeners(2 * options.concurrency + 10, run.signal);
  let reports: JobReport[];
  let plan: Plan;
  try {
    await sweepAbandonedUploads(deps.sink, deps.logger, run.signal);
    plan = await planSync({ ...request, signal: run.signal }, deps);
    options.onPlanned?.(plan);
    deps.logger.info('sync planned', { jobs: plan.jobs.length, beyondRetention: plan.beyondRetention.length });
    reports = await runJobs(plan.jobs, {
      concurrency: options.concurrency,
      clock,
      maxAttempts: options.maxAttempts,
      random: options.copyOptions?.random,
      onReport: options.onReport,
      signal: run.signal,
      copy: (job: SyncJob) =>
        withAbortScope(run.signal, undefined, (signal) =>
          copyJob(job, { ...deps, clock, checkExisting: true, signal, ...options.copyOptions }),
        ),
    });
  } finally {
    run.dispose();
  }
  const deadline = options.notReadyDeadlineMs ?? 24 * HOUR_MS;

  let copied = 0;
  let present = plan.present.logs + plan.present.audiences + plan.present.profiles;
  let bytes = 0;
  let rows = 0;
  const pending: string[] = [];
  const failed: SyncFailure[] = plan.listFailures.map((failure) => ({
    job: `list ${failure.endpoint}`,
    reason: failure.reason,
  }));
  const warnings: string[] = plan.exportConcerns.map((concern) => `${concern.export}: ${concern.detail}`);
  for (const { job, outcome } of reports) {
    switch (outcome.status) {
      case 'copied':
        copied++;
        bytes += outcome.bytes;
        rows += outcome.rows;
        for (const warning of outcome.warnings) warnings.push(`${jobId(job)}: ${warning}`);
        break;
      case 'present':
        present++;
        break;
      case 'not_ready':
        if (job.kind === 'log_hour' && request.now - (job.hour + HOUR_MS) > deadline) {
          failed.push({
            job: jobId(job),
            reason: `not available (404) ${Math.round(deadline / HOUR_MS)} h after the hour ended: no such app, log exports not set up, or a gap at Localytics`,
          });
        } else {
          pending.push(jobId(job));
        }
        break;
      case 'failed':
        failed.push({ job: jobId(job), reason: outcome.reason });
        break;
      case 'throttled':
        // runJobs requeues throttled jobs; it reports one only when it gives up on it.
        failed.push({ job: jobId(job), reason: 'throttled' });
        break;
      case 'interrupted':
        failed.push({ job: jobId(job), reason: 'interrupted before it finished; the next run copies it' });
        break;
      case 'deferred':
        // Another run (a deployment's copier, another CLI) is copying it: not ours to fail.
        pending.push(jobId(job));
        warnings.push(`${jobId(job)}: ${outcome.reason}; the next run picks it up`);
        break;
    }
  }
  return {
    destination: deps.sink.location,
    window: { from: formatHour(request.from), to: formatHour(request.to) },
    planned: plan.jobs.length,
    copied,
    present,
    pending,
    failed,
    beyondRetention: plan.beyondRetention.length,
    skipped: plan.skipped,
    warnings,
    bytes,
    rows,
    durationMs: clock.now() - started,
  };
}
