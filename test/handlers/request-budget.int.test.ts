import { afterAll, beforeAll, expect, test } from 'vitest';
import { SqsJobQueue } from '../../functions/adapters/sqs-job-queue.js';
import { floorHour, HOUR_MS } from '../../functions/core/hours.js';
import { newJobMessage } from '../../functions/core/job-message.js';
import { createCopierHandler } from '../../functions/handlers/copier.js';
import { createRuntime } from '../../functions/handlers/runtime.js';
import { LocalyticsSimulator } from '../../functions/simulator/server.js';
import { createDynamoDbClient, createTestTable, dynamoDbEndpoint } from '../support/dynamodb.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { createS3Client, createTestBucket, listAllKeys, s3Environment } from '../support/s3.js';
import { credentials } from '../support/simulator.js';
import { createJobQueues, createSqsClient, pollUntilEmpty, sqsEndpoint } from '../support/sqs.js';

/**
 * The deployment's one request budget: every copier paces itself at rate / (max concurrency + 1), so all of them
 * at once (plus the planner) stay within the key's rate. Time is scaled: 600 requests/minute against a simulator
 * whose 60-second window is shrunk to 2 seconds (20 requests per 2 s), so a minute's pacing shows in seconds.
 */
const RATE_PER_MINUTE = 600;
const WINDOW_MS = 2_000;
const COPIERS = 3;
const simulator = new LocalyticsSimulator({
  ratePerMinute: (RATE_PER_MINUTE * WINDOW_MS) / 60_000,
  rateWindowMs: WINDOW_MS,
});
const secrets = new FakeSecretsManager();
const secretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:budget-AbCdEf';

beforeAll(async () => {
  await Promise.all([simulator.start(), secrets.start()]);
  secrets.put(secretArn, JSON.stringify(credentials));
  Object.assign(process.env, {
    ...s3Environment(),
    AWS_ENDPOINT_URL_SQS: sqsEndpoint(),
    AWS_ENDPOINT_URL_DYNAMODB: dynamoDbEndpoint(),
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    POWERTOOLS_LOG_LEVEL: 'WARN',
  });
});
afterAll(async () => {
  await Promise.all([simulator.stop(), secrets.stop()]);
});

test(`${COPIERS} copiers running at once stay within the key's budget in every window, with no 429`, async () => {
  const sqs = createSqsClient();
  const queues = await createJobQueues(sqs, { visibilitySeconds: 30 });
  const bucket = await createTestBucket(createS3Client());
  const env = {
    ...process.env,
    DEST_BUCKET: bucket,
    DEST_PREFIX: 'lake',
    SECRET_ID: secretArn,
    API_URL: simulator.url,
    APPS: simulator.dataset.apps.join(','),
    DATASETS: 'logs',
    RATE_PER_MINUTE: String(RATE_PER_MINUTE),
    BUDGET_SHARES: String(COPIERS + 1),
    QUEUE_URL: queues.queueUrl,
    DLQ_URL: queues.dlqUrl,
    LEDGER_TABLE: await createTestTable(createDynamoDbClient()),
  };
  const hours = Array.from({ length: 24 }, (_, i) => floorHour(Date.now()) - (i + 3) * HOUR_MS);
  const jobs = simulator.dataset.apps.flatMap((appUuid) =>
    hours.map((hour) => ({ kind: 'log_hour' as const, appUuid, hour })),
  );
  await new SqsJobQueue(sqs, queues.queueUrl, queues.dlqUrl).enqueue(jobs.map((job) => newJobMessage(job, Date.now())));

  // Each copier is its own "Lambda container": its own runtime, hence its own budget.
  await Promise.all(
    Array.from({ length: COPIERS }, () => {
      const runtime = createRuntime(env);
      return pollUntilEmpty(
        sqs,
        queues,
        createCopierHandler(() => runtime),
        { batchSize: 4, timeoutMs: 60_000 },
      );
    }),
  );

  expect(await listAllKeys(createS3Client(), bucket, 'lake/')).toHaveLength(jobs.length);
  const api = simulator.requests.filter((r) => r.kind === 'api');
  expect(api).toHaveLength(jobs.length);
  expect(api.filter((r) => r.status === 429)).toEqual([]);
  const allowed = (RATE_PER_MINUTE * WINDOW_MS) / 60_000;
  const busiest = Math.max(...api.map((r) => api.filter((o) => o.at > r.at - WINDOW_MS && o.at <= r.at).length));
  expect(busiest).toBeLessThanOrEqual(allowed);
});
