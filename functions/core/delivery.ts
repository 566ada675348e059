/**
 * The delivery rules both queue consumers (the copier's jobs, the converter's conversions) share: a message that
 * cannot be read is parked at once; work cut short by the consumer's deadline is handed back at once, and parked
 * once that happened too often; a retryable failure stays on the queue with a visibility timeout that doubles with
 * each delivery and is parked with its reason on the last one; a permanent failure is parked at once. Each consumer
 * keeps its own decisions (not ready, throttled, ...) and calls these for the rest.
 */
import { MalformedMessageError } from './job-message.js';
import type { Logger } from './ports.js';

/** What a consumer needs of its queue: hand a message back with a delay, or park it with its reason. */
export interface DeliveryQueue<Message> {
  /** Put a message back, visible after `delaySeconds` (at most 900). Not a failure. */
  requeue(message: Message, delaySeconds: number): Promise<void>;
  /** Park a message in the dead-letter queue with the reason it cannot be done. `body` is the raw message. */
  park(body: string, reason: string): Promise<void>;
}

export interface Delivery<Message> {
  readonly queue: DeliveryQueue<Message>;
  readonly logger: Logger;
  /** The fixed log message of a parked message: `job parked`, `conversion parked`. */
  readonly parkedLog: string;
  /** SQS's ApproximateReceiveCount of this delivery. */
  readonly receiveCount: number;
  /** The queue's redrive maxReceiveCount: the last delivery parks a still-failing message with its reason. */
  readonly maxReceiveCount: number;
  /** First redelivery backoff of a retryable failure, doubled each delivery. Default 30 s. */
  readonly retryBaseSeconds?: number;
}

export type Parked = { readonly action: 'parked'; readonly reason: string };
/** Leave the message on the queue: SQS delivers it again after `visibilitySeconds`. */
export type Retry = { readonly action: 'retry'; readonly reason: string; readonly visibilitySeconds: number };
export type HandedBack = { readonly action: 'requeued'; readonly reason: 'interrupted'; readonly delaySeconds: 0 };

/** Longest visibility timeout SQS accepts: 12 hours. */
const MAX_VISIBILITY_SECONDS = 43_200;

/** Parse a message body, or park it at once with the reason it is malformed (a redelivery cannot mend it). */
export async function parseOrPark<Message>(
  body: string,
  parse: (body: string) => Message,
  delivery: Delivery<Message>,
): Promise<{ readonly message: Message } | Parked> {
  try {
    return { message: parse(body) };
  } catch (error) {
    const reason = error instanceof MalformedMessageError ? error.message : 'message could not be read';
    return park(body, reason, delivery, {});
  }
}

/** Park a message with its reason, and log it. */
export async function park<Message>(
  body: string,
  reason: string,
  delivery: Delivery<Message>,
  fields: Readonly<Record<string, unknown>>,
): Promise<Parked> {
  await delivery.queue.park(body, reason);
  delivery.logger.error(delivery.parkedLog, { ...fields, reason });
  return { action: 'parked', reason };
}

/**
 * Work cut short by the consumer's deadline: handed back at once with its count of interruptions, and parked once
 * it reaches `limit` (`tooOften` says what to change), so that a file too large for the timeout cannot loop forever.
 */
export async function handBack<Message extends { readonly interruptions?: number }>(
  message: Message,
  delivery: Delivery<Message>,
  fields: Readonly<Record<string, unknown>>,
  limit: number,
  tooOften: (interruptions: number) => string,
): Promise<HandedBack | Parked> {
  const interruptions = (message.interruptions ?? 0) + 1;
  if (interruptions >= limit) return park(JSON.stringify(message), tooOften(interruptions), delivery, fields);
  await delivery.queue.requeue({ ...message, interruptions }, 0);
  return { action: 'requeued', reason: 'interrupted', delaySeconds: 0 };
}

/**
 * A failure: a permanent one, or a retryable one on its last delivery, is parked with its reason; a retryable one
 * before that stays on the queue, delivered again after 30 s, 60 s, 120 s, ... (exponential across deliveries).
 */
export async function settleFailure<Message>(
  message: Message,
  failure: { readonly reason: string; readonly retryable: boolean },
  delivery: Delivery<Message>,
  fields: Readonly<Record<string, unknown>>,
): Promise<Retry | Parked> {
  if (!failure.retryable || delivery.receiveCount >= delivery.maxReceiveCount) {
    const reason = failure.retryable ? `${failure.reason} (after ${delivery.receiveCount} deliveries)` : failure.reason;
    return park(JSON.stringify(message), reason, delivery, fields);
  }
  const base = delivery.retryBaseSeconds ?? 30;
  const visibilitySeconds = Math.min(MAX_VISIBILITY_SECONDS, base * 2 ** Math.max(0, delivery.receiveCount - 1));
  return { action: 'retry', reason: failure.reason, visibilitySeconds };
}
