/**
 * The planner handler against real emulators.
 *
 * Issue 10, item 6: list retries stop at the planner's deadline, and one failing list does not prevent the rest of
 * the run. Before, a throttled audience list (Retry-After up to 15 minutes, 8 attempts) ran the daily planner into
 * its 5-minute timeout, and the profile list and the log backfill after it never ran.
 */
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { EXPORTS_SEEN_KEY } from '../../functions/core/export-watch.js';
import { createPlannerHandler } from '../../functions/handlers/planner.js';
import { createRuntime } from '../../functions/handlers/runtime.js';
import { writeAppList } from '../support/app-list.js';
import { createDynamoDbClient, createTestTable, dynamoDbEndpoint } from '../support/dynamodb.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { createS3Client, createTestBucket, s3FunctionEnvironment } from '../support/s3.js';
import { credentials, useSimulator } from '../support/simulator.js';
import { createJobQueues, createSqsClient, lambdaContext, queueDepth, sqsEndpoint } from '../support/sqs.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator();
const secrets = new FakeSecretsManager();
const secretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:planner-deadline-AbCdEf';

beforeAll(async () => {
  await secrets.start();
  secrets.put(secretArn, JSON.stringify(credentials));
  // The SDK clients read the standard environment, as in Lambda.
  Object.assign(process.env, {
    ...s3FunctionEnvironment(),
    AWS_ENDPOINT_URL_SQS: sqsEndpoint(),
    AWS_ENDPOINT_URL_DYNAMODB: dynamoDbEndpoint(),
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    POWERTOOLS_LOG_LEVEL: 'WARN',
  });
});
afterAll(() => secrets.stop());
afterEach(() => simulator.faults.clear());

async function deployment(now: () => number = Date.now, environment: Record<string, string | undefined> = {}) {
  const sqs = createSqsClient();
  const queues = await createJobQueues(sqs);
  const bucket = await createTestBucket(createS3Client());
  const runtime = createRuntime({
    ...process.env,
    DEST_BUCKET: bucket,
    DEST_PREFIX: 'lake',
    SECRET_ID: secretArn,
    API_URL: simulator.url,
    APPS_FILE: await writeAppList(await tempDir(), simulator.dataset.apps),
    DATASETS: 'logs,audiences,profiles',
    RATE_PER_MINUTE: '6000',
    BUDGET_TABLE: await createTestTable(createDynamoDbClient()),
    QUEUE_URL: queues.queueUrl,
    DLQ_URL: queues.dlqUrl,
    LEDGER_TABLE: await createTestTable(createDynamoDbClient()),
    BACKFILL_DAYS: '1',
    ...environment,
  });
  const planner = createPlannerHandler(() => runtime, now);
  return {
    async plan(remainingMs: number) {
      const started = Date.now();
      const summary = await planner({ task: 'exports' }, lambdaContext(remainingMs));
      return { summary, elapsedMs: Date.now() - started };
    },
    queued: async () => (await queueDepth(sqs, queues.queueUrl)).visible,
    sink: runtime.sink,
  };
}

test('a planner without its app list plans nothing and fails naming APPS_FILE', async () => {
  const run = await deployment(Date.now, { APPS_FILE: undefined });
  const requests = simulator.requests.length;
  await expect(run.plan(12_000)).rejects.toThrow(
    'invalid function configuration: APPS_FILE must list the apps whose raw logs are synced',
  );
  expect(simulator.requests.length).toBe(requests);
  expect(await run.queued()).toBe(0);
});

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

test('the daily run reports exports that vanished or were not regenerated for 48 h, as logs and a metric (issue 10, item 10)', async () => {
  // Three days after the simulator's latest generation: every export is stale.
  const run = await deployment(() => Date.now() + 3 * 24 * 3_600_000);
  await run.sink.writeText(
    EXPORTS_SEEN_KEY,
    JSON.stringify({
      // Listed by the run of the day before.
      'audience 999/idfa': { list: 'audiences', generatedAt: Date.now(), lastListed: Date.now() + 2 * 86_400_000 },
    }),
  );
  // What the function prints (EMF metrics on stdout, warnings on stderr) is what CloudWatch receives.
  const lines: string[] = [];
  const capture = (stream: NodeJS.WriteStream) => {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      lines.push(String(chunk));
      return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    return () => {
      stream.write = write;
    };
  };
  const restore = [capture(process.stdout), capture(process.stderr)];
  let summary: Awaited<ReturnType<typeof run.plan>>['summary'];
  try {
    ({ summary } = await run.plan(60_000));
  } finally {
    for (const undo of restore) undo();
  }
  const exports =
    simulator.dataset.audiences.reduce((n, a) => n + a.identifierTypes.length, 0) +
    2 * simulator.dataset.profileDbs.length;
  expect(summary.exportConcerns.filter((concern) => concern.reason === 'not_refreshed')).toHaveLength(exports);
  expect(summary.exportConcerns.filter((concern) => concern.reason === 'vanished').map((c) => c.export)).toEqual([
    'audience 999/idfa',
  ]);
  const records = lines.flatMap((chunk) => chunk.split('\n')).filter((line) => line.startsWith('{'));
  const emf = records.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => '_aws' in entry);
  expect(emf.map((entry) => entry.exportConcerns).filter((value) => value !== undefined)).toEqual([exports + 1]);
  expect(records.filter((line) => line.includes('"export vanished"'))).toHaveLength(1);
});
