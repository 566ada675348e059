import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { expect, test } from 'vitest';
import { DynamoDbJobLedger } from '../../functions/adapters/dynamodb-job-ledger.js';
import { S3Sink } from '../../functions/adapters/s3-sink.js';
import { SqsJobQueue } from '../../functions/adapters/sqs-queue.js';
import { floorHour, HOUR_MS, hoursBetween, LOG_RETENTION_MS } from '../../functions/core/hours.js';
import { ledgerId, settleLedgerEntry } from '../../functions/core/job-ledger.js';
import { parseJobMessage } from '../../functions/core/job-message.js';
import { dataKey, type LogHourJob } from '../../functions/core/jobs.js';
import { type PlannerSettings, type PlannerTask, planToQueue } from '../../functions/core/plan-to-queue.js';
import { type ExportSource, silentLogger } from '../../functions/core/ports.js';
import { createDynamoDbClient, createTestTable } from '../support/dynamodb.js';
import { createS3Client, createTestBucket } from '../support/s3.js';
import { createJobQueues, createSqsClient, sqsEndpoint } from '../support/sqs.js';
import { syntheticApps } from '../support/synthetic-apps.js';

/**
 * A first backfill of 1,000 apps (718,000 log hours) through the real adapters: S3Sink on s3rver, SqsJobQueue on
 * fauxqs, DynamoDbJobLedger on dynalite. Time is scaled ×120: the key serves 6,000 requests a "minute" of real
 * time (50/min × 120), so the queue's 15 deployment-minutes of work (1,500 jobs) are released by SQS delays over
 * 15 real seconds, and the planner's clock moves on by 15 minutes between top-ups while the test's copiers land
 * what SQS shows them. After every planner run (the trigger, top-ups, an hourly run that crosses into a new hour,
 * a daily re-plan over the same window), the queue must hold each missing hour at most once, agree exactly with the
 * ledger, stay within its limit, and hold the oldest hours: nothing missing and unqueued is older than what waits.
 */
const APPS = syntheticApps(1000);
const SCALE = 120;
const settings: PlannerSettings = {
  apps: APPS,
  datasets: new Set(['logs']),
  logLagHours: 1,
  lookbackHours: 6,
  backfillDays: 30,
  requestsPerMinute: 50 * SCALE,
  // 30 deployment minutes of work at 50/min: 1,500 jobs.
  queueAheadMinutes: 30 / SCALE,
};
const CAPACITY = 1500;
const MINUTE = 60_000;
const noApi: ExportSource = {
  listAudiences: async () => [],
  listProfiles: async () => [],
  resolve: async () => {
    throw new Error('planning log hours asks the API nothing');
  },
  download: async () => {
    throw new Error('planning log hours downloads nothing');
  },
};

test('a 1,000-app backfill: every planner run keeps each missing hour in the queue once, oldest first', async () => {
  const s3 = createS3Client();
  const sqs = createSqsClient();
  const dynamoDb = createDynamoDbClient();
  const bucket = await createTestBucket(s3);
  const queues = await createJobQueues(sqs, { visibilitySeconds: 30, maxReceiveCount: 10 });
  const sink = new S3Sink(s3, { bucket, prefix: 'lake' });
  const queue = new SqsJobQueue(sqs, queues.queueUrl, queues.dlqUrl);
  const ledger = new DynamoDbJobLedger(dynamoDb, await createTestTable(dynamoDb));
  const landed = new Set<string>();
  const parked = new Set<string>();
  let requeued: string | undefined;

  const plan = async (task: PlannerTask, now: number) => {
    const summary = await planToQueue(
      task,
      settings,
      { source: noApi, sink, queue, ledger, logger: silentLogger },
      now,
    );
    await expectQueueInvariants(now);
    return summary;
  };

  /** The queue (ready, delayed and in flight, read without receiving) against the ledger and the window. */
  const expectQueueInvariants = async (now: number) => {
    const waiting = await inspectQueue(queues.queueUrl);
    const ids = waiting.map((job) => ledgerId(job));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeLessThanOrEqual(CAPACITY);
    expect([...(await ledger.read(now)).queued].sort()).toEqual([...ids].sort());
    // Oldest first: no hour that is still missing and not queued is older than an hour that waits.
    const queued = new Set(ids);
    const newestQueued = Math.max(...waiting.map((job) => job.hour));
    const window = [...hoursBetween(floorHour(now - LOG_RETENTION_MS) + HOUR_MS, floorHour(now - HOUR_MS))];
    for (const hour of window.filter((hour) => hour < newestQueued)) {
      for (const appUuid of APPS) {
        const id = ledgerId({ kind: 'log_hour', appUuid, hour });
        if (!queued.has(id) && !landed.has(id) && !parked.has(id)) {
          throw new Error(`${id} is missing and not queued, but newer hours wait in the queue`);
        }
      }
    }
    return waiting;
  };

  /** Copiers: land the jobs SQS makes visible (the oldest first, as their delays run out), up to `count`. */
  const copy = async (count: number, now: number, extra: { requeue?: boolean; park?: boolean } = {}) => {
    let done = 0;
    for (let idle = 0; done < count && idle < 300; ) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queues.queueUrl,
          MaxNumberOfMessages: Math.min(10, count - done),
          WaitTimeSeconds: 0,
        }),
      );
      if (Messages.length === 0) {
        idle++;
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      idle = 0;
      for (const message of Messages) {
        const received = parseJobMessage(message.Body as string);
        const job = received.job as LogHourJob;
        if (extra.requeue && requeued === undefined) {
          // Not ready: handed back with a delay, still queued (its ledger entry is kept).
          requeued = ledgerId(job);
          await queue.requeue(received, 2);
          await settleLedgerEntry(
            ledger,
            received,
            { action: 'requeued', reason: 'not_ready', delaySeconds: 2, apiRequests: 1 },
            now,
          );
        } else if (extra.park && parked.size === 0) {
          await queue.park(message.Body as string, 'test');
          await settleLedgerEntry(ledger, received, { action: 'parked', reason: 'test', apiRequests: 1 }, now);
          parked.add(ledgerId(job));
        } else {
          await sink.writeText(dataKey(job), '{}');
          const outcome = { status: 'present', key: dataKey(job) } as const;
          await settleLedgerEntry(ledger, received, { action: 'done', outcome, apiRequests: 1 }, now);
          landed.add(ledgerId(job));
        }
        done++;
      }
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queues.queueUrl,
          Entries: Messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })),
        }),
      );
    }
    expect(done).toBe(count);
  };

  // 12:05: the deployment trigger's run plans the whole retention and sends the oldest 1,500.
  const t0 = Date.UTC(2026, 10, 29, 12, 5);
  const first = await plan('exports', t0);
  const hours = 718;
  expect(first).toMatchObject({
    enqueued: CAPACITY,
    logHoursMissing: APPS.length * hours,
    backlog: APPS.length * hours - CAPACITY,
  });

  await copy(300, t0 + 10 * MINUTE);
  // 12:15: a top-up fills the queue again with the next oldest hours.
  expect(await plan('topup', t0 + 10 * MINUTE)).toMatchObject({ enqueued: 300 });

  await copy(200, t0 + 20 * MINUTE, { requeue: true, park: true });
  // 12:20: the hourly run reaches back to the backlog instead of sending the newest hours ahead of it.
  const hourly = await plan('logs', t0 + 15 * MINUTE);
  // 198 landed and one parked: room for 199 (the requeued job still counts as queued).
  expect(hourly.enqueued).toBe(199);
  expect(hourly.window.from).toBeLessThan(t0 - 29 * 24 * HOUR_MS);
  expect(requeued && (await ledger.read(t0 + 15 * MINUTE)).queued.has(requeued)).toBe(true);

  // 12:30: the daily re-plan over the same 30 days sends only what the queue has room for.
  await copy(100, t0 + 25 * MINUTE);
  const daily = await plan('exports', t0 + 25 * MINUTE);
  expect(daily).toMatchObject({ enqueued: 100, parkedRecently: 1 });

  // 13:20: an hour later a new hour of 1,000 apps is due and the oldest hour has left the retention: still
  // oldest first, each once.
  await copy(400, t0 + 60 * MINUTE);
  const nextHour = await plan('logs', t0 + 75 * MINUTE);
  expect(nextHour.enqueued).toBe(400);
  const final = await inspectQueue(queues.queueUrl);
  expect(final.some((job) => job.hour === floorHour(t0 + 75 * MINUTE - HOUR_MS) - HOUR_MS)).toBe(false);
}, 300_000);

/** Every message of a fauxqs queue (ready, delayed, in flight), read from its inspection endpoint. */
async function inspectQueue(queueUrl: string): Promise<LogHourJob[]> {
  const name = queueUrl.split('/').at(-1) as string;
  const response = await fetch(`${sqsEndpoint()}/_fauxqs/queues/${name}`);
  const state = (await response.json()) as {
    messages: Record<string, { body?: string; message?: { body: string } }[]>;
  };
  return Object.values(state.messages)
    .flat()
    .map((entry) => parseJobMessage(entry.body ?? entry.message?.body ?? '').job as LogHourJob);
}
