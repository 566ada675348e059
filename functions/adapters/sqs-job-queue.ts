import {
  ChangeMessageVisibilityCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { EnqueueError } from '../core/errors.js';
import { type JobMessage, serializeJobMessage } from '../core/job-message.js';
import { jobId } from '../core/jobs.js';
import type { JobQueue } from '../core/process-job.js';
import { describeError } from '../core/redact.js';

const BATCH = 10;
const SEND_ATTEMPTS = 3;

/** The `JobQueue` on SQS: the work queue, and its dead-letter queue for parked jobs (with their reason). */
export class SqsJobQueue implements JobQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    private readonly deadLetterQueueUrl: string,
  ) {}

  /** Send in batches of 10; entries SQS refuses are sent again, and a job that still cannot be sent is an error. */
  async enqueue(messages: readonly JobMessage[], options: { readonly delaySeconds?: number } = {}): Promise<void> {
    const delaySeconds = Math.max(0, Math.min(900, Math.round(options.delaySeconds ?? 0)));
    for (let start = 0; start < messages.length; start += BATCH) {
      let pending = messages.slice(start, start + BATCH).map((message, index) => ({ id: String(index), message }));
      for (let attempt = 1; pending.length > 0; attempt++) {
        const response = await this.client.send(
          new SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: pending.map(({ id, message }) => ({
              Id: id,
              MessageBody: serializeJobMessage(message),
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
            `could not enqueue ${pending.length} job(s) (${pending.map(({ message }) => jobId(message.job)).join(', ')}): ${reasons}`,
            [...pending.map(({ message }) => message), ...messages.slice(start + BATCH)],
          );
        }
      }
    }
  }

  async requeue(message: JobMessage, delaySeconds: number): Promise<void> {
    const next: JobMessage = { ...message, requeues: message.requeues + 1 };
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: serializeJobMessage(next),
        DelaySeconds: Math.max(0, Math.min(900, Math.round(delaySeconds))),
      }),
    );
  }

  async park(body: string, reason: string): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.deadLetterQueueUrl,
        MessageBody: body,
        MessageAttributes: {
          failureReason: { DataType: 'String', StringValue: reason.slice(0, 1000) },
          parkedAt: { DataType: 'String', StringValue: new Date().toISOString() },
        },
      }),
    );
  }

  /** Keep a message invisible for `seconds` (backoff before SQS delivers it again). Best effort. */
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
