import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { expect, test } from 'vitest';
import { type ConsumerRuntime, createSqsHandler, type Invocation } from '../../functions/handlers/sqs-consumer.js';

function runtime() {
  const delayed: { receiptHandle: string; seconds: number }[] = [];
  let published = 0;
  const rt: ConsumerRuntime = {
    metrics: { publishStoredMetrics: () => published++ } as unknown as Metrics,
    queue: {
      async delayRedelivery(receiptHandle, seconds) {
        delayed.push({ receiptHandle, seconds });
        return undefined;
      },
    },
  };
  return { rt, delayed, published: () => published };
}

function event(...bodies: string[]): SQSEvent {
  return {
    Records: bodies.map(
      (body, index) =>
        ({
          messageId: `m${index}`,
          receiptHandle: `r${index}`,
          body,
          attributes: { ApproximateReceiveCount: String(index + 1) },
          eventSource: 'aws:sqs',
        }) as unknown as SQSRecord,
    ),
  };
}

const context = (remainingMs: number) => ({ getRemainingTimeInMillis: () => remainingMs }) as unknown as Context;

test('a retried record is left on the queue with its visibility timeout; the others of the batch succeed', async () => {
  const { rt, delayed, published } = runtime();
  const seen: [string, number][] = [];
  const handler = createSqsHandler(() => rt, {
    deadlineMarginMs: 1_000,
    processInParallel: true,
    async start() {
      return async (record, receiveCount) => {
        seen.push([record.body, receiveCount]);
        return record.body === 'fails'
          ? { action: 'retry', reason: 'S3 503', visibilitySeconds: 60 }
          : { action: 'done' };
      };
    },
  });
  const response = await handler(event('a', 'fails', 'b'), context(60_000));
  expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'm1' }] });
  expect(delayed).toEqual([{ receiptHandle: 'r1', seconds: 60 }]);
  expect(seen).toEqual([
    ['a', 1],
    ['fails', 2],
    ['b', 3],
  ]);
  expect(published()).toBe(1);
});

test('the same work twice in one batch runs once', async () => {
  const { rt } = runtime();
  const handled: string[] = [];
  const handler = createSqsHandler(() => rt, {
    deadlineMarginMs: 1_000,
    processInParallel: false,
    keyOf: (body) => body.split('#')[0],
    async start() {
      return async (record) => {
        handled.push(record.body);
        return { action: 'done' };
      };
    },
  });
  expect(await handler(event('job-1#a', 'job-2', 'job-1#b'), context(60_000))).toEqual({ batchItemFailures: [] });
  expect(handled).toEqual(['job-1#a', 'job-2']);
});

test('work in flight is aborted at the soft deadline, the margin before Lambda times out', async () => {
  const { rt } = runtime();
  let invocation: Invocation | undefined;
  const handler = createSqsHandler(() => rt, {
    deadlineMarginMs: 4_900,
    processInParallel: true,
    async start(_rt, started) {
      invocation = started;
      return async () => {
        await new Promise((resolve) => started.signal.addEventListener('abort', resolve, { once: true }));
        return { action: 'requeued' };
      };
    },
  });
  const began = Date.now();
  await handler(event('slow'), context(5_000));
  expect(Date.now() - began).toBeLessThan(1_000);
  expect(invocation?.signal.aborted).toBe(true);
  expect((invocation?.hardDeadlineAt ?? 0) - (invocation?.deadlineAt ?? 0)).toBe(4_900);
});

test('metrics are published even when opening the invocation fails', async () => {
  const { rt, published } = runtime();
  const handler = createSqsHandler(() => rt, {
    deadlineMarginMs: 1_000,
    processInParallel: true,
    async start() {
      throw new Error('secret not readable');
    },
  });
  await expect(handler(event('a'), context(60_000))).rejects.toThrow('secret not readable');
  expect(published()).toBe(1);
});
