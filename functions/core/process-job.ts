import { type CopyDependencies, type CopyOutcome, copyJob } from './copy-job.js';
import {
  type Delivery,
  type DeliveryQueue,
  type HandedBack,
  handBack,
  type Parked,
  park,
  parseOrPark,
  type Retry,
  settleFailure,
} from './delivery.js';
import { HOUR_MS } from './hours.js';
import { type JobMessage, parseJobMessage } from './job-message.js';
import { jobFields } from './jobs.js';
import { describeError } from './redact.js';

/** The queue of copy jobs (SQS in AWS). */
export interface JobQueue extends DeliveryQueue<JobMessage> {
  /** Send new jobs (the planner), visible after `delaySeconds` (at most 900; default 0). */
  enqueue(messages: readonly JobMessage[], options?: { readonly delaySeconds?: number }): Promise<void>;
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
      readonly reason: 'not_ready' | 'throttled' | 'budget' | 'deferred';
      readonly delaySeconds: number;
    }
  | HandedBack
  | Parked
  /** Not ready; the next hourly planner run asks again. Not a failure. */
  | { readonly action: 'left_for_planner' }
  | Retry
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
  const queue: DeliveryQueue<JobMessage> = {
    // Every hand-back counts: the message tells how often the job was put back.
    requeue: (message, delaySeconds) =>
      deps.queue.requeue({ ...message, requeues: message.requeues + 1 }, delaySeconds),
    park: (parkedBody, reason) => deps.queue.park(parkedBody, reason),
  };
  const delivery: Delivery<JobMessage> = { ...options, queue, logger: deps.logger, parkedLog: 'job parked' };
  const parsed = await parseOrPark(body, parseJobMessage, delivery);
  if (!('message' in parsed)) return { ...parsed, apiRequests: 0 };
  const { message } = parsed;
  const requeue = (delaySeconds: number) => queue.requeue(message, delaySeconds);

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
        return { ...(await park(JSON.stringify(message), reason, delivery, fields)), apiRequests };
      }
      if (job.kind === 'log_hour' && options.replannedFrom !== undefined && job.hour >= options.replannedFrom) {
        return { action: 'left_for_planner', apiRequests };
      }
      const delaySeconds = options.notReadyDelaySeconds ?? MAX_SQS_DELAY_SECONDS;
      await requeue(delaySeconds);
      return { action: 'requeued', reason: 'not_ready', delaySeconds, apiRequests };
    }
    case 'throttled': {
      const delaySeconds = Math.min(MAX_SQS_DELAY_SECONDS, Math.max(1, Math.ceil(outcome.retryAfterMs / 1000)));
      await requeue(delaySeconds);
      return { action: 'requeued', reason: outcome.byBudget ? 'budget' : 'throttled', delaySeconds, apiRequests };
    }
    case 'deferred': {
      // Another run holds the job (a change set being requested): come back when its claim is settled or stale.
      const delaySeconds = Math.min(MAX_SQS_DELAY_SECONDS, Math.max(1, Math.ceil(outcome.retryAfterMs / 1000)));
      await requeue(delaySeconds);
      return { action: 'requeued', reason: 'deferred', delaySeconds, apiRequests };
    }
    case 'interrupted': {
      const limit = options.maxInterruptions ?? 5;
      const tooOften = (times: number) =>
        `could not be copied within the copier's timeout ${times} times: raise copierTimeoutMinutes`;
      return { ...(await handBack(message, delivery, fields, limit, tooOften)), apiRequests };
    }
    case 'failed':
      return { ...(await settleFailure(message, outcome, delivery, fields)), apiRequests };
  }
}
