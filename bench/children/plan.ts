/**
 * The planner's use case (`planToQueue`, daily `exports` task, logs only) against a seeded destination and an SQS
 * queue, with a source that is never asked anything (planning log hours needs no API call).
 * Usage: node plan.mjs '<PlanChildConfig JSON>'; prints a PlanChildResult JSON line.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { MemoryJobLedger } from '../../functions/adapters/memory-job-ledger.js';
import { S3Sink } from '../../functions/adapters/s3-sink.js';
import { SqsJobQueue } from '../../functions/adapters/sqs-job-queue.js';
import { planToQueue } from '../../functions/core/plan-to-queue.js';
import type { ExportSource, ObjectSink } from '../../functions/core/ports.js';
import { silentLogger } from '../../functions/core/ports.js';
import type { PlanChildConfig, PlanChildResult } from '../planner-types.js';

const config = JSON.parse(process.argv[2] ?? '') as PlanChildConfig;

type CommandTimes = Record<string, { calls: number; ms: number }>;

/** Time and count every SDK command a client sends (the planner's calls are sequential, so times add up). */
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
const sqs = new SQSClient({
  endpoint: config.sqsEndpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  useQueueUrlAsEndpoint: false,
});
instrument(sqs, commands);
let sink: ObjectSink;
let s3: S3Client | undefined;
if (config.sink.type === 's3') {
  s3 = new S3Client({
    endpoint: config.sink.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  instrument(s3, commands);
  sink = new S3Sink(s3, { bucket: config.sink.bucket, prefix: config.sink.prefix });
} else {
  sink = new LocalDirSink(config.sink.dir);
}
const queue = new SqsJobQueue(sqs, config.queueUrl, config.dlqUrl);
let enqueueMs = 0;
const timedQueue = {
  enqueue: async (...args: Parameters<SqsJobQueue['enqueue']>) => {
    const started = performance.now();
    await queue.enqueue(...args);
    enqueueMs += performance.now() - started;
  },
  requeue: queue.requeue.bind(queue),
  park: queue.park.bind(queue),
};

const started = performance.now();
const summary = await planToQueue(
  'exports',
  {
    apps: config.apps,
    datasets: new Set(['logs']),
    logLagHours: 1,
    lookbackHours: 6,
    backfillDays: 30,
    requestsPerMinute: 50,
    queueAheadMinutes: 100_000,
  },
  { source, sink, queue: timedQueue, ledger: new MemoryJobLedger(), logger: silentLogger },
  config.now,
);
const totalMs = performance.now() - started;
s3?.destroy();
sqs.destroy();
const result: PlanChildResult = {
  window: summary.window,
  enqueued: summary.enqueued,
  present: summary.present,
  beyondRetention: summary.beyondRetention,
  totalMs,
  enqueueMs,
  planMs: totalMs - enqueueMs,
  commands,
  heapUsedMiB: process.memoryUsage().heapUsed / 1024 / 1024,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
