/**
 * Issue 10, item 6: list retries stop at the planner's deadline, and one failing list does not prevent the rest of
 * the run. Before, a throttled audience list (Retry-After up to 15 minutes, 8 attempts) ran the daily planner into
 * its 5-minute timeout, and the profile list and the log backfill after it never ran.
 */
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { createPlannerHandler } from '../../functions/handlers/planner.js';
import { createRuntime } from '../../functions/handlers/runtime.js';
import { createDynamoDbClient, createTestTable, dynamoDbEndpoint } from '../support/dynamodb.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { createS3Client, createTestBucket, s3Environment } from '../support/s3.js';
import { credentials, useSimulator } from '../support/simulator.js';
import { createJobQueues, createSqsClient, lambdaContext, queueDepth, sqsEndpoint } from '../support/sqs.js';

const simulator = useSimulator();
const secrets = new FakeSecretsManager();
const secretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:planner-deadline-AbCdEf';

beforeAll(async () => {
  await secrets.start();
  secrets.put(secretArn, JSON.stringify(credentials));
  // The SDK clients read the standard environment, as in Lambda.
  Object.assign(process.env, {
    ...s3Environment(),
    AWS_ENDPOINT_URL_SQS: sqsEndpoint(),
    AWS_ENDPOINT_URL_DYNAMODB: dynamoDbEndpoint(),
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    POWERTOOLS_LOG_LEVEL: 'ERROR',
  });
});
afterAll(() => secrets.stop());
afterEach(() => simulator.faults.clear());

async function deployment() {
  const sqs = createSqsClient();
  const queues = await createJobQueues(sqs);
  const bucket = await createTestBucket(createS3Client());
  const runtime = createRuntime({
    ...process.env,
    DEST_BUCKET: bucket,
    DEST_PREFIX: 'lake',
    SECRET_ID: secretArn,
    API_URL: simulator.url,
    APPS: simulator.dataset.apps.join(','),
    DATASETS: 'logs,audiences,profiles',
    RATE_PER_MINUTE: '6000',
    BUDGET_SHARES: '3',
    QUEUE_URL: queues.queueUrl,
    DLQ_URL: queues.dlqUrl,
    LEDGER_TABLE: await createTestTable(createDynamoDbClient()),
    BACKFILL_DAYS: '1',
  });
  const planner = createPlannerHandler(() => runtime);
  return {
    async plan(remainingMs: number) {
      const started = Date.now();
      const summary = await planner({ task: 'exports' }, lambdaContext(remainingMs));
      return { summary, elapsedMs: Date.now() - started };
    },
    queued: async () => (await queueDepth(sqs, queues.queueUrl)).visible,
  };
}

test('an audience list that keeps failing gives up in time; the profile list and the log backfill still run', async () => {
  const run = await deployment();
  simulator.faults.add({ kind: 'server_error', match: '/v1/exports/audiences', count: 100 });
  const { summary, elapsedMs } = await run.plan(12_000);

  expect(elapsedMs).toBeLessThan(12_000);
  expect(summary.listFailures).toEqual([
    { endpoint: '/v1/exports/audiences', reason: expect.stringMatching(/gave up at the deadline \(answered 500\)/) },
  ]);
  const logJobs = ((summary.window.to - summary.window.from) / 3_600_000) * simulator.dataset.apps.length;
  const profileJobs = 2 * simulator.dataset.profileDbs.length;
  expect(summary.enqueued).toBe(logJobs + profileJobs);
  expect(await run.queued()).toBe(summary.enqueued);
});

test('a list throttled for 15 minutes gives up in time; the log backfill still runs', async () => {
  const run = await deployment();
  // Every list answers 429 with a 15-minute Retry-After; the pause holds back the profile list too (the key says
  // wait), but nothing holds back planning the log hours, which needs no API call.
  simulator.faults.add({ kind: 'throttle', match: '/v1/exports/', retryAfterSeconds: 900, count: 100 });
  const { summary, elapsedMs } = await run.plan(12_000);

  expect(elapsedMs).toBeLessThan(12_000);
  expect(summary.listFailures.map((failure) => failure.endpoint)).toEqual([
    '/v1/exports/audiences',
    '/v1/exports/profiles',
  ]);
  expect(summary.listFailures[0]?.reason).toMatch(/gave up at the deadline \(throttled \(429\), asked to wait 900 s\)/);
  const logJobs = ((summary.window.to - summary.window.from) / 3_600_000) * simulator.dataset.apps.length;
  expect(summary.enqueued).toBe(logJobs);
  expect(await run.queued()).toBe(logJobs);
});
