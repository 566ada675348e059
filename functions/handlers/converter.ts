import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { processConversionMessage } from '../core/conversion-job.js';
import { type ConverterRuntime, converterRuntime } from './converter-runtime.js';
import { recordConversion } from './telemetry.js';

/** Stop converting this long before the function times out, so the conversion is handed back cleanly. */
const DEADLINE_MARGIN_MS = 60_000;

class RetryLaterError extends Error {
  override readonly name = 'RetryLaterError';
}

/** SQS consumer: one JSON data object per message, converted to its Parquet twin; partial batch responses. */
export function createConverterHandler(getRuntime: () => ConverterRuntime) {
  const processor = new BatchProcessor(EventType.SQS);
  return async (event: SQSEvent, context: Context) => {
    const rt = getRuntime();
    await rt.cleanScratch();
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(),
      Math.max(0, context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS),
    );
    const recordHandler = async (record: SQSRecord) => {
      const started = Date.now();
      const result = await processConversionMessage(
        record.body,
        { ...rt.deps, queue: rt.queue, signal: deadline.signal },
        {
          receiveCount: Number(record.attributes.ApproximateReceiveCount ?? 1),
          maxReceiveCount: rt.config.maxReceiveCount,
          retryBaseSeconds: rt.config.retryBaseSeconds,
        },
      );
      recordConversion(rt.metrics, result, Date.now() - started);
      if (result.action === 'retry') {
        await rt.queue.delayRedelivery(record.receiptHandle, result.visibilitySeconds);
        throw new RetryLaterError(result.reason);
      }
      return result.action;
    };
    try {
      // One file at a time: the encoder has the function's memory and cores to itself.
      return await processPartialResponse(event, recordHandler, processor, {
        context,
        throwOnFullBatchFailure: false,
        processInParallel: false,
      });
    } finally {
      clearTimeout(timer);
      rt.metrics.publishStoredMetrics();
    }
  };
}

export const handler = createConverterHandler(() => converterRuntime());
