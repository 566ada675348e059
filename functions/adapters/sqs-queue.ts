import {
  ChangeMessageVisibilityCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type ConversionMessage, newConversionMessage } from '../core/conversion-job.js';
import { EnqueueError } from '../core/errors.js';
import { type JobMessage, serializeJobMessage } from '../core/job-message.js';
import { jobId } from '../core/jobs.js';
import type { JobQueue } from '../core/process-job.js';
import { describeError } from '../core/redact.js';

const BATCH = 10;
const SEND_ATTEMPTS = 3;
const MAX_DELAY_SECONDS = 900;

export interface SqsQueueUrls {
  readonly queueUrl: string;
  /** Where `park` sends; a producer that never parks (the copier sending conversions) has none. */
  readonly deadLetterQueueUrl?: string;
}

/** How a queue's messages are written, and named in an error. */
export interface MessageCodec<Message> {
  serialize(message: Message): string;
  describe(message: Message): string;
}

/**
 * A work queue on SQS and its dead-letter queue: send (in batches), hand back with a delay, park with the reason
 * (the `failureReason` message attribute), and keep a delivered message invisible for a while (redelivery backoff).
 * One class for the copier's jobs and the converter's conversions.
 */
export class SqsQueue<Message> {
  constructor(
    private readonly client: SQSClient,
    private readonly urls: SqsQueueUrls,
    private readonly codec: MessageCodec<Message>,
  ) {}

  private get queueUrl(): string {
    return this.urls.queueUrl;
  }

  /** Send in batches of 10; entries SQS refuses are sent again, and a message that still cannot be sent is an error. */
  async enqueue(messages: readonly Message[], options: { readonly delaySeconds?: number } = {}): Promise<void> {
    const delaySeconds = clampDelay(options.delaySeconds ?? 0);
    for (let start = 0; start < messages.length; start += BATCH) {
      let pending = messages.slice(start, start + BATCH).map((message, index) => ({ id: String(index), message }));
      for (let attempt = 1; pending.length > 0; attempt++) {
        const response = await this.client.send(
          new SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: pending.map(({ id, message }) => ({
              Id: id,
              MessageBody: this.codec.serialize(message),
              DelaySeconds: delaySeconds,
            })),
          }),
        );
        const failedIds = new Set((response.Failed ?? []).map((entry) => entry.Id));
        pending = pending.filter(({ id }) => failedIds.has(id));
        if (pending.length > 0 && attempt >= SEND_ATTEMPTS) {
          const reasons = (response.Failed ?? []).map((entry) => entry.Message ?? entry.Code).join('; ');
          // The rest of this batch was sent; later batches were not tried.
          throw new EnqueueError(
            `could not enqueue ${pending.length} message(s) (${pending.map(({ message }) => this.codec.describe(message)).join(', ')}): ${reasons}`,
            [...pending.map(({ message }) => message), ...messages.slice(start + BATCH)],
          );
        }
      }
    }
  }

  /** Send one message, visible after `delaySeconds`. */
  async send(message: Message, delaySeconds = 0): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: this.codec.serialize(message),
        DelaySeconds: clampDelay(delaySeconds),
      }),
    );
  }

  requeue(message: Message, delaySeconds: number): Promise<void> {
    return this.send(message, delaySeconds);
  }

  async park(body: string, reason: string): Promise<void> {
    if (this.urls.deadLetterQueueUrl === undefined) {
      throw new Error(`${this.urls.queueUrl}: no dead-letter queue was given to park a message in`);
    }
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.urls.deadLetterQueueUrl,
        MessageBody: body,
        MessageAttributes: {
          failureReason: { DataType: 'String', StringValue: reason.slice(0, 1000) },
          parkedAt: { DataType: 'String', StringValue: new Date().toISOString() },
        },
      }),
    );
  }

  /** Keep a message invisible for `seconds` (backoff before SQS delivers it again). Best effort: answers the error. */
  async delayRedelivery(receiptHandle: string, seconds: number): Promise<string | undefined> {
    try {
      await this.client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: this.queueUrl,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: seconds,
        }),
      );
      return undefined;
    } catch (error) {
      return describeError(error);
    }
  }
}

function clampDelay(seconds: number): number {
  return Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.round(seconds)));
}

const jobCodec: MessageCodec<JobMessage> = {
  serialize: serializeJobMessage,
  describe: (message) => jobId(message.job),
};

/** The copier's job queue on SQS. */
export class SqsJobQueue extends SqsQueue<JobMessage> implements JobQueue {
  constructor(client: SQSClient, queueUrl: string, deadLetterQueueUrl: string) {
    super(client, { queueUrl, deadLetterQueueUrl }, jobCodec);
  }
}

const conversionCodec: MessageCodec<ConversionMessage> = {
  serialize: (message) => JSON.stringify(message),
  describe: (message) => message.key,
};

/** The Parquet converter's queue on SQS (the copier sends to it, the converter consumes it). */
export class SqsConversionQueue extends SqsQueue<ConversionMessage> {
  constructor(client: SQSClient, urls: SqsQueueUrls) {
    super(client, urls, conversionCodec);
  }

  /** Hand a data object at the destination to the converter. */
  convertLater(key: string): Promise<void> {
    return this.send(newConversionMessage(key));
  }
}
