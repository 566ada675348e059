import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { DynamoDbJobLedger } from '../../functions/adapters/dynamodb-job-ledger.js';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { ledgerId } from '../../functions/core/job-ledger.js';
import { newJobMessage, parseJobMessage, serializeJobMessage } from '../../functions/core/job-message.js';
import { dataKey, pendingChangeSetKey, type SyncJob } from '../../functions/core/jobs.js';
import { parquetTargetOf } from '../../functions/core/parquet-layer.js';
import { TABLES } from '../../functions/core/tables.js';
import { latestGeneration, logRows, serializeRows } from '../../functions/simulator/dataset.js';
import { arm64Missing } from '../support/arm64.js';
import { resolveCfn } from '../support/deployment/cfn.js';
import { TestDeployment } from '../support/deployment/deployment.js';
import { type AwsAction, isAllowed, type PolicyStatement } from '../support/deployment/iam.js';
import { synthesizedDeployment } from '../support/deployment/shared.js';
import {
  E2E_APPS,
  E2E_BUCKET_KEY_ARN,
  E2E_BUDGET_TABLE_KEY_ARN,
  E2E_SECRET_ARN,
  E2E_SHARED_BUDGET_TABLE,
  type FunctionName,
  synthesizeDeployment,
} from '../support/deployment/synth.js';
import { openLake } from '../support/duckdb-lake.js';
import { createDynamoDbClient, createTestTable, dynamoDbEndpoint } from '../support/dynamodb.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { createS3Client, createTestBucket, getObjectBytes, listAllKeys, s3Endpoint } from '../support/s3.js';
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
import { tempDir } from '../support/temp.js';

if (arm64Missing && process.env.CI) throw new Error(`CI must run the arm64 converter (see .ci/run): ${arm64Missing}`);
if (arm64Missing) console.warn(`SKIPPED the Parquet converter in the end-to-end tests: ${arm64Missing}`);

// The simulator serves the deployment's apps: the 60 bundled with the planner.
const simulator = useSimulator({ dataset: { apps: E2E_APPS } });
const secrets = new FakeSecretsManager();
const s3 = createS3Client();
const sqs = createSqsClient();
const secretArn = E2E_SECRET_ARN;
const app = () => simulator.dataset.apps[0] as string;

/**
 * The deployment end to end, as deployed: the bundled handler assets `cdk synth` writes, run by Node.js 22 in their
 * own processes ("containers"), with each function's environment from the synthesized template (its resources
 * mapped to the emulators'). Every AWS call a function makes is recorded and must be allowed by its synthesized
 * IAM policy.
 */
beforeAll(() => synthesizedDeployment(), 240_000);
beforeAll(async () => {
  await secrets.start();
  secrets.put(secretArn, JSON.stringify(credentials));
});
afterAll(() => secrets.stop());

let queues: Awaited<ReturnType<typeof createJobQueues>>;
let convertQueues: Awaited<ReturnType<typeof createJobQueues>>;
let bucket: string;
let budgetTable: string;
let deployment: TestDeployment | undefined;
let ledgerTable: string;
const dynamoDb = createDynamoDbClient();

beforeEach(async () => {
  queues = await createJobQueues(sqs);
  // A conversion under qemu takes seconds: long enough a visibility timeout that two converters never share one.
  convertQueues = await createJobQueues(sqs, { visibilitySeconds: 600 });
  bucket = await createTestBucket(s3);
  budgetTable = await createTestTable(dynamoDb);
  ledgerTable = await createTestTable(dynamoDb);
});
afterEach(async () => {
  simulator.faults.clear();
  if (!deployment) return;
  const denied = deployment.deniedActions();
  for (const name of FUNCTIONS) {
    for (const use of deployment.keyUses(name, EVERY_KEY)) keyUsesSeen[name].set(describeKeyUse(use), use);
  }
  await deployment.stop();
  deployment = undefined;
  // The roles grant what the handlers call: a call outside its function's policy would fail in AWS.
  expect(denied).toEqual([]);
});

/** The deployment; its planner plans one app (the first) unless `apps` is 'bundled': the list synthesized with it. */
async function deploy(
  environment: Record<string, string> = {},
  { apps = [app()] }: { apps?: readonly string[] | 'bundled' } = {},
) {
  deployment = await TestDeployment.start({
    synth: await synthesizedDeployment(),
    endpoints: { s3: s3Endpoint(), sqs: sqsEndpoint(), dynamoDb: dynamoDbEndpoint(), secretsManager: secrets.url },
    apiUrl: simulator.url,
    bucket,
    queues,
    convertQueues,
    budgetTable,
    ledgerTable,
    apps: apps === 'bundled' ? undefined : apps,
    // Test settings over the template's: a fast budget, the test queue's redrive, quick retries.
    environment: {
      RATE_PER_MINUTE: '6000',
      MAX_RECEIVE_COUNT: '3',
      BACKFILL_DAYS: '1',
      RETRY_BASE_SECONDS: '1',
      POWERTOOLS_LOG_LEVEL: 'WARN',
      ...environment,
    },
  });
  return { planner: deployment.planner, copier: deployment.copier, deployment };
}

const FUNCTIONS: readonly FunctionName[] = ['planner', 'copier', 'converter'];
/** Every customer-managed key option: the imported bucket's (in the deployment) and a shared budget table's. */
const EVERY_KEY = { bucket: E2E_BUCKET_KEY_ARN, budgetTable: E2E_BUDGET_TABLE_KEY_ARN };
/** What the calls of every test of this file made S3 and DynamoDB do with those keys, per function. */
const keyUsesSeen: Record<FunctionName, Map<string, AwsAction>> = {
  planner: new Map(),
  copier: new Map(),
  converter: new Map(),
};
const describeKeyUse = (use: AwsAction) => `${use.action} ${use.resource} via ${use.context['kms:ViaService']}`;

async function send(body: string) {
  await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: body }));
}

const logJob = (hour: number): SyncJob => ({ kind: 'log_hour', appUuid: app(), hour });
const yesterdaysChangeSet = () => ({
  kind: 'profile_changes' as const,
  profileDbId: simulator.dataset.profileDbs[0]?.profileDbId as string,
  generatedAt: latestGeneration(Date.now()) - 24 * HOUR_MS,
});

test('the planner enqueues one job per missing file, the copiers land every one of them, the converters their Parquet twins', async () => {
  const { planner, copier, deployment } = await deploy();
  const summary = await planner({ task: 'exports' });
  // 24 log hours (one day back, one hour of lag) + 4 audience files + profile + profile_changes.
  expect(summary).toMatchObject({ task: 'exports', enqueued: 24 + 4 + 2, present: 0 });
  const run = await pollUntilEmpty(deployment.eventSource, queues, copier);
  expect(run.failures).toBe(0);
  const keys = await listAllKeys(s3, bucket, 'lake/');
  expect(keys.filter((key) => key.startsWith('lake/raw_logs/'))).toHaveLength(24);
  expect(keys.filter((key) => key.startsWith('lake/audiences/'))).toHaveLength(4);
  expect(keys.filter((key) => /^lake\/profile(s|_changes)\//.test(key))).toHaveLength(2);
  expect(await queueDepth(sqs, queues.dlqUrl)).toMatchObject({ visible: 0 });
  expect(secrets.requests.every((request) => request.secretId === secretArn)).toBe(true);

  // The next run finds everything present and enqueues nothing.
  expect(await planner({ task: 'exports' })).toMatchObject({ enqueued: 0, present: 30 });

  // What ran is what gets deployed, on the runtime it declares; every AWS call it made was recorded (and checked
  // against its function's policy after the test).
  expect(deployment.runtimeVersions()).toEqual([expect.stringMatching(/^v22\./)]);
  const called = (name: 'planner' | 'copier') => [...new Set(deployment.actions(name).map((a) => a.action))].sort();
  // The budget's GetItem/PutItem, the ledger's PutItem and Scan.
  expect(called('planner')).toEqual([
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:Scan',
    's3:GetObject',
    's3:ListBucket',
    's3:PutObject',
    'secretsmanager:GetSecretValue',
    'sqs:SendMessage',
  ]);
  expect(called('copier')).toEqual(
    expect.arrayContaining([
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      's3:DeleteObject',
      's3:ListBucket',
      's3:PutObject',
      'secretsmanager:GetSecretValue',
      'sqs:DeleteMessage',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
    ]),
  );
  // Issue 21, item 4: every data object was created with If-None-Match, the only way the copier's role allows (the
  // recorder passes the header to the policy check); the same call without it would be denied.
  const creations = deployment
    .actions('copier')
    .filter((a) => a.action === 's3:PutObject' && a.context['s3:ObjectCreationOperation'] === 'true');
  const dataCreations = creations.filter((a) => !a.resource.includes('/_state/'));
  expect(dataCreations.length).toBeGreaterThanOrEqual(30);
  expect(dataCreations.filter((a) => a.context['s3:if-none-match'] !== '*')).toEqual([]);
  for (const write of dataCreations) {
    expect(deployment.allows('copier', { ...write, context: { 's3:ObjectCreationOperation': 'true' } })).toBe(false);
  }
  // Neither function reads a data object.
  const reads = (name: 'planner' | 'copier') =>
    deployment.actions(name).filter((a) => a.action === 's3:GetObject' && !a.resource.includes('/lake/_state/'));
  expect([...reads('planner'), ...reads('copier')]).toEqual([]);

  // The default stack converts each copied file to its Parquet twin: the converter's arm64 bundle with its DuckDB
  // layer under qemu, two containers at once (its maximum concurrency), each with a /tmp of its own.
  if (arm64Missing) return;
  const twins = keys
    .flatMap((key) => parquetTargetOf(key.slice('lake/'.length)) ?? [])
    .map((t) => `lake/${t.parquetKey}`);
  expect(twins).toHaveLength(30);
  expect(await queueDepth(sqs, convertQueues.queueUrl)).toMatchObject({ visible: 30 });
  const converters = await Promise.all([
    deployment.startContainer('converter'),
    deployment.startContainer('converter'),
  ]);
  const conversions = await Promise.all(
    converters.map((container) =>
      pollUntilEmpty(
        deployment.eventSourceOf('converter'),
        convertQueues,
        (event, context) => container.invoke(event, context.getRemainingTimeInMillis()),
        { batchSize: 1, timeoutMs: 600_000, remainingMs: 600_000 },
      ),
    ),
  );
  expect(conversions.map((run) => run.failures)).toEqual([0, 0]);
  expect(conversions.every((run) => run.invocations > 0)).toBe(true);
  expect(deployment.architectures('converter')).toEqual(['arm64']);
  expect(await queueDepth(sqs, convertQueues.dlqUrl)).toMatchObject({ visible: 0 });
  expect((await listAllKeys(s3, bucket, 'lake/parquet/')).sort()).toEqual(twins.sort());
  await expectTwinsMatch(keys, twins);
  expect([...new Set(deployment.actions('converter').map((a) => a.action))].sort()).toEqual([
    's3:GetObject',
    's3:ListBucket',
    's3:ListBucketMultipartUploads',
    's3:PutObject',
    'sqs:DeleteMessage',
    'sqs:GetQueueAttributes',
    'sqs:ReceiveMessage',
  ]);
}, 600_000);

/** Every Parquet twin holds its JSON object's rows: the Parquet tables read what the JSON tables read. */
async function expectTwinsMatch(jsonKeys: readonly string[], parquetKeys: readonly string[]) {
  const lake = await tempDir('lsync-e2e-lake-');
  for (const key of [...jsonKeys, ...parquetKeys]) {
    const file = path.join(lake, key.slice('lake/'.length));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, await getObjectBytes(s3, bucket, key));
  }
  const [json, parquet] = await Promise.all([openLake(lake, 'json'), openLake(lake, 'parquet')]);
  try {
    for (const table of TABLES) {
      const sql = `SELECT * FROM ${table.name} ORDER BY ALL`;
      const rows = await json.query(sql);
      expect(rows.length, table.name).toBeGreaterThan(0);
      expect(await parquet.query(sql), table.name).toEqual(rows);
    }
  } finally {
    json.close();
    parquet.close();
  }
}

test('a transient failure fails only its own record of the batch, and its redelivery lands it', async () => {
  const { copier, deployment } = await deploy();
  const hours = [5, 6, 7].map((n) => floorHour(Date.now()) - n * HOUR_MS);
  for (const hour of hours) await send(serializeJobMessage(newJobMessage(logJob(hour), Date.now())));
  simulator.faults.add({
    kind: 'file_server_error',
    count: 4,
    match: `log/${app()}/${formatHour(hours[1] as number)}`,
  });
  const run = await pollUntilEmpty(deployment.eventSource, queues, copier);
  expect(run.failures).toBe(1);
  for (const hour of hours) {
    const stored = gunzipSync(await getObjectBytes(s3, bucket, `lake/${dataKey(logJob(hour))}`)).toString();
    expect(stored).toBe(serializeRows(logRows(simulator.dataset, app(), hour)));
  }
  expect(await queueDepth(sqs, queues.dlqUrl)).toMatchObject({ visible: 0 });
});

test('a message delivered again after it was processed finds its object present: no second download', async () => {
  const { copier, deployment } = await deploy();
  const hour = floorHour(Date.now()) - 8 * HOUR_MS;
  await send(serializeJobMessage(newJobMessage(logJob(hour), Date.now())));
  const messages = await receiveAll(deployment.eventSource, queues.queueUrl);
  const mark = simulator.requests.length;
  // At-least-once delivery: the same event reaches the copier twice (e.g. its deletion was lost).
  expect((await copier(toSqsEvent(messages, queues.queueArn), lambdaContext())).batchItemFailures).toEqual([]);
  expect((await copier(toSqsEvent(messages, queues.queueArn), lambdaContext())).batchItemFailures).toEqual([]);
  expect(await listAllKeys(s3, bucket, 'lake/')).toEqual([`lake/${dataKey(logJob(hour))}`]);
  expect(simulator.requests.slice(mark).filter((r) => r.kind === 'file')).toHaveLength(1);
});

test('two copies of one job in the same batch land one object with one download', async () => {
  const { copier, deployment } = await deploy();
  const hour = floorHour(Date.now()) - 10 * HOUR_MS;
  const body = serializeJobMessage(newJobMessage(logJob(hour), Date.now()));
  await send(body);
  await send(body);
  const mark = simulator.requests.length;
  const run = await pollUntilEmpty(deployment.eventSource, queues, copier);
  expect(run.invocations).toBe(1);
  expect(await listAllKeys(s3, bucket, 'lake/')).toEqual([`lake/${dataKey(logJob(hour))}`]);
  expect(simulator.requests.slice(mark).filter((r) => r.kind === 'file')).toHaveLength(1);
});

test('a permanent failure and a malformed message are parked in the dead-letter queue with their reasons', async () => {
  const { copier, deployment } = await deploy();
  await send(
    serializeJobMessage(
      newJobMessage(
        { kind: 'audience', audienceId: '999', identifierType: 'idfa', generatedAt: Date.now() },
        Date.now(),
      ),
    ),
  );
  await send('{"v":1,"job":{"kind":"log_hour","appUuid":"../../etc","hour":0},"requeues":0,"plannedAt":""}');
  const run = await pollUntilEmpty(deployment.eventSource, queues, copier);
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
  const { copier, deployment } = await deploy();
  await send(serializeJobMessage(newJobMessage(logJob(floorHour(Date.now())), Date.now())));
  const run = await pollUntilEmpty(deployment.eventSource, queues, copier);
  expect(run.failures).toBe(0);
  expect(await queueDepth(sqs, queues.queueUrl)).toMatchObject({ visible: 0, delayed: 0 });
  expect(await queueDepth(sqs, queues.dlqUrl)).toMatchObject({ visible: 0 });
});

test('without its budget table a copier sends nothing and copies nothing: the job stays queued, the error names the table', async () => {
  budgetTable = 'no-such-budget-table';
  const { copier, deployment } = await deploy({ POWERTOOLS_LOG_LEVEL: 'INFO' });
  const hour = floorHour(Date.now()) - 5 * HOUR_MS;
  await send(serializeJobMessage(newJobMessage(logJob(hour), Date.now())));
  const messages = await receiveAll(deployment.eventSource, queues.queueUrl);
  const mark = simulator.requests.length;
  const response = await copier(toSqsEvent(messages, queues.queueArn), lambdaContext());
  // Reported as a failure of this record: SQS delivers it again later (parked with the reason on the last delivery).
  expect(response.batchItemFailures).toEqual([{ itemIdentifier: messages[0]?.MessageId }]);
  expect(simulator.requests.slice(mark)).toEqual([]);
  expect(await listAllKeys(s3, bucket, 'lake/')).toEqual([]);
  expect(await queueDepth(sqs, queues.dlqUrl)).toMatchObject({ visible: 0 });
  expect(deployment.output('copier')).toContain('request budget table \\"no-such-budget-table\\" does not exist');
});

test('an older log hour that is still not ready goes back on the queue with a delay, not to the dead-letter queue', async () => {
  const { copier, deployment } = await deploy();
  // Beyond the hourly planner's window (6 h) but inside the 24 h deadline; an app the simulator does not know
  // answers 404 like an hour that is not ready.
  const unknownApp = 'abcdef0123456789abcdef0-00000000-0000-0000-0000-000000000000';
  const job: SyncJob = { kind: 'log_hour', appUuid: unknownApp, hour: floorHour(Date.now()) - 9 * HOUR_MS };
  await send(serializeJobMessage(newJobMessage(job, Date.now())));
  const run = await pollUntilEmpty(deployment.eventSource, queues, copier);
  expect(run.failures).toBe(0);
  expect(await queueDepth(sqs, queues.queueUrl)).toMatchObject({ delayed: 1 });
  expect(await queueDepth(sqs, queues.dlqUrl)).toMatchObject({ visible: 0 });
});

test('a copier near its deadline hands its job back instead of dying mid-copy: nothing partial, no open upload', async () => {
  const hour = floorHour(Date.now()) - 9 * HOUR_MS;
  simulator.setLargeHour(app(), hour, 24 * 1024 * 1024);
  simulator.faults.add({ kind: 'slow', match: `log/${app()}/${formatHour(hour)}` });
  const { copier, deployment } = await deploy();
  await send(serializeJobMessage(newJobMessage(logJob(hour), Date.now())));
  const messages = await receiveAll(deployment.eventSource, queues.queueUrl);
  // 31 s left: the copier stops after about 1 s (it keeps a 30 s margin for cleanup).
  const response = await copier(toSqsEvent(messages, queues.queueArn), lambdaContext(31_000));
  expect(response.batchItemFailures).toEqual([]);
  expect(await listAllKeys(s3, bucket, 'lake/')).toEqual([]);
  expect(deployment.s3Proxy.openUploads()).toEqual([]);
  const [requeued] = await receiveAll(sqs, queues.queueUrl);
  expect(parseJobMessage(requeued?.Body as string)).toMatchObject({ requeues: 1, interruptions: 1, job: { hour } });
});

test('the planner removes a leftover record of a change set already copied, as its role allows', async () => {
  const { planner, deployment } = await deploy({ DATASETS: 'profiles' });
  const job = yesterdaysChangeSet();
  // A copier copied the change set and was stopped before it removed its record.
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `lake/${dataKey(job)}`, Body: 'copied' }));
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: `lake/${pendingChangeSetKey(job)}`, Body: '{"state":"resolved"}' }),
  );
  await planner({ task: 'exports' });
  expect(await listAllKeys(s3, bucket, 'lake/_state/profile_changes/')).toEqual([]);
  expect(deployment.actions('planner').filter((action) => action.action === 's3:DeleteObject')).toEqual([
    expect.objectContaining({ resource: `arn:aws:s3:::${bucket}/lake/${pendingChangeSetKey(job)}`, status: 204 }),
  ]);
});

test("the planner plans every app of its bundled list (60), the copiers land each app's hours, and the functions publish metrics and each app's lag", async () => {
  const { planner, copier, deployment } = await deploy(
    { DATASETS: 'logs', LOOKBACK_HOURS: '1', LAG_ALARM_HOURS: '1', POWERTOOLS_LOG_LEVEL: 'INFO' },
    { apps: 'bundled' },
  );
  const first = await planner<{ enqueued: number; window: { from: number; to: number } }>({ task: 'logs' });
  const hours = [first.window.from];
  expect(first.window.to).toBe(first.window.from + HOUR_MS);
  expect(first.enqueued).toBe(E2E_APPS.length * hours.length);
  expect(await pollUntilEmpty(deployment.eventSource, queues, copier, { timeoutMs: 120_000 })).toMatchObject({
    failures: 0,
  });
  await planner({ task: 'logs' });

  // Each app's hours, as the simulator serves them.
  const jobs = E2E_APPS.flatMap((appUuid) => hours.map((hour): SyncJob => ({ kind: 'log_hour', appUuid, hour })));
  expect((await listAllKeys(s3, bucket, 'lake/')).sort()).toEqual(jobs.map((job) => `lake/${dataKey(job)}`).sort());
  for (const job of jobs as Extract<SyncJob, { kind: 'log_hour' }>[]) {
    const stored = gunzipSync(await getObjectBytes(s3, bucket, `lake/${dataKey(job)}`)).toString();
    expect(stored).toBe(serializeRows(logRows(simulator.dataset, job.appUuid, job.hour)));
  }

  const lines = [deployment.output('planner'), deployment.output('copier')]
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const emf = lines.filter((line) => '_aws' in line);
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
  expect(sum('filesCopied')).toBe(jobs.length);
  expect(sum('rowsCopied')).toBeGreaterThan(0);
  expect(sum('bytesCopied')).toBeGreaterThan(0);
  expect(sum('jobsEnqueued')).toBe(jobs.length);
  // One worst lag a run, whatever the number of apps: first nothing copied (the window, 2 hours, for every app: all
  // lag more than 1), then the newest hour one hour of lag old. No metric per app.
  const lag = emf.filter((entry) => 'maxLagHours' in entry);
  expect(lag.map((entry) => [entry.maxLagHours, entry.appsLagging])).toEqual([
    [2, E2E_APPS.length],
    [1, 0],
  ]);
  expect(emf.some((entry) => 'app' in entry || 'lagHours' in entry)).toBe(false);
  // Each app's lag is a log line of its own, for the dashboard's list of the most lagging apps.
  const appLag = lines.filter((line) => line.message === 'app lag');
  expect(appLag.map((line) => [line.app, line.lagHours]).sort()).toEqual(
    [...E2E_APPS.map((appUuid) => [appUuid, 2]), ...E2E_APPS.map((appUuid) => [appUuid, 1])].sort(),
  );
  expect(
    emf.every(
      (entry) =>
        (entry._aws as { CloudWatchMetrics: { Namespace: string }[] }).CloudWatchMetrics[0]?.Namespace ===
        'LocalyticsExportSync',
    ),
  ).toBe(true);
});

test('a copier finding another run requesting the change set reads its claim and hands the job back, sending nothing', async () => {
  const { copier, deployment } = await deploy({ DATASETS: 'profiles' });
  const job = yesterdaysChangeSet();
  const claimedAt = Date.now();
  const claim = {
    state: 'requesting',
    profileDbId: job.profileDbId,
    generatedAt: job.generatedAt,
    key: dataKey(job),
    // Another run's id, in the form this code writes (any other holder is refused as an unreadable record).
    holder: randomUUID(),
    claimedAt: new Date(claimedAt).toISOString(),
    staleAfter: new Date(claimedAt + 10 * 60_000).toISOString(),
  };
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: `lake/${pendingChangeSetKey(job)}`, Body: JSON.stringify(claim) }),
  );
  await send(serializeJobMessage(newJobMessage(job, Date.now())));
  const mark = simulator.requests.length;
  expect(await pollUntilEmpty(deployment.eventSource, queues, copier)).toMatchObject({ failures: 0 });
  expect(simulator.requests.slice(mark)).toEqual([]);
  expect(await queueDepth(sqs, queues.queueUrl)).toMatchObject({ delayed: 1 });
  // The claim was read (under a customer-managed bucket key, a GetObject S3 decrypts for the copier).
  expect(deployment.actions('copier').filter((action) => action.operation === 'GetObject')).toEqual([
    expect.objectContaining({ resource: `arn:aws:s3:::${bucket}/lake/${pendingChangeSetKey(job)}`, status: 200 }),
  ]);
});

describe('the queued-job ledger', () => {
  const ledger = () => new DynamoDbJobLedger(dynamoDb, ledgerTable);

  test("the deployment trigger's empty event plans the daily task over the whole 30-day retention of every bundled app, once", async () => {
    // 100 requests a minute, 5 minutes ahead: the queue takes 500 jobs; the rest of the 60 × 718 hours is backlog.
    const { planner } = await deploy(
      { BACKFILL_DAYS: '30', RATE_PER_MINUTE: '100', QUEUE_AHEAD_MINUTES: '5' },
      { apps: 'bundled' },
    );
    const first = await planner<{ window: { from: number } }>({});
    const missing = 718 * E2E_APPS.length;
    expect(first).toMatchObject({
      task: 'exports',
      logHoursMissing: missing,
      enqueued: 4 + 2 + 494,
      backlog: missing - 494,
    });
    expect(first.window.from).toBe(floorHour(Date.now() - 30 * 24 * HOUR_MS) + HOUR_MS);
    const depth = await queueDepth(sqs, queues.queueUrl);
    expect(depth.visible + depth.delayed).toBe(500);
    // A later deployment runs it again: everything missing is already waiting or backlog.
    expect(await planner({})).toMatchObject({ enqueued: 0, alreadyQueued: 500, backlog: missing - 494 });
    expect((await ledger().read(Date.now())).queued.size).toBe(500);
  });

  test('an entry goes when its job lands, stays while the job waits again, and rests when it is parked', async () => {
    const { planner, copier, deployment } = await deploy({ DATASETS: 'logs', LOOKBACK_HOURS: '3' });
    expect(await planner({ task: 'logs' })).toMatchObject({ enqueued: 3 });
    expect((await ledger().read(Date.now())).queued.size).toBe(3);
    await pollUntilEmpty(deployment.eventSource, queues, copier);
    expect(await ledger().read(Date.now())).toMatchObject({ queued: new Set(), parked: new Set() });

    const unknownApp = 'abcdef0123456789abcdef0-00000000-0000-0000-0000-000000000000';
    const late: SyncJob = { kind: 'log_hour', appUuid: unknownApp, hour: floorHour(Date.now()) - 9 * HOUR_MS };
    const forbidden: SyncJob = { kind: 'audience', audienceId: '999', identifierType: 'idfa', generatedAt: 0 };
    for (const job of [late, forbidden]) {
      await ledger().claim(ledgerId(job), Date.now() + HOUR_MS, Date.now(), 'claim-of-this-test');
      await send(serializeJobMessage(newJobMessage(job, Date.now(), 'claim-of-this-test')));
    }
    await pollUntilEmpty(deployment.eventSource, queues, copier);
    const after = await ledger().read(Date.now());
    expect(after.queued).toEqual(new Set([ledgerId(late)]));
    expect(after.parked).toEqual(new Set([ledgerId(forbidden)]));
  });

  test('a stale duplicate message leaves the newer claim of its job: the job is not sent again (issue 18 item 8)', async () => {
    const { copier, deployment } = await deploy({ DATASETS: 'logs' });
    const job = logJob(floorHour(Date.now()) - 10 * HOUR_MS);
    // A planner run claimed the job and sent it; it was copied.
    await ledger().claim(ledgerId(job), Date.now() + HOUR_MS, Date.now(), 'claim-of-run-1');
    const first = serializeJobMessage(newJobMessage(job, Date.now(), 'claim-of-run-1'));
    await send(first);
    await pollUntilEmpty(deployment.eventSource, queues, copier);
    expect((await ledger().read(Date.now())).queued.size).toBe(0);
    // A later run holds a newer claim of the same job (its message waits in the queue)...
    await ledger().claim(ledgerId(job), Date.now() + HOUR_MS, Date.now(), 'claim-of-run-2');
    // ...when SQS delivers the first message once more.
    await send(first);
    await pollUntilEmpty(deployment.eventSource, queues, copier);
    expect((await ledger().read(Date.now())).queued).toEqual(new Set([ledgerId(job)]));
  });

  test('a planner out of time sends nothing half: the ledger and the queue agree, the window is backlog', async () => {
    const { planner } = await deploy({ DATASETS: 'logs', LOOKBACK_HOURS: '3' });
    // No time left: neither the listing nor the sending may start.
    const summary = await planner<{ window: { from: number } }>({ task: 'logs' }, 0);
    expect(summary).toMatchObject({ stoppedAtDeadline: true, enqueued: 0 });
    expect(await queueDepth(sqs, queues.queueUrl)).toMatchObject({ visible: 0, delayed: 0 });
    const after = await ledger().read(Date.now());
    expect(after.queued.size).toBe(0);
    expect(after.backlogFrom).toBe(summary.window.from);
    // The next top-up sends the rest.
    expect(await planner({ task: 'topup' })).toMatchObject({ enqueued: 3, backlog: 0 });
  });

  test('a planner whose ledger table is missing fails naming it, and sends nothing', async () => {
    ledgerTable = 'missing-ledger';
    const { planner } = await deploy();
    await expect(planner({ task: 'logs' })).rejects.toThrow(/job ledger \(DynamoDB table "missing-ledger"\)/);
    expect(await queueDepth(sqs, queues.queueUrl)).toMatchObject({ visible: 0, delayed: 0 });
  });

  test('a copier whose ledger cannot be written still lands its job', async () => {
    ledgerTable = 'missing-ledger';
    const { copier, deployment } = await deploy();
    const hour = floorHour(Date.now()) - 11 * HOUR_MS;
    await send(serializeJobMessage(newJobMessage(logJob(hour), Date.now())));
    expect(await pollUntilEmpty(deployment.eventSource, queues, copier)).toMatchObject({ failures: 0 });
    expect(await listAllKeys(s3, bucket, 'lake/')).toEqual([`lake/${dataKey(logJob(hour))}`]);
  });
});

// Last in the file: it compares what every test above recorded with the policies of a deployment given every key.
test('under every key option each function may use exactly the KMS actions its recorded calls need, only via S3 or DynamoDB', async () => {
  expect(
    keyUsesSeen.copier.size,
    "this test reads what the file's other tests recorded: run the whole file",
  ).toBeGreaterThan(0);
  const keyed = await synthesizeDeployment(await tempDir('cdk.out-lsync-keys-'), {
    budgetTable: E2E_SHARED_BUDGET_TABLE,
    budgetTableKmsKeyArn: E2E_BUDGET_TABLE_KEY_ARN,
    'aws:cdk:bundling-stacks': [],
  });
  for (const name of arm64Missing ? (['planner', 'copier'] as const) : FUNCTIONS) {
    const statements = keyed.functions[name].statements
      .filter((statement) => [statement.Action ?? []].flat().some((action) => action.startsWith('kms:')))
      .map((statement) => resolveCfn(statement, { refs: {}, attributes: {} }) as PolicyStatement);
    const granted = statements.flatMap((statement) =>
      [statement.Action ?? []]
        .flat()
        .flatMap((action) =>
          [statement.Resource ?? []]
            .flat()
            .map((resource) => describeKeyUse({ action, resource, context: statement.Condition?.StringEquals ?? {} })),
        ),
    );
    // Nothing missing (every use is allowed), nothing more (every grant is used by some call).
    const uses = [...keyUsesSeen[name].values()];
    expect(uses.filter((use) => !isAllowed(statements, use)).map(describeKeyUse), name).toEqual([]);
    expect([...keyUsesSeen[name].keys()].sort(), name).toEqual(granted.sort());
  }
}, 120_000);
