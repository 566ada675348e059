import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createS3Client, createSqsClient } from '../adapters/aws-clients.js';
import { DuckDbParquetEncoder } from '../adapters/duckdb-parquet-encoder.js';
import { S3ObjectReader } from '../adapters/object-readers.js';
import { fromPowertools } from '../adapters/powertools-logger.js';
import { S3Sink } from '../adapters/s3-sink.js';
import { SqsConversionQueue } from '../adapters/sqs-queue.js';
import type { ConvertDependencies } from '../core/convert-file.js';
import type { Logger } from '../core/ports.js';
import { type ConverterConfig, readConverterConfig } from './converter-config.js';
import { METRICS_NAMESPACE } from './telemetry.js';

/** Everything the converter needs, built once per cold start and reused by warm invocations. */
export interface ConverterRuntime {
  readonly config: ConverterConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly queue: SqsConversionQueue;
  readonly deps: ConvertDependencies;
  /** Remove conversion scratch left by an invocation that was killed (a container runs one invocation at a time). */
  cleanScratch(): Promise<void>;
}

let cached: ConverterRuntime | undefined;

export function converterRuntime(env: Readonly<Record<string, string | undefined>> = process.env): ConverterRuntime {
  cached ??= createConverterRuntime(env);
  return cached;
}

export function createConverterRuntime(env: Readonly<Record<string, string | undefined>>): ConverterRuntime {
  const config = readConverterConfig(env);
  const logger = fromPowertools(new PowertoolsLogger({ serviceName: 'localytics-export-sync' }));
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'localytics-export-sync' });
  const s3 = createS3Client(env);
  const destination = { bucket: config.bucket, prefix: config.prefix };
  const spillDir = path.join(config.scratchDir, 'lsync-duckdb-spill');
  const encoder = new DuckDbParquetEncoder({
    memoryLimitMiB: config.memoryLimitMiB,
    threads: config.threads,
    spillDir,
  });
  // The spill directory of a process that was killed: no database uses it yet in this one.
  let leftovers: Promise<void> | undefined = rm(spillDir, { recursive: true, force: true });
  return {
    config,
    logger,
    metrics,
    queue: new SqsConversionQueue(createSqsClient(env), {
      queueUrl: config.queueUrl,
      deadLetterQueueUrl: config.deadLetterQueueUrl,
    }),
    deps: {
      reader: new S3ObjectReader(s3, destination),
      sink: new S3Sink(s3, destination),
      encoder,
      logger,
      scratchDir: config.scratchDir,
    },
    async cleanScratch() {
      await leftovers;
      leftovers = undefined;
      const names = await readdir(config.scratchDir).catch(() => [] as string[]);
      await Promise.all(
        names
          .filter((name) => name.startsWith('lsync-convert-'))
          .map((name) => rm(path.join(config.scratchDir, name), { recursive: true, force: true })),
      );
    },
  };
}
