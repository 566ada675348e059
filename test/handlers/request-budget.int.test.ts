import { afterAll, beforeAll, expect, test } from 'vitest';
import { SqsJobQueue } from '../../functions/adapters/sqs-queue.js';
import { floorHour, HOUR_MS } from '../../functions/core/hours.js';
import { newJobMessage } from '../../functions/core/job-message.js';
import { createCopierHandler } from '../../functions/handlers/copier.js';
import { createRuntime } from '../../functions/handlers/runtime.js';
import { LocalyticsSimulator } from '../../functions/simulator/server.js';
import { createDynamoDbClient, createTestTable, dynamoDbEndpoint } from '../support/dynamodb.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { createS3Client, createTestBucket, listAllKeys, s3FunctionEnvironment } from '../support/s3.js';
import { credentials } from '../support/simulator.js';
import { createJobQueues, createSqsClient, pollUntilEmpty, sqsEndpoint } from '../support/sqs.js';

/**
 * The deployment's one request budget: every container takes its slots from the same DynamoDB item, so copiers
 * running at once are paced together, as one caller at the key's rate. (The window rule itself is proven in
 * test/adapters/dynamodb-request-budget.int.test.ts in virtual time, and over several real minutes by the
 * `lambda-budget` benchmark.)
 */
const RATE_PER_MINUTE = 240;
const COPIERS = 3;
const simulator = new LocalyticsSimulator({ ratePerMinute: RATE_PER_MINUTE });
const secrets = new FakeSecretsManager();
const secretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:budget-AbCdEf';

beforeAll(async () => {
  await Promise.all([simulator.start(), secrets.start()]);
  secrets.put(secretArn, JSON.stringify(credentials));
  Object.assign(process.env, {
    ...s3FunctionEnvironment(),
    AWS_ENDPOINT_URL_SQS: sqsEndpoint(),
    AWS_ENDPOINT_URL_DYNAMODB: dynamoDbEndpoint(),
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    POWERTOOLS_LOG_LEVEL: 'WARN',
  });
});
afterAll(async () => {
  await Promise.all([simulator.stop(), secrets.stop()]);
});

test(`${COPIERS} copier containers at once send as one caller at the key's rate, with no 429`, async () => {
  const sqs = createSqsClient();
  const queues = await createJobQueues(sqs, { visibilitySeconds: 30 });
  const bucket = await createTestBucket(createS3Client());
  const env = {
    ...process.env,
    DEST_BUCKET: bucket,
    DEST_PREFIX: 'lake',
    SECRET_ID: secretArn,
    API_URL: simulator.url,
    DATASETS: 'logs',
    RATE_PER_MINUTE: String(RATE_PER_MINUTE),
    BUDGET_TABLE: await createTestTable(createDynamoDbClient()),
    QUEUE_URL: queues.queueUrl,
    DLQ_URL: queues.dlqUrl,
    LEDGER_TABLE: await createTestTable(createDynamoDbClient()),
  };
  const hours = Array.from({ length: 12 }, (_, i) => floorHour(Date.now()) - (i + 3) * HOUR_MS);
  const jobs = simulator.dataset.apps.flatMap((appUuid) =>
    hours.map((hour) => ({ kind: 'log_hour' as const, appUuid, hour })),
  );
  await new SqsJobQueue(sqs, queues.queueUrl, queues.dlqUrl).enqueue(jobs.map((job) => newJobMessage(job, Date.now())));

  // Each copier is its own "Lambda container": its own runtime, hence its own DynamoDB client and budget instance.
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
  // Three separate budgets would send three requests per 250 ms (all 24 in about 2 s, two of every three gaps near
  // zero); one shared budget sends one (6 s). Arrival times at the server jitter on a busy machine (a first request's
  // new connection is slower), and a request may leave up to the budget's 250 ms send allowance after its slot, so
  // one late request can arrive right before the next one on time: the span is checked with a tolerance, and only a
  // few short gaps are allowed.
  const times = api.map((r) => r.at).sort((a, b) => a - b);
  const gaps = times.slice(1).map((time, i) => time - (times[i] as number));
  const interval = 60_000 / RATE_PER_MINUTE;
  expect((times.at(-1) as number) - (times[0] as number)).toBeGreaterThanOrEqual(gaps.length * interval * 0.85);
  expect(gaps.filter((gap) => gap < interval * 0.4).length).toBeLessThanOrEqual(2);
});
