import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { newConversionMessage } from '../../functions/core/conversion-job.js';
import { floorHour, HOUR_MS } from '../../functions/core/hours.js';
import { newJobMessage, serializeJobMessage } from '../../functions/core/job-message.js';
import { dataKey, type SyncJob } from '../../functions/core/jobs.js';
import { parquetTargetOf } from '../../functions/core/parquet-layer.js';
import { createConverterHandler } from '../../functions/handlers/converter.js';
import { createConverterRuntime } from '../../functions/handlers/converter-runtime.js';
import { createCopierHandler } from '../../functions/handlers/copier.js';
import { createRuntime } from '../../functions/handlers/runtime.js';
import { logRows } from '../../functions/simulator/dataset.js';
import { createDynamoDbClient, createTestTable, dynamoDbEndpoint } from '../support/dynamodb.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import {
  createS3Client,
  createTestBucket,
  getObjectBytes,
  listAllKeys,
  s3Endpoint,
  s3FunctionEnvironment,
} from '../support/s3.js';
import { S3RecordingProxy } from '../support/s3-proxy.js';
import { credentials, useSimulator } from '../support/simulator.js';
import {
  createJobQueues,
  createSqsClient,
  pollUntilEmpty,
  queueDepth,
  receiveAll,
  sqsEndpoint,
} from '../support/sqs.js';
import { tempDir } from '../support/temp.js';

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
    ...s3FunctionEnvironment(),
    AWS_ENDPOINT_URL_SQS: sqsEndpoint(),
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    AWS_ENDPOINT_URL_DYNAMODB: dynamoDbEndpoint(),
    POWERTOOLS_LOG_LEVEL: 'WARN',
  });
});
afterAll(() => secrets.stop());

let jobs: Awaited<ReturnType<typeof createJobQueues>>;
let conversions: Awaited<ReturnType<typeof createJobQueues>>;
let bucket: string;
let ledgerTable: string;
let budgetTable: string;
const dynamoDb = createDynamoDbClient();

beforeEach(async () => {
  jobs = await createJobQueues(sqs);
  conversions = await createJobQueues(sqs);
  bucket = await createTestBucket(s3);
  ledgerTable = await createTestTable(dynamoDb);
  budgetTable = await createTestTable(dynamoDb);
});

/** The copier and the converter as deployed, on s3rver and fauxqs. */
async function deployment() {
  const copierRuntime = createRuntime({
    ...process.env,
    DEST_BUCKET: bucket,
    DEST_PREFIX: 'lake',
    SECRET_ID: secretArn,
    API_URL: simulator.url,
    DATASETS: 'logs',
    RATE_PER_MINUTE: '6000',
    BUDGET_TABLE: budgetTable,
    QUEUE_URL: jobs.queueUrl,
    DLQ_URL: jobs.dlqUrl,
    CONVERT_QUEUE_URL: conversions.queueUrl,
    LEDGER_TABLE: ledgerTable,
  });
  const converterRuntime = await newConverterRuntime();
  return {
    copier: createCopierHandler(() => copierRuntime),
    converter: createConverterHandler(() => converterRuntime),
    scratch: converterRuntime.config.scratchDir,
  };
}

/** The converter as deployed, on fauxqs and the S3 of the process environment. */
async function newConverterRuntime() {
  return createConverterRuntime({
    ...process.env,
    DEST_BUCKET: bucket,
    DEST_PREFIX: 'lake',
    CONVERT_QUEUE_URL: conversions.queueUrl,
    CONVERT_DLQ_URL: conversions.dlqUrl,
    MAX_RECEIVE_COUNT: '3',
    RETRY_BASE_SECONDS: '1',
    DUCKDB_MEMORY_LIMIT_MB: '256',
    DUCKDB_THREADS: '1',
    SCRATCH_DIR: await tempDir('lsync-converter-scratch-'),
  });
}

const logJob = (hour: number): SyncJob => ({ kind: 'log_hour', appUuid: app(), hour });

async function parquetRows(key: string): Promise<Record<string, unknown>[]> {
  const file = path.join(await tempDir('lsync-parquet-read-'), 'file.parquet');
  await writeFile(file, await getObjectBytes(s3, bucket, key));
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(`SELECT uuid, at_millis FROM read_parquet('${file}')`);
    return reader.getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

test('every file the copier lands is handed to the converter, which writes its Parquet twin', async () => {
  const { copier, converter, scratch } = await deployment();
  const hours = [5, 6].map((n) => floorHour(Date.now()) - n * HOUR_MS);
  for (const hour of hours) {
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: jobs.queueUrl,
        MessageBody: serializeJobMessage(newJobMessage(logJob(hour), Date.now())),
      }),
    );
  }
  expect((await pollUntilEmpty(sqs, jobs, copier)).failures).toBe(0);
  expect(await queueDepth(sqs, conversions.queueUrl)).toMatchObject({ visible: 2 });
  expect((await pollUntilEmpty(sqs, conversions, converter, { batchSize: 1 })).failures).toBe(0);
  for (const hour of hours) {
    const target = parquetTargetOf(dataKey(logJob(hour)));
    const served = logRows(simulator.dataset, app(), hour);
    expect(await parquetRows(`lake/${target?.parquetKey}`)).toEqual(
      served.map((row) => ({ uuid: row.uuid, at_millis: String(row.at_millis) })),
    );
  }
  expect(await listAllKeys(s3, bucket, 'lake/parquet/')).toHaveLength(2);
  expect(await queueDepth(sqs, conversions.dlqUrl)).toMatchObject({ visible: 0 });
  expect(await readdir(scratch)).toEqual([]);
});

test('a conversion delivered again finds its Parquet object present and writes nothing', async () => {
  const { converter } = await deployment();
  const key = dataKey(logJob(floorHour(Date.now()) - 7 * HOUR_MS));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `lake/${key}`, Body: gzipLines([{ uuid: 'a' }]) }));
  const body = JSON.stringify(newConversionMessage(key));
  for (let i = 0; i < 2; i++) {
    await sqs.send(new SendMessageCommand({ QueueUrl: conversions.queueUrl, MessageBody: body }));
    expect((await pollUntilEmpty(sqs, conversions, converter, { batchSize: 1 })).failures).toBe(0);
  }
  const parquet = `lake/${parquetTargetOf(key)?.parquetKey}`;
  expect(await listAllKeys(s3, bucket, 'lake/parquet/')).toEqual([parquet]);
});

test('a malformed message, a missing JSON object and a file that never converts are parked with their reasons', async () => {
  const { converter } = await deployment();
  const missing = dataKey(logJob(floorHour(Date.now()) - 9 * HOUR_MS));
  const broken = dataKey(logJob(floorHour(Date.now()) - 10 * HOUR_MS));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `lake/${broken}`, Body: 'not gzip at all' }));
  for (const body of [
    '{"v":1,"key":"../../etc/passwd"}',
    JSON.stringify(newConversionMessage(missing)),
    JSON.stringify(newConversionMessage(broken)),
  ]) {
    await sqs.send(new SendMessageCommand({ QueueUrl: conversions.queueUrl, MessageBody: body }));
  }
  const run = await pollUntilEmpty(sqs, conversions, converter, { batchSize: 1, timeoutMs: 40_000 });
  // The broken file is retried on its first two deliveries and parked on the third.
  expect(run.failures).toBe(2);
  const parked = await receiveAll(sqs, conversions.dlqUrl);
  const reasons = parked.map((message) => message.MessageAttributes?.failureReason?.StringValue).sort();
  expect(reasons).toEqual([
    `converting to Parquet failed: ${reasons[0]?.slice('converting to Parquet failed: '.length)}`,
    'message is not a conversion: key is not a data object of any table',
    `the JSON object ${missing} does not exist`,
  ]);
  expect(reasons[0]).toMatch(/\(after 3 deliveries\)$/);
  expect(await listAllKeys(s3, bucket, 'lake/parquet/')).toEqual([]);
});

function gzipLines(rows: readonly Record<string, unknown>[]): Buffer {
  return gzipSync(rows.map((row) => JSON.stringify(row)).join('\n'));
}

test('a missing JSON object is parked at once, though S3 answers 403 for it (no unconditioned s3:ListBucket)', async () => {
  // Issue 18, item 4: the converter may list only under the key prefix, so S3 answers a GET of a missing key with
  // 403 AccessDenied, not 404; the conversion was retried as a failure and parked only after its last delivery.
  const proxy = new S3RecordingProxy(s3Endpoint());
  proxy.denyMissingKeys = true;
  const direct = process.env.AWS_ENDPOINT_URL_S3;
  process.env.AWS_ENDPOINT_URL_S3 = await proxy.start();
  try {
    const converterRuntime = await newConverterRuntime();
    const converter = createConverterHandler(() => converterRuntime);
    const missing = dataKey(logJob(floorHour(Date.now()) - 11 * HOUR_MS));
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: conversions.queueUrl,
        MessageBody: JSON.stringify(newConversionMessage(missing)),
      }),
    );
    const run = await pollUntilEmpty(sqs, conversions, converter, { batchSize: 1, timeoutMs: 20_000 });
    expect(run.failures).toBe(0);
    const parked = await receiveAll(sqs, conversions.dlqUrl);
    expect(parked.map((message) => message.MessageAttributes?.failureReason?.StringValue)).toEqual([
      `the JSON object ${missing} does not exist`,
    ]);
    // It was told apart from a real denial by a listing, which the converter's role allows under the prefix.
    expect(proxy.requests.filter((request) => request.status === 403)).toHaveLength(1);
  } finally {
    process.env.AWS_ENDPOINT_URL_S3 = direct;
    await proxy.stop();
  }
});
