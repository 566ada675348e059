import * as z from 'zod/mini';
import { type ConvertDependencies, type ConvertOutcome, convertFile } from './convert-file.js';
import { MalformedMessageError } from './job-message.js';
import { parquetTargetOf } from './parquet-layer.js';
import './schema.js';

/** A conversion on the converter's queue: the JSON data object to convert. Versioned like the copy jobs. */
export interface ConversionMessage {
  readonly v: 1;
  /** The JSON data object, relative to the destination prefix. */
  readonly key: string;
  /** Times a converter ran out of time on it and handed it back. */
  readonly interruptions?: number;
}

const messageSchema = z.object({
  v: z.literal(1),
  key: z.string().check(z.refine((key) => parquetTargetOf(key) !== undefined, 'is not a data object of any table')),
  interruptions: z.optional(z.int().check(z.nonnegative())),
});

export function newConversionMessage(key: string): ConversionMessage {
  return { v: 1, key };
}

/** Parse and validate a queue message body; the key is checked before it can become a key to read or write. */
export function parseConversionMessage(body: string): ConversionMessage {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    throw new MalformedMessageError('message body is not JSON');
  }
  const result = messageSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new MalformedMessageError(
      `message is not a conversion: ${issue?.path.join('.') || 'body'} ${issue?.message ?? ''}`.trim(),
    );
  }
  return result.data as ConversionMessage;
}

/** The converter's queue (SQS in AWS): fed by the copier, one message per file copied. */
export interface ConversionQueue {
  enqueue(message: ConversionMessage): Promise<void>;
  /** Put a conversion back with a delay (out of time). Not a failure. */
  requeue(message: ConversionMessage, delaySeconds: number): Promise<void>;
  /** Park a conversion in the dead-letter queue with the reason it cannot be done. `body` is the raw message. */
  park(body: string, reason: string): Promise<void>;
}

export interface ProcessConversionOptions {
  /** SQS's ApproximateReceiveCount of this delivery. */
  readonly receiveCount: number;
  /** The queue's redrive maxReceiveCount: the last delivery parks a still-failing conversion with its reason. */
  readonly maxReceiveCount: number;
  /** First redelivery backoff of a retryable failure, doubled each delivery. Default 30 s. */
  readonly retryBaseSeconds?: number;
  /** Hand-backs at the converter's deadline before the conversion is parked. Default 3. */
  readonly maxInterruptions?: number;
}

export type ConversionResult =
  | { readonly action: 'done'; readonly outcome: ConvertOutcome }
  | { readonly action: 'requeued'; readonly reason: 'interrupted' }
  | { readonly action: 'parked'; readonly reason: string }
  /** Leave the message on the queue: SQS delivers it again after `visibilitySeconds`. */
  | { readonly action: 'retry'; readonly reason: string; readonly visibilitySeconds: number };

/**
 * The converter's use case: one queue message in, one decision out. Converted or already there: done. Out of time:
 * requeued at once (parked after `maxInterruptions`). A retryable failure stays on the queue with a growing
 * visibility timeout and is parked with its reason on the last delivery; a permanent one is parked at once.
 */
export async function processConversionMessage(
  body: string,
  deps: ConvertDependencies & { readonly queue: ConversionQueue },
  options: ProcessConversionOptions,
): Promise<ConversionResult> {
  let message: ConversionMessage;
  try {
    message = parseConversionMessage(body);
  } catch (error) {
    const reason = error instanceof MalformedMessageError ? error.message : 'message could not be read';
    await deps.queue.park(body, reason);
    deps.logger.error('conversion parked', { reason });
    return { action: 'parked', reason };
  }
  const outcome = await convertFile(message.key, deps);
  const fields = { jsonKey: message.key };
  switch (outcome.status) {
    case 'converted':
    case 'present':
      return { action: 'done', outcome };
    case 'interrupted': {
      const interruptions = (message.interruptions ?? 0) + 1;
      if (interruptions >= (options.maxInterruptions ?? 3)) {
        const reason = `could not be converted within the converter's timeout ${interruptions} times: raise the converter's timeout or memory`;
        await deps.queue.park(JSON.stringify(message), reason);
        deps.logger.error('conversion parked', { ...fields, reason });
        return { action: 'parked', reason };
      }
      await deps.queue.requeue({ ...message, interruptions }, 0);
      return { action: 'requeued', reason: 'interrupted' };
    }
    case 'failed': {
      if (!outcome.retryable || options.receiveCount >= options.maxReceiveCount) {
        const reason = outcome.retryable
          ? `${outcome.reason} (after ${options.receiveCount} deliveries)`
          : outcome.reason;
        await deps.queue.park(JSON.stringify(message), reason);
        deps.logger.error('conversion parked', { ...fields, reason });
        return { action: 'parked', reason };
      }
      const base = options.retryBaseSeconds ?? 30;
      const visibilitySeconds = Math.min(43_200, base * 2 ** Math.max(0, options.receiveCount - 1));
      return { action: 'retry', reason: outcome.reason, visibilitySeconds };
    }
  }
}
