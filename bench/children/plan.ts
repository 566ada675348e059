/**
 * The planner's use case (`planToQueue`, logs only) against a seeded destination (S3Sink on s3rver), the job queue
 * (SqsJobQueue on fauxqs) and the queued-job ledger (DynamoDbJobLedger on dynalite), with a source that is never
 * asked anything (planning log hours needs no API call).
 * Usage: node plan.mjs '<PlanChildConfig JSON>'; prints a PlanChildResult JSON line.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDbJobLedger } from '../../functions/adapters/dynamodb-job-ledger.js';
import { S3Sink } from '../../functions/adapters/s3-sink.js';
import { SqsJobQueue } from '../../functions/adapters/sqs-queue.js';
import { planToQueue } from '../../functions/core/plan-to-queue.js';
import type { ExportSource } from '../../functions/core/ports.js';
import { silentLogger } from '../../functions/core/ports.js';
import type { PlanChildConfig, PlanChildResult } from '../planner-types.js';

const config = JSON.parse(process.argv[2] ?? '') as PlanChildConfig;

type CommandTimes = Record<string, { calls: number; ms: number }>;

/** Count every SDK command a client sends and sum its latency (concurrent calls add up: a busy-time measure). */
function instrument<Client extends { send(command: object): Promise<unknown> }>(client: Client, into: CommandTimes) {
  const send = client.send.bind(client);
  client.send = (async (command: object) => {
    const started = performance.now();
    try {
      return await send(command);
    } finally {
      // The bundler may suffix a class name to keep it unique (SendMessageBatchCommand2).
      const name = command.constructor.name.replace(/(Command)\d+$/, '$1');
      const entry = into[name] ?? { calls: 0, ms: 0 };
      entry.calls++;
      entry.ms += performance.now() - started;
      into[name] = entry;
    }
  }) as Client['send'];
}

const unused = (): never => {
  throw new Error('the planner asked the API for a file: it should not for log hours');
};
const source: ExportSource = {
  listAudiences: async () => [],
  listProfiles: async () => [],
  resolve: unused,
  download: unused,
};

const commands: CommandTimes = {};
const local = { region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
const sqs = new SQSClient({ ...local, endpoint: config.sqsEndpoint, useQueueUrlAsEndpoint: false });
const s3 = new S3Client({
  endpoint: config.s3Endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
});
const dynamoDb = new DynamoDBClient({ ...local, endpoint: config.dynamoDbEndpoint });
for (const client of [sqs, s3, dynamoDb]) instrument(client, commands);

const started = performance.now();
const summary = await planToQueue(
  config.task,
  {
    apps: config.apps,
    datasets: new Set(['logs']),
    logLagHours: 1,
    lookbackHours: 6,
    backfillDays: 30,
    requestsPerMinute: config.requestsPerMinute,
    queueAheadMinutes: config.queueAheadMinutes,
  },
  {
    source,
    sink: new S3Sink(s3, { bucket: config.bucket, prefix: config.prefix }),
    queue: new SqsJobQueue(sqs, config.queueUrl, config.dlqUrl),
    ledger: new DynamoDbJobLedger(dynamoDb, config.ledgerTable),
    logger: silentLogger,
  },
  config.now,
);
const totalMs = performance.now() - started;
for (const client of [sqs, s3, dynamoDb]) client.destroy();
const result: PlanChildResult = {
  window: summary.window,
  enqueued: summary.enqueued,
  present: summary.present,
  logHoursMissing: summary.logHoursMissing,
  backlog: summary.backlog,
  alreadyQueued: summary.alreadyQueued,
  totalMs,
  commands,
  heapUsedMiB: process.memoryUsage().heapUsed / 1024 / 1024,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
