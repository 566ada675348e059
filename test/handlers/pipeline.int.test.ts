import { gunzipSync } from 'node:zlib';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { DynamoDbJobLedger } from '../../functions/adapters/dynamodb-job-ledger.js';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { ledgerId } from '../../functions/core/job-ledger.js';
import { newJobMessage, parseJobMessage, serializeJobMessage } from '../../functions/core/job-message.js';
import { dataKey, type SyncJob } from '../../functions/core/jobs.js';
import { createCopierHandler } from '../../functions/handlers/copier.js';
import { createPlannerHandler } from '../../functions/handlers/planner.js';
import { createRuntime } from '../../functions/handlers/runtime.js';
import { logRows, serializeRows } from '../../functions/simulator/dataset.js';
import { createDynamoDbClient, createTestTable, dynamoDbEndpoint } from '../support/dynamodb.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import {
  createS3Client,
  createTestBucket,
  getObjectBytes,
  listAllKeys,
  s3Endpoint,
  s3Environment,
} from '../support/s3.js';
import { S3RecordingProxy } from '../support/s3-proxy.js';
import { credentials, useSimulator } from '../support/simulator.js';
import {
  createJobQueues,
  createSqsClient,
  lambdaContext,
  pollUntilEmpty,
  queueDepth,
  receiveAll,
  sqsEndpoint,
  toSqsEvent,
} from '../support/sqs.js';

const simulator = useSimulator();
const secrets = new FakeSecretsManager();
const s3 = createS3Client();
const sqs = createSqsClient();
const secretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:localytics-api-AbCdEf';
const app = () => simulator.dataset.apps[0] as string;

beforeAll(async () => {
  await secrets.start();
  secrets.put(secretArn, JSON.stringify(credentials));
  Object.assign(process.env, {
    ...s3Environment(),
    AWS_ENDPOINT_URL_SQS: sqsEndpoint(),
    AWS_ENDPOINT_URL_DYNAMODB: dynamoDbEndpoint(),
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    POWERTOOLS_LOG_LEVEL: 'WARN',
  });
});
afterAll(() => secrets.stop());
afterEach(() => simulator.faults.clear());

let queues: Awaited<ReturnType<typeof createJobQueues>>;
let bucket: string;
let ledgerTable: string;
const dynamoDb = createDynamoDbClient();

beforeEach(async () => {
  queues = await createJobQueues(sqs);
  bucket = await createTestBucket(s3);
  ledgerTable = await createTestTable(dynamoDb);
});

function deployment(overrides: Record<string, string> = {}) {
  const env = {
    ...process.env,
    DEST_BUCKET: bucket,
    DEST_PREFIX: 'lake',
    SECRET_ID: secretArn,
    API_URL: simulator.url,
    APPS: app(),
    DATASETS: 'logs,audiences,profiles',
    RATE_PER_MINUTE: '6000',
    BUDGET_SHARES: '3',
    QUEUE_URL: queues.queueUrl,
    DLQ_URL: queues.dlqUrl,
    LEDGER_TABLE: ledgerTable,
    MAX_RECEIVE_COUNT: '3',
    BACKFILL_DAYS: '1',
    RETRY_BASE_SECONDS: '1',
    ...overrides,
  };
  const runtime = createRuntime(env);
  return { planner: createPlannerHandler(() => runtime), copier: createCopierHandler(() => runtime) };
}

async function send(body: string) {
  await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: body }));
}

const logJob = (hour: number): SyncJob => ({ kind: 'log_hour', appUuid: app(), hour });

test('the planner enqueues one job per missing file and the copiers land every one of them', async () => {
  const { planner, copier } = deployment();
  const summary = await planner({ task: 'exports' });
  // 24 log hours (one day back, one hour of lag) + 4 audience files + profile + profile_changes.
  expect(summary).toMatchObject({ task: 'exports', enqueued: 24 + 4 + 2, present: 0 });
  const run = await pollUntilEmpty(sqs, queues, copier);
  expect(run.failures).toBe(0);
  const keys = await listAllKeys(s3, bucket, 'lake/');
  expect(keys.filter((key) => key.startsWith('lake/raw_logs/'))).toHaveLength(24);
  expect(keys.filter((key) => key.startsWith('lake/audiences/'))).toHaveLength(4);
  expect(keys.filter((key) => /^lake\/profile(s|_changes)\//.test(key))).toHaveLength(2);
  expect(await queueDepth(sqs, queues.dlqUrl)).toMatchObject({ visible: 0 });
  expect(secrets.requests.every((request) => request.secretId === secretArn)).toBe(true);

  // The next run finds everything present and enqueues nothing.
  expect(await planner({ task: 'exports' })).toMatchObject({ enqueued: 0, present: 30 });
});

test('a transient failure fails only its own record of the batch, and its redelivery lands it', async () => {
  const { copier } = deployment();
  const hours = [5, 6, 7].map((n) => floorHour(Date.now()) - n * HOUR_MS);
  for (const hour of hours) await send(serializeJobMessage(newJobMessage(logJob(hour), Date.now())));
  simulator.faults.add({
    kind: 'file_server_error',
    count: 4,
    match: `log/${app()}/${formatHour(hours[1] as number)}`,
  });
  const run = await pollUntilEmpty(sqs, queues, copier);
  expect(run.failures).toBe(1);
  for (const hour of hours) {
    const stored = gunzipSync(await getObjectBytes(s3, bucket, `lake/${dataKey(logJob(hour))}`)).toString();
    expect(stored).toBe(serializeRows(logRows(simulator.dataset, app(), hour)));
  }
  expect(await queueDepth(sqs, queues.dlqUrl)).toMatchObject({ visible: 0 });
});

test('a message delivered again after it was processed finds its object present: no second download', async () => {
  const { copier } = deployment();
  const hour = floorHour(Date.now()) - 8 * HOUR_MS;
  await send(serializeJobMessage(newJobMessage(logJob(hour), Date.now())));
  const messages = await receiveAll(sqs, queues.queueUrl);
  const mark = simulator.requests.length;
  // At-least-once delivery: the same event reaches the copier twice (e.g. its deletion was lost).
  expect((await copier(toSqsEvent(messages, queues.queueArn), lambdaContext())).batchItemFailures).toEqual([]);
  expect((await copier(toSqsEvent(messages, queues.queueArn), lambdaContext())).batchItemFailures).toEqual([]);
  expect(await listAllKeys(s3, bucket, 'lake/')).toEqual([`lake/${dataKey(logJob(hour))}`]);
  expect(simulator.requests.slice(mark).filter((r) => r.kind === 'file')).toHaveLength(1);
});

test('two copies of one job in the same batch land one object with one download', async () => {
  const { copier } = deployment();
  const hour = floorHour(Date.now()) - 10 * HOUR_MS;
  const body = serializeJobMessage(newJobMessage(logJob(hour), Date.now()));
  await send(body);
  await send(body);
  const mark = simulator.requests.length;
  const run = await pollUntilEmpty(sqs, queues, copier);
  expect(run.invocations).toBe(1);
  expect(await listAllKeys(s3, bucket, 'lake/')).toEqual([`lake/${dataKey(logJob(hour))}`]);
  expect(simulator.requests.slice(mark).filter((r) => r.kind === 'file')).toHaveLength(1);
});

test('a permanent failure and a malformed message are parked in the dead-letter queue with their reasons', async () => {
  const { copier } = deployment();
  await send(
    serializeJobMessage(
      newJobMessage(
        { kind: 'audience', audienceId: '999', identifierType: 'idfa', generatedAt: Date.now() },
        Date.now(),
      ),
    ),
  );
  await send('{"v":1,"job":{"kind":"log_hour","appUuid":"../../etc","hour":0},"requeues":0,"plannedAt":""}');
  const run = await pollUntilEmpty(sqs, queues, copier);
  expect(run.failures).toBe(0);
  const parked = await receiveAll(sqs, queues.dlqUrl);
  const reasons = parked.map((message) => message.MessageAttributes?.failureReason?.StringValue).sort();
  expect(reasons).toEqual([
    '/v1/exports/audiences/999/idfa answered 403 (no access to this export)',
    'message is not a job: job.appUuid is not a Localytics app ID',
  ]);
  expect(await listAllKeys(s3, bucket, 'lake/')).toEqual([]);
});

test('a recent log hour that is not ready is left to the next hourly planning, without a failure', async () => {
  const { copier } = deployment();
  await send(serializeJobMessage(newJobMessage(logJob(floorHour(Date.now())), Date.now())));
  const run = await pollUntilEmpty(sqs, queues, copier);
  expect(run.failures).toBe(0);
  expect(await queueDepth(sqs, queues.queueUrl)).toMatchObject({ visible: 0, delayed: 0 });
  expect(await queueDepth(sqs, queues.dlqUrl)).toMatchObject({ visible: 0 });
});

test('an older log hour that is still not ready goes back on the queue with a delay, not to the dead-letter queue', async () => {
  const { copier } = deployment();
  // Beyond the hourly planner's window (6 h) but inside the 24 h deadline; an app the simulator does not know
  // answers 404 like an hour that is not ready.
  const unknownApp = 'abcdef0123456789abcdef0-00000000-0000-0000-0000-000000000000';
  const job: SyncJob = { kind: 'log_hour', appUuid: unknownApp, hour: floorHour(Date.now()) - 9 * HOUR_MS };
  await send(serializeJobMessage(newJobMessage(job, Date.now())));
  const run = await pollUntilEmpty(sqs, queues, copier);
  expect(run.failures).toBe(0);
  expect(await queueDepth(sqs, queues.queueUrl)).toMatchObject({ delayed: 1 });
  expect(await queueDepth(sqs, queues.dlqUrl)).toMatchObject({ visible: 0 });
});

describe('a copier near its deadline', () => {
  const proxy = new S3RecordingProxy(s3Endpoint());
  beforeAll(() => proxy.start());
  afterAll(() => proxy.stop());

  test('hands its job back instead of dying mid-copy: nothing partial, no open upload', async () => {
    const hour = floorHour(Date.now()) - 9 * HOUR_MS;
    simulator.setLargeHour(app(), hour, 24 * 1024 * 1024);
    simulator.faults.add({ kind: 'slow', match: `log/${app()}/${formatHour(hour)}` });
    const previous = process.env.AWS_ENDPOINT_URL_S3;
    process.env.AWS_ENDPOINT_URL_S3 = proxy.url;
    try {
      const { copier } = deployment();
      await send(serializeJobMessage(newJobMessage(logJob(hour), Date.now())));
      const messages = await receiveAll(sqs, queues.queueUrl);
      // 31 s left: the copier stops after about 1 s (it keeps a 30 s margin for cleanup).
      const response = await copier(toSqsEvent(messages, queues.queueArn), lambdaContext(31_000));
      expect(response.batchItemFailures).toEqual([]);
    } finally {
      process.env.AWS_ENDPOINT_URL_S3 = previous;
    }
    expect(await listAllKeys(s3, bucket, 'lake/')).toEqual([]);
    expect(proxy.openUploads()).toEqual([]);
    const [requeued] = await receiveAll(sqs, queues.queueUrl);
    expect(parseJobMessage(requeued?.Body as string)).toMatchObject({ requeues: 1, job: { hour } });
  });
});

test('the functions publish EMF metrics: files, bytes, rows, API requests, and the lag of every app', async () => {
  const { planner, copier } = deployment({ DATASETS: 'logs', LOOKBACK_HOURS: '3' });
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    lines.push(String(chunk));
    return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    await planner({ task: 'logs' });
    await pollUntilEmpty(sqs, queues, copier);
    await planner({ task: 'logs' });
  } finally {
    process.stdout.write = write;
  }
  const emf = lines
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const sum = (name: string) =>
    emf.reduce((total, entry) => {
      const value = entry[name];
      return (
        total +
        (Array.isArray(value)
          ? value.reduce((a: number, b: number) => a + b, 0)
          : typeof value === 'number'
            ? value
            : 0)
      );
    }, 0);
  expect(sum('filesCopied')).toBe(3);
  expect(sum('rowsCopied')).toBeGreaterThan(0);
  expect(sum('bytesCopied')).toBeGreaterThan(0);
  expect(sum('jobsEnqueued')).toBe(3);
  const lag = emf.filter((entry) => 'lagHours' in entry);
  // First run: nothing copied yet, the lag is the window; second run: the newest hour is one hour of lag old.
  expect(lag.map((entry) => [entry.app, entry.lagHours])).toEqual([
    [app(), 4],
    [app(), 1],
  ]);
  expect(
    emf.every(
      (entry) =>
        (entry._aws as { CloudWatchMetrics: { Namespace: string }[] }).CloudWatchMetrics[0]?.Namespace ===
        'LocalyticsExportSync',
    ),
  ).toBe(true);
});

describe('the queued-job ledger', () => {
  const ledger = () => new DynamoDbJobLedger(dynamoDb, ledgerTable);

  test("the deployment trigger's empty event plans the daily task over the whole 30-day retention, once", async () => {
    // 100 requests a minute, 5 minutes ahead: the queue takes 500 jobs; the rest of the 718 hours is backlog.
    const { planner } = deployment({ BACKFILL_DAYS: '30', RATE_PER_MINUTE: '100', QUEUE_AHEAD_MINUTES: '5' });
    const first = await planner({});
    expect(first).toMatchObject({ task: 'exports', logHoursMissing: 718, enqueued: 4 + 2 + 494, backlog: 224 });
    expect(first.window.from).toBe(floorHour(Date.now() - 30 * 24 * HOUR_MS) + HOUR_MS);
    const depth = await queueDepth(sqs, queues.queueUrl);
    expect(depth.visible + depth.delayed).toBe(500);
    // A later deployment runs it again: everything missing is already waiting or backlog.
    expect(await planner({})).toMatchObject({ enqueued: 0, alreadyQueued: 500, backlog: 224 });
    expect((await ledger().read(Date.now())).queued.size).toBe(500);
  });

  test('an entry goes when its job lands, stays while the job waits again, and rests when it is parked', async () => {
    const { planner, copier } = deployment({ DATASETS: 'logs', LOOKBACK_HOURS: '3' });
    expect(await planner({ task: 'logs' })).toMatchObject({ enqueued: 3 });
    expect((await ledger().read(Date.now())).queued.size).toBe(3);
    await pollUntilEmpty(sqs, queues, copier);
    expect(await ledger().read(Date.now())).toMatchObject({ queued: new Set(), parked: new Set() });

    const unknownApp = 'abcdef0123456789abcdef0-00000000-0000-0000-0000-000000000000';
    const late: SyncJob = { kind: 'log_hour', appUuid: unknownApp, hour: floorHour(Date.now()) - 9 * HOUR_MS };
    const forbidden: SyncJob = { kind: 'audience', audienceId: '999', identifierType: 'idfa', generatedAt: 0 };
    for (const job of [late, forbidden]) {
      await ledger().claim(ledgerId(job), Date.now() + HOUR_MS, Date.now());
      await send(serializeJobMessage(newJobMessage(job, Date.now())));
    }
    await pollUntilEmpty(sqs, queues, copier);
    const after = await ledger().read(Date.now());
    expect(after.queued).toEqual(new Set([ledgerId(late)]));
    expect(after.parked).toEqual(new Set([ledgerId(forbidden)]));
  });

  test('a planner out of time sends nothing half: the ledger and the queue agree, the window is backlog', async () => {
    const { planner } = deployment({ DATASETS: 'logs', LOOKBACK_HOURS: '3' });
    // No time left: neither the listing nor the sending may start.
    const summary = await planner({ task: 'logs' }, lambdaContext(0));
    expect(summary).toMatchObject({ stoppedAtDeadline: true, enqueued: 0 });
    expect(await queueDepth(sqs, queues.queueUrl)).toMatchObject({ visible: 0, delayed: 0 });
    const after = await ledger().read(Date.now());
    expect(after.queued.size).toBe(0);
    expect(after.backlogFrom).toBe(summary.window.from);
    // The next top-up sends the rest.
    expect(await planner({ task: 'topup' })).toMatchObject({ enqueued: 3, backlog: 0 });
  });

  test('a planner whose ledger table is missing fails naming it, and sends nothing', async () => {
    const { planner } = deployment({ LEDGER_TABLE: 'missing-ledger' });
    await expect(planner({ task: 'logs' })).rejects.toThrow(/job ledger \(DynamoDB table "missing-ledger"\)/);
    expect(await queueDepth(sqs, queues.queueUrl)).toMatchObject({ visible: 0, delayed: 0 });
  });

  test('a copier whose ledger cannot be written still lands its job', async () => {
    const { copier } = deployment({ LEDGER_TABLE: 'missing-ledger' });
    const hour = floorHour(Date.now()) - 11 * HOUR_MS;
    await send(serializeJobMessage(newJobMessage(logJob(hour), Date.now())));
    expect(await pollUntilEmpty(sqs, queues, copier)).toMatchObject({ failures: 0 });
    expect(await listAllKeys(s3, bucket, 'lake/')).toEqual([`lake/${dataKey(logJob(hour))}`]);
  });
});
