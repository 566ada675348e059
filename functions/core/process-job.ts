import { type CopyDependencies, type CopyOutcome, copyJob } from './copy-job.js';
import { HOUR_MS } from './hours.js';
import { type JobMessage, MalformedMessageError, parseJobMessage } from './job-message.js';
import { jobFields } from './jobs.js';
import { describeError } from './redact.js';

/** The queue of copy jobs (SQS in AWS). */
export interface JobQueue {
  /** Send new jobs (the planner), visible after `delaySeconds` (at most 900; default 0). */
  enqueue(messages: readonly JobMessage[], options?: { readonly delaySeconds?: number }): Promise<void>;
  /** Put a job back with a delay: not ready, throttled or out of time. Not a failure. */
  requeue(message: JobMessage, delaySeconds: number): Promise<void>;
  /** Park a job in the dead-letter queue with the reason it cannot be done. `body` is the raw message. */
  park(body: string, reason: string): Promise<void>;
}

export interface ProcessJobOptions {
  /** SQS's ApproximateReceiveCount of this delivery. */
  readonly receiveCount: number;
  /** The queue's redrive maxReceiveCount: the last delivery parks a still-failing job with its reason. */
  readonly maxReceiveCount: number;
  readonly now: number;
  /** A log hour still 404 this long after it ended is parked as a gap. Default 24 h. */
  readonly notReadyDeadlineMs?: number;
  /** Delay before a not-ready hour is tried again. Default 15 min (SQS's maximum). */
  readonly notReadyDelaySeconds?: number;
  /** First redelivery backoff of a retryable failure, doubled each delivery. Default 30 s. */
  readonly retryBaseSeconds?: number;
  /**
   * Log hours from this hour on will be planned again by the next hourly run: a not-ready one is left to it instead
   * of being requeued, so that one late hour never has several polling chains.
   */
  readonly replannedFrom?: number;
  /** Hand-backs at the copier's deadline before the job is parked (raise the copier timeout). Default 5. */
  readonly maxInterruptions?: number;
}

export type ProcessResult = { readonly apiRequests: number } & (
  | { readonly action: 'done'; readonly outcome: CopyOutcome }
  | {
      readonly action: 'requeued';
      /** `budget`: no request budget slot before the copier's deadline (never counted as an interruption). */
      readonly reason: 'not_ready' | 'throttled' | 'budget' | 'interrupted' | 'deferred';
      readonly delaySeconds: number;
    }
  | { readonly action: 'parked'; readonly reason: string }
  /** Not ready; the next hourly planner run asks again. Not a failure. */
  | { readonly action: 'left_for_planner' }
  /** Leave the message on the queue: SQS delivers it again after `visibilitySeconds`. */
  | { readonly action: 'retry'; readonly reason: string; readonly visibilitySeconds: number }
);

const MAX_SQS_DELAY_SECONDS = 900;

/**
 * The copier's use case: one queue message in, one decision out. Throttled, not ready and out-of-time jobs are
 * requeued with a delay (not failures); a retryable failure stays on the queue with a growing visibility timeout
 * (parked with its reason on the last delivery); a permanent failure is parked at once.
 */
export async function processJobMessage(
  body: string,
  deps: CopyDependencies & {
    readonly queue: JobQueue;
    /**
     * Called with the data key once the file is at the destination (copied, or found there): hands it on, e.g. to
     * the Parquet converter's queue. A failure makes the job a retryable failure, so the hand-off is retried with it.
     */
    readonly afterCopy?: (key: string) => Promise<void>;
  },
  options: ProcessJobOptions,
): Promise<ProcessResult> {
  let message: JobMessage;
  try {
    message = parseJobMessage(body);
  } catch (error) {
    const reason = error instanceof MalformedMessageError ? error.message : 'message could not be read';
    await deps.queue.park(body, reason);
    deps.logger.error('job parked', { reason });
    return { action: 'parked', reason, apiRequests: 0 };
  }

  let outcome = await copyJob(message.job, deps);
  const apiRequests = 'apiRequests' in outcome ? outcome.apiRequests : 0;
  if ((outcome.status === 'copied' || outcome.status === 'present') && deps.afterCopy) {
    try {
      await deps.afterCopy(outcome.key);
    } catch (error) {
      const reason = `copied, but could not be handed on: ${describeError(error)}`;
      outcome = { status: 'failed', reason, retryable: true, apiRequests, downloads: 0 };
    }
  }
  const fields = jobFields(message.job);
  switch (outcome.status) {
    case 'copied':
    case 'present':
      return { action: 'done', outcome, apiRequests };
    case 'not_ready': {
      const job = message.job;
      const deadline = options.notReadyDeadlineMs ?? 24 * HOUR_MS;
      if (job.kind === 'log_hour' && options.now - (job.hour + HOUR_MS) > deadline) {
        const reason = `log hour still not available (404) ${Math.round(deadline / HOUR_MS)} h after it ended`;
        await deps.queue.park(JSON.stringify(message), reason);
        deps.logger.error('job parked', { ...fields, reason });
        return { action: 'parked', reason, apiRequests };
      }
      if (job.kind === 'log_hour' && options.replannedFrom !== undefined && job.hour >= options.replannedFrom) {
        return { action: 'left_for_planner', apiRequests };
      }
      const delaySeconds = options.notReadyDelaySeconds ?? MAX_SQS_DELAY_SECONDS;
      await deps.queue.requeue(message, delaySeconds);
      return { action: 'requeued', reason: 'not_ready', delaySeconds, apiRequests };
    }
    case 'throttled': {
      const delaySeconds = Math.min(MAX_SQS_DELAY_SECONDS, Math.max(1, Math.ceil(outcome.retryAfterMs / 1000)));
      await deps.queue.requeue(message, delaySeconds);
      return { action: 'requeued', reason: outcome.byBudget ? 'budget' : 'throttled', delaySeconds, apiRequests };
    }
    case 'deferred': {
      // Another run holds the job (a change set being requested): come back when its claim is settled or stale.
      const delaySeconds = Math.min(MAX_SQS_DELAY_SECONDS, Math.max(1, Math.ceil(outcome.retryAfterMs / 1000)));
      await deps.queue.requeue(message, delaySeconds);
      return { action: 'requeued', reason: 'deferred', delaySeconds, apiRequests };
    }
    case 'interrupted': {
      const interruptions = (message.interruptions ?? 0) + 1;
      const limit = options.maxInterruptions ?? 5;
      if (interruptions >= limit) {
        const reason = `could not be copied within the copier's timeout ${interruptions} times: raise copierTimeoutMinutes`;
        await deps.queue.park(JSON.stringify(message), reason);
        deps.logger.error('job parked', { ...fields, reason });
        return { action: 'parked', reason, apiRequests };
      }
      await deps.queue.requeue({ ...message, interruptions }, 0);
      return { action: 'requeued', reason: 'interrupted', delaySeconds: 0, apiRequests };
    }
    case 'failed': {
      if (!outcome.retryable || options.receiveCount >= options.maxReceiveCount) {
        const reason = outcome.retryable
          ? `${outcome.reason} (after ${options.receiveCount} deliveries)`
          : outcome.reason;
        await deps.queue.park(JSON.stringify(message), reason);
        deps.logger.error('job parked', { ...fields, reason });
        return { action: 'parked', reason, apiRequests };
      }
      // Exponential backoff across deliveries: 30 s, 60 s, 120 s, ...
      const base = options.retryBaseSeconds ?? 30;
      const visibilitySeconds = Math.min(43_200, base * 2 ** Math.max(0, options.receiveCount - 1));
      return { action: 'retry', reason: outcome.reason, visibilitySeconds, apiRequests };
    }
  }
}
