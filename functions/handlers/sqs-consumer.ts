import { setMaxListeners } from 'node:events';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { abortScope } from '../core/abort-scope.js';
import type { Retry } from '../core/delivery.js';

/** The record was not done and stays on the queue: SQS delivers it again once its visibility timeout ends. */
class RetryLaterError extends Error {
  override readonly name = 'RetryLaterError';
}

/** This invocation's deadlines: work stops at `signal` (the soft deadline), Lambda ends it at `hardDeadlineAt`. */
export interface Invocation {
  /** Aborted `deadlineMarginMs` before the function times out: every wait in flight ends, the work is handed back. */
  readonly signal: AbortSignal;
  /** Epoch ms of the soft deadline. */
  readonly deadlineAt: number;
  /** Epoch ms of Lambda's timeout: nothing of this invocation runs after it. */
  readonly hardDeadlineAt: number;
}

/** A record's outcome: an action name for the batch report, or a retry (left on the queue for `visibilitySeconds`). */
export type RecordResult = Retry | { readonly action: string };

export interface ConsumerRuntime {
  readonly metrics: Metrics;
  /** Keep a delivered message invisible for `seconds` (best effort). */
  readonly queue: { delayRedelivery(receiptHandle: string, seconds: number): Promise<string | undefined> };
}

export type RecordHandler = (record: SQSRecord, receiveCount: number, signal: AbortSignal) => Promise<RecordResult>;

export interface SqsConsumer<Runtime extends ConsumerRuntime> {
  /** Stop working this long before the function times out, so that a record is handed back cleanly. */
  readonly deadlineMarginMs: number;
  /** Records of a batch at once (the copier), or one after the other (the converter: one file at a time). */
  readonly processInParallel: boolean;
  /** Records of one batch with the same key are the same work (SQS may deliver a message twice): only the first runs. */
  readonly keyOf?: (body: string) => string | undefined;
  /**
   * Per invocation, before the first record: the record handler, with what it needs opened. The handler gets the
   * record's own `signal`, which aborts at the soft deadline.
   */
  start(runtime: Runtime, invocation: Invocation): Promise<RecordHandler>;
}

/**
 * An SQS-triggered handler with the rules every consumer of this project keeps: a soft deadline before Lambda's
 * timeout that aborts work in flight, partial batch responses (a failed record never fails the others), a record left
 * for redelivery with its own visibility timeout (the consumer's backoff), duplicate records of one batch handled once,
 * and metrics published however the invocation ends.
 */
export function createSqsHandler<Runtime extends ConsumerRuntime>(
  getRuntime: () => Runtime,
  consumer: SqsConsumer<Runtime>,
) {
  const processor = new BatchProcessor(EventType.SQS);
  return async (event: SQSEvent, context: Context) => {
    const runtime = getRuntime();
    const hardDeadlineAt = Date.now() + context.getRemainingTimeInMillis();
    const deadlineAt = hardDeadlineAt - consumer.deadlineMarginMs;
    const deadline = new AbortController();
    // One scope per record listens to it (see below): at most a batch of them at once.
    setMaxListeners(event.Records.length + 10, deadline.signal);
    const timer = setTimeout(() => deadline.abort(), Math.max(0, deadlineAt - Date.now()));
    try {
      const handle = await consumer.start(runtime, { signal: deadline.signal, deadlineAt, hardDeadlineAt });
      const firstRecordOfKey = new Map<string, string>();
      for (const record of event.Records) {
        const key = consumer.keyOf?.(record.body);
        if (key !== undefined && !firstRecordOfKey.has(key)) firstRecordOfKey.set(key, record.messageId);
      }
      const recordHandler = async (record: SQSRecord) => {
        const key = consumer.keyOf?.(record.body);
        if (key !== undefined && firstRecordOfKey.get(key) !== record.messageId) return 'duplicate';
        // Each record's waits listen to a scope of its own, not all to the invocation's one signal.
        const scope = abortScope(deadline.signal);
        const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? 1);
        const result = await handle(record, receiveCount, scope.signal).finally(() => scope.dispose());
        if ('visibilitySeconds' in result) {
          await runtime.queue.delayRedelivery(record.receiptHandle, result.visibilitySeconds);
          throw new RetryLaterError(result.reason);
        }
        return result.action;
      };
      return await processPartialResponse(event, recordHandler, processor, {
        context,
        throwOnFullBatchFailure: false,
        processInParallel: consumer.processInParallel,
      });
    } finally {
      clearTimeout(timer);
      runtime.metrics.publishStoredMetrics();
    }
  };
}
