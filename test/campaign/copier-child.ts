/**
 * A copier "container" in its own process, so that the campaign can kill it with SIGKILL mid-copy. It drains the
 * queue like Lambda's event source would, with the environment the parent gives it.
 */
import { DeleteMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createCopierHandler } from '../../functions/handlers/copier.js';
import { createRuntime } from '../../functions/handlers/runtime.js';
import { lambdaContext, receiveAll, toSqsEvent } from '../support/sqs.js';

const queueUrl = process.env.QUEUE_URL as string;
const sqs = new SQSClient({
  endpoint: process.env.AWS_ENDPOINT_URL_SQS,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  useQueueUrlAsEndpoint: false,
});
const runtime = createRuntime(process.env);
const copier = createCopierHandler(() => runtime);
for (let idle = 0; idle < 20; ) {
  const messages = await receiveAll(sqs, queueUrl, 5);
  if (messages.length === 0) {
    idle++;
    await new Promise((resolve) => setTimeout(resolve, 100));
    continue;
  }
  const response = await copier(toSqsEvent(messages, 'arn:aws:sqs:us-east-1:000000000000:jobs'), lambdaContext());
  const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
  for (const message of messages) {
    if (!failed.has(message.MessageId as string)) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle as string }));
    }
  }
}
