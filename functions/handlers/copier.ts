import type { SQSRecord } from 'aws-lambda';
import { floorHour, HOUR_MS } from '../core/hours.js';
import { settleLedgerEntry } from '../core/job-ledger.js';
import { type JobMessage, parseJobMessage } from '../core/job-message.js';
import { dataKey } from '../core/jobs.js';
import { processJobMessage } from '../core/process-job.js';
import { describeError } from '../core/redact.js';
import { type Runtime, runtime } from './runtime.js';
import { createSqsHandler } from './sqs-consumer.js';
import { recordJob } from './telemetry.js';

/** Stop copying this long before the function times out, so the job is handed back cleanly. */
const DEADLINE_MARGIN_MS = 30_000;

/** SQS consumer: one copy job per message, copied in parallel within a batch; partial batch responses. */
export function createCopierHandler(getRuntime: () => Runtime) {
  return createSqsHandler(getRuntime, {
    deadlineMarginMs: DEADLINE_MARGIN_MS,
    processInParallel: true,
    // The same job twice in a batch: copy it once (the key is the same, so this only saves a download).
    keyOf: (body) => {
      const job = messageOf(body)?.job;
      return job && dataKey(job);
    },
    async start(rt, invocation) {
      const source = await rt.source({ deadlineAt: invocation.deadlineAt });
      await rt.sweepAbandonedUploads(invocation.signal);
      return async (record: SQSRecord, receiveCount: number, signal: AbortSignal) => {
        const started = Date.now();
        const result = await processJobMessage(
          record.body,
          {
            source,
            sink: rt.sink,
            queue: rt.queue,
            logger: rt.logger,
            signal,
            // After this the invocation is over (Lambda's hard timeout): a change-set claim is held until then.
            holderDeadline: invocation.hardDeadlineAt,
            // A profile_changes request already sent may finish after the soft deadline, before the hard one.
            inFlightGraceMs: DEADLINE_MARGIN_MS - 5_000,
            afterCopy: rt.afterCopy,
          },
          {
            receiveCount,
            maxReceiveCount: rt.config.maxReceiveCount,
            now: Date.now(),
            notReadyDeadlineMs: rt.config.notReadyDeadlineHours * HOUR_MS,
            notReadyDelaySeconds: rt.config.notReadyDelaySeconds,
            retryBaseSeconds: rt.config.retryBaseSeconds,
            replannedFrom: nextHourlyWindowStart(rt.config, Date.now()),
          },
        );
        recordJob(rt.metrics, result, Date.now() - started);
        const settled = messageOf(record.body);
        if (settled) {
          // Every ledger entry expires on its own: a failed update delays a replan at worst, so it fails no job.
          await settleLedgerEntry(rt.ledger, settled, result, Date.now()).catch((error: unknown) =>
            rt.logger.error('job ledger update failed', { action: result.action, reason: describeError(error) }),
          );
        }
        return result;
      };
    },
  });
}

/** First hour the next hourly planner run (within the hour) will plan: hours from there on are asked again anyway. */
function nextHourlyWindowStart(config: { logLagHours: number; lookbackHours: number }, now: number): number {
  return floorHour(now + HOUR_MS - config.logLagHours * HOUR_MS) - config.lookbackHours * HOUR_MS;
}

function messageOf(body: string): JobMessage | undefined {
  try {
    return parseJobMessage(body);
  } catch {
    return undefined;
  }
}

export const handler = createCopierHandler(() => runtime());
