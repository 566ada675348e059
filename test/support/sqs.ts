import { randomBytes } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { inject } from 'vitest';

export function sqsEndpoint(): string {
  return inject('sqsEndpoint');
}

export function createSqsClient(): SQSClient {
  return new SQSClient({
    endpoint: sqsEndpoint(),
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    useQueueUrlAsEndpoint: false,
  });
}

/** A work queue with a dead-letter queue, like the stack's (short visibility timeout so tests see redeliveries). */
export async function createJobQueues(
  sqs: SQSClient,
  options: { maxReceiveCount?: number; visibilitySeconds?: number } = {},
) {
  const name = `jobs-${randomBytes(4).toString('hex')}`;
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(options.visibilitySeconds ?? 2),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: options.maxReceiveCount ?? 3 }),
      },
    }),
  );
  return {
    queueUrl: queue.QueueUrl as string,
    dlqUrl: dlq.QueueUrl as string,
    queueArn: `${dlqArn}`.replace(/-dlq$/, ''),
  };
}

export async function queueDepth(sqs: SQSClient, queueUrl: string) {
  const attributes =
    (
      await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: [
            'ApproximateNumberOfMessages',
            'ApproximateNumberOfMessagesNotVisible',
            'ApproximateNumberOfMessagesDelayed',
          ],
        }),
      )
    ).Attributes ?? {};
  return {
    visible: Number(attributes.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(attributes.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

export async function receiveAll(sqs: SQSClient, queueUrl: string, max = 10): Promise<Message[]> {
  const response = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: max,
      WaitTimeSeconds: 0,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['All'],
    }),
  );
  return response.Messages ?? [];
}

export function toSqsEvent(messages: Message[], queueArn: string): SQSEvent {
  return {
    Records: messages.map(
      (message): SQSRecord => ({
        messageId: message.MessageId as string,
        receiptHandle: message.ReceiptHandle as string,
        body: message.Body as string,
        attributes: {
          ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1',
          SentTimestamp: message.Attributes?.SentTimestamp ?? String(Date.now()),
          SenderId: 'test',
          ApproximateFirstReceiveTimestamp: String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: message.MD5OfBody as string,
        eventSource: 'aws:sqs',
        eventSourceARN: queueArn,
        awsRegion: 'us-east-1',
      }),
    ),
  };
}

export function lambdaContext(remainingMs = 300_000): Context {
  const deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'copier',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:copier',
    memoryLimitInMB: '1024',
    awsRequestId: randomBytes(8).toString('hex'),
    logGroupName: '/aws/lambda/copier',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

export type CopierHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/**
 * What Lambda's SQS event source does, in small: receive a batch, invoke the handler, delete the messages it did not
 * report as failures. Runs until the queue has nothing visible or in flight (or the time limit).
 */
export async function pollUntilEmpty(
  sqs: SQSClient,
  queue: { queueUrl: string; queueArn: string },
  handler: CopierHandler,
  options: { batchSize?: number; timeoutMs?: number; remainingMs?: number } = {},
): Promise<{ invocations: number; failures: number }> {
  const end = Date.now() + (options.timeoutMs ?? 30_000);
  let invocations = 0;
  let failures = 0;
  while (Date.now() < end) {
    const messages = await receiveAll(sqs, queue.queueUrl, options.batchSize ?? 5);
    if (messages.length === 0) {
      const depth = await queueDepth(sqs, queue.queueUrl);
      if (depth.visible === 0 && depth.inFlight === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    invocations++;
    const response = await handler(toSqsEvent(messages, queue.queueArn), lambdaContext(options.remainingMs));
    const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
    failures += failed.size;
    const done = messages.filter((message) => !failed.has(message.MessageId as string));
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queue.queueUrl,
          Entries: done.map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle as string,
          })),
        }),
      );
    }
  }
  return { invocations, failures };
}
