import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type ConversionMessage, type ConversionQueue, newConversionMessage } from '../core/conversion-job.js';
import { SqsJobQueue } from './sqs-job-queue.js';

/** The copier's side of the converter's queue: one message per data object at the destination. */
export function sqsConversionEnqueuer(client: SQSClient, queueUrl: string): (key: string) => Promise<void> {
  return async (key) => {
    await client.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(newConversionMessage(key)) }),
    );
  };
}

/**
 * The Parquet converter's queue on SQS. Parking (dead-letter queue with a `failureReason` attribute) and redelivery
 * backoff are the copy-job queue's, on this queue's URLs.
 */
export class SqsConversionQueue implements ConversionQueue {
  private readonly parking: SqsJobQueue;

  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    deadLetterQueueUrl: string,
  ) {
    this.parking = new SqsJobQueue(client, queueUrl, deadLetterQueueUrl);
  }

  async enqueue(message: ConversionMessage): Promise<void> {
    await this.send(message, 0);
  }

  async requeue(message: ConversionMessage, delaySeconds: number): Promise<void> {
    await this.send(message, delaySeconds);
  }

  private async send(message: ConversionMessage, delaySeconds: number): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(message),
        DelaySeconds: Math.max(0, Math.min(900, Math.round(delaySeconds))),
      }),
    );
  }

  park(body: string, reason: string): Promise<void> {
    return this.parking.park(body, reason);
  }

  /** Keep a message invisible for `seconds` (backoff before SQS delivers it again). Best effort. */
  delayRedelivery(receiptHandle: string, seconds: number): Promise<string | undefined> {
    return this.parking.delayRedelivery(receiptHandle, seconds);
  }
}
