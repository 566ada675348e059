import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { HOUR_MS } from '../core/hours.js';
import { processJobMessage } from '../core/process-job.js';
import { runtime } from './runtime.js';

/** Stop copying this long before the function times out, so the job is handed back cleanly. */
const DEADLINE_MARGIN_MS = 30_000;

class RetryLaterError extends Error {
  override readonly name = 'RetryLaterError';
}

const processor = new BatchProcessor(EventType.SQS);

/** SQS consumer: one copy job per message, partial batch responses. */
export const handler = async (event: SQSEvent, context: Context) => {
  const rt = runtime();
  const source = await rt.source();
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(),
    Math.max(0, context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS),
  );
  const recordHandler = async (record: SQSRecord) => {
    const result = await processJobMessage(
      record.body,
      { source, sink: rt.sink, queue: rt.queue, logger: rt.logger, signal: deadline.signal },
      {
        receiveCount: Number(record.attributes.ApproximateReceiveCount ?? 1),
        maxReceiveCount: rt.config.maxReceiveCount,
        now: Date.now(),
        notReadyDeadlineMs: rt.config.notReadyDeadlineHours * HOUR_MS,
      },
    );
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
  }
};
