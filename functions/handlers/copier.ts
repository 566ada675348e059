import { setMaxListeners } from 'node:events';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { abortScope } from '../core/abort-scope.js';
import { floorHour, HOUR_MS } from '../core/hours.js';
import { settleLedgerEntry } from '../core/job-ledger.js';
import { parseJobMessage } from '../core/job-message.js';
import { dataKey, type SyncJob } from '../core/jobs.js';
import { processJobMessage } from '../core/process-job.js';
import { describeError } from '../core/redact.js';
import { type Runtime, runtime } from './runtime.js';
import { recordJob } from './telemetry.js';

/** Stop copying this long before the function times out, so the job is handed back cleanly. */
const DEADLINE_MARGIN_MS = 30_000;

class RetryLaterError extends Error {
  override readonly name = 'RetryLaterError';
}

/** SQS consumer: one copy job per message, partial batch responses. */
export function createCopierHandler(getRuntime: () => Runtime) {
  const processor = new BatchProcessor(EventType.SQS);
  return async (event: SQSEvent, context: Context) => {
    const rt = getRuntime();
    const deadlineAt = Date.now() + context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS;
    const source = await rt.source({ deadlineAt });
    const deadline = new AbortController();
    // One scope per record listens to it (see below): at most a batch of them at once.
    setMaxListeners(event.Records.length + 10, deadline.signal);
    // After this the invocation is over (Lambda's hard timeout): a change-set claim is held until then.
    const holderDeadline = Date.now() + context.getRemainingTimeInMillis();
    const timer = setTimeout(() => deadline.abort(), Math.max(0, deadlineAt - Date.now()));
    await rt.sweepAbandonedUploads(deadline.signal);
    // SQS may deliver one job twice in a batch: copy it once (the key is the same, so this only saves a download).
    const firstRecordOfJob = new Map<string, string>();
    for (const record of event.Records) {
      const job = jobKeyOf(record.body);
      if (job && !firstRecordOfJob.has(job)) firstRecordOfJob.set(job, record.messageId);
    }
    const recordHandler = async (record: SQSRecord) => {
      const job = jobKeyOf(record.body);
      if (job && firstRecordOfJob.get(job) !== record.messageId) return 'duplicate';
      const started = Date.now();
      // Each job's waits listen to a scope of its own, not all to the invocation's one signal.
      const scope = abortScope(deadline.signal);
      const result = await processJobMessage(
        record.body,
        {
          source,
          sink: rt.sink,
          queue: rt.queue,
          logger: rt.logger,
          signal: scope.signal,
          holderDeadline,
          // A profile_changes request already sent may finish after the soft deadline, before the hard one.
          inFlightGraceMs: DEADLINE_MARGIN_MS - 5_000,
          afterCopy: rt.afterCopy,
        },
        {
          receiveCount: Number(record.attributes.ApproximateReceiveCount ?? 1),
          maxReceiveCount: rt.config.maxReceiveCount,
          now: Date.now(),
          notReadyDeadlineMs: rt.config.notReadyDeadlineHours * HOUR_MS,
          notReadyDelaySeconds: rt.config.notReadyDelaySeconds,
          retryBaseSeconds: rt.config.retryBaseSeconds,
          replannedFrom: nextHourlyWindowStart(rt.config, Date.now()),
        },
      ).finally(() => scope.dispose());
      recordJob(rt.metrics, result, Date.now() - started);
      const settled = jobOf(record.body);
      if (settled) {
        // Every ledger entry expires on its own: a failed update delays a replan at worst, so it fails no job.
        await settleLedgerEntry(rt.ledger, settled, result, Date.now()).catch((error: unknown) =>
          rt.logger.error('job ledger update failed', { action: result.action, reason: describeError(error) }),
        );
      }
      if (result.action === 'retry') {
        await rt.queue.delayRedelivery(record.receiptHandle, result.visibilitySeconds);
        throw new RetryLaterError(result.reason);
      }
      return result.action;
    };
    try {
      return await processPartialResponse(event, recordHandler, processor, {
        context,
        throwOnFullBatchFailure: false,
        processInParallel: true,
      });
    } finally {
      clearTimeout(timer);
      rt.metrics.publishStoredMetrics();
    }
  };
}

/** First hour the next hourly planner run (within the hour) will plan: hours from there on are asked again anyway. */
function nextHourlyWindowStart(config: { logLagHours: number; lookbackHours: number }, now: number): number {
  return floorHour(now + HOUR_MS - config.logLagHours * HOUR_MS) - config.lookbackHours * HOUR_MS;
}

function jobOf(body: string): SyncJob | undefined {
  try {
    return parseJobMessage(body).job;
  } catch {
    return undefined;
  }
}

function jobKeyOf(body: string): string | undefined {
  const job = jobOf(body);
  return job && dataKey(job);
}

export const handler = createCopierHandler(() => runtime());
