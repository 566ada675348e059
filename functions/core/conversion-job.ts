import * as z from 'zod/mini';
import { type ConvertDependencies, type ConvertOutcome, convertFile } from './convert-file.js';
import {
  type Delivery,
  type DeliveryQueue,
  type HandedBack,
  handBack,
  type Parked,
  parseOrPark,
  type Retry,
  settleFailure,
} from './delivery.js';
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
export type ConversionQueue = DeliveryQueue<ConversionMessage>;

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
  | HandedBack
  | Parked
  | Retry;

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
  const delivery: Delivery<ConversionMessage> = {
    ...options,
    queue: deps.queue,
    logger: deps.logger,
    parkedLog: 'conversion parked',
  };
  const parsed = await parseOrPark(body, parseConversionMessage, delivery);
  if (!('message' in parsed)) return parsed;
  const { message } = parsed;
  const outcome = await convertFile(message.key, deps);
  const fields = { jsonKey: message.key };
  switch (outcome.status) {
    case 'converted':
    case 'present':
      return { action: 'done', outcome };
    case 'interrupted': {
      const tooOften = (times: number) =>
        `could not be converted within the converter's timeout ${times} times: raise the converter's timeout or memory`;
      return handBack(message, delivery, fields, options.maxInterruptions ?? 3, tooOften);
    }
    case 'failed':
      return settleFailure(message, outcome, delivery, fields);
  }
}
