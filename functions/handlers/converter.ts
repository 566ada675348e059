import type { SQSRecord } from 'aws-lambda';
import { processConversionMessage } from '../core/conversion-job.js';
import { type ConverterRuntime, converterRuntime } from './converter-runtime.js';
import { createSqsHandler } from './sqs-consumer.js';
import { recordConversion } from './telemetry.js';

/** Stop converting this long before the function times out, so the conversion is handed back cleanly. */
const DEADLINE_MARGIN_MS = 60_000;

/** SQS consumer: one JSON data object per message, converted to its Parquet twin; partial batch responses. */
export function createConverterHandler(getRuntime: () => ConverterRuntime) {
  return createSqsHandler(getRuntime, {
    deadlineMarginMs: DEADLINE_MARGIN_MS,
    // One file at a time: the encoder has the function's memory and cores to itself.
    processInParallel: false,
    // SQS may deliver one conversion twice in a batch: convert it once.
    keyOf: (body) => body,
    async start(rt) {
      await rt.cleanScratch();
      return async (record: SQSRecord, receiveCount: number, signal: AbortSignal) => {
        const started = Date.now();
        const result = await processConversionMessage(
          record.body,
          { ...rt.deps, queue: rt.queue, signal },
          { receiveCount, maxReceiveCount: rt.config.maxReceiveCount, retryBaseSeconds: rt.config.retryBaseSeconds },
        );
        recordConversion(rt.metrics, result, Date.now() - started);
        return result;
      };
    },
  });
}

export const handler = createConverterHandler(() => converterRuntime());
