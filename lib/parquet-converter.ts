import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  GraphWidget,
  Metric,
  SingleValueWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, Code, LayerVersion, Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { PARQUET_FOLDER, TABLES } from '../functions/core/tables.js';
import { METRIC, METRICS_NAMESPACE } from '../functions/handlers/telemetry.js';
import { createOnlyPutStatements } from './create-only-writes.js';
import { ExportQueue } from './export-queue.js';
import { grantKeyUseVia } from './kms-grants.js';
import type { Monitoring } from './monitoring.js';
import { acknowledgeExpectedWildcards } from './nag-acknowledgements.js';
import { DUCKDB_BINDING, duckDbLayerDir } from './native-packages.mjs';
import { type FunctionNetwork, SyncFunction } from './sync-function.js';

export interface ParquetConverterProps {
  readonly bucket: IBucket;
  /** The bucket's customer-managed KMS key, if any. */
  readonly bucketKey?: IKey;
  /** The deployment's key prefix: JSON objects are read, and Parquet objects written, under it. */
  readonly keyPrefix: string;
  /** Memory of the converter, MiB (at most 1 GiB is enough for a 1 GiB log hour). @default 1024 */
  readonly memorySize?: number;
  /** @default Duration.minutes(10) */
  readonly timeout?: Duration;
  /** Conversions at once (SQS maximum concurrency, 2 to 1000). @default 2 */
  readonly concurrency?: number;
  /** Deliveries of a failing conversion before it is parked in the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** /tmp, MiB: the gzip JSON file, its Parquet file and DuckDB's spill (about half the JSON's size). @default 10240 */
  readonly ephemeralStorageMiB?: number;
  /** Adds the converter's alarms (with the monitoring's notification topic) and dashboard widgets. */
  readonly monitoring?: Monitoring;
  /** Lambda layer with the linux-arm64 DuckDB binding. @default the one `scripts/fetch-native.mjs` fetched on `npm ci` */
  readonly duckDbLayerDir?: string;
  /** Customer-managed key of the function's log group. @default CloudWatch Logs' own encryption */
  readonly logEncryptionKey?: IKey;
  /** Run in these subnets of a VPC. @default Lambda's own network */
  readonly network?: FunctionNetwork;
}

/**
 * The Parquet layer's converter: an SQS queue fed by the copier (one message per file copied), its dead-letter queue,
 * and a function that writes the typed Parquet twin of each JSON data object under `<keyPrefix>/parquet/`. Its
 * Parquet writer is DuckDB, native code: the function bundles DuckDB's JavaScript and loads the linux-arm64 binding
 * from a layer, whatever machine synthesizes the stack.
 */
export class ParquetConverter extends Construct {
  readonly function: SyncFunction;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: ParquetConverterProps) {
    super(scope, id);
    const memorySize = props.memorySize ?? 1024;
    const timeout = props.timeout ?? Duration.minutes(10);
    const concurrency = props.concurrency ?? 2;
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    const ephemeralStorageMiB = props.ephemeralStorageMiB ?? 10_240;
    if (!Number.isInteger(memorySize) || memorySize < 512 || memorySize > 10_240) {
      throw new Error(`converterMemorySize must be a whole number of MiB from 512 to 10240, got ${memorySize}`);
    }
    if (!Number.isInteger(concurrency) || concurrency < 2 || concurrency > 1000) {
      throw new Error(`converterConcurrency must be a whole number from 2 to 1000, got ${concurrency}`);
    }
    if (!Number.isInteger(ephemeralStorageMiB) || ephemeralStorageMiB < 512 || ephemeralStorageMiB > 10_240) {
      throw new Error(`ephemeralStorageMiB must be a whole number from 512 to 10240, got ${ephemeralStorageMiB}`);
    }
    const layerDir = props.duckDbLayerDir ?? duckDbLayerDir();
    if (!existsSync(layerDir)) {
      throw new Error(
        `The Parquet converter needs DuckDB's linux-arm64 binding in ${layerDir}: run "node scripts/fetch-native.mjs" ` +
          '(npm ci runs it; it needs the npm registry), or turn the Parquet layer off (context parquet=false)',
      );
    }

    const queues = new ExportQueue(this, 'Queues', {
      visibilityTimeout: Duration.seconds(timeout.toSeconds() * 6),
      maxReceiveCount,
      purpose: 'Parquet conversion',
    });
    this.queue = queues.queue;
    this.deadLetterQueue = queues.deadLetterQueue;

    const layer = new LayerVersion(this, 'DuckDbBinding', {
      code: Code.fromAsset(layerDir),
      compatibleArchitectures: [Architecture.ARM_64],
      compatibleRuntimes: [Runtime.NODEJS_22_X],
      description: `${DUCKDB_BINDING} (DuckDB's native code for the Parquet converter)`,
    });
    this.function = new SyncFunction(this, 'Function', {
      entry: fileURLToPath(new URL('../functions/handlers/converter.ts', import.meta.url)),
      description: 'Converts each copied Localytics file to its typed Parquet twin',
      timeout,
      memorySize,
      ephemeralStorageMiB,
      layers: [layer],
      // The platform packages of DuckDB's binding are native: the layer provides linux-arm64 on NODE_PATH.
      externalModules: ['@duckdb/node-bindings-*'],
      environment: {
        DEST_BUCKET: props.bucket.bucketName,
        DEST_PREFIX: props.keyPrefix,
        CONVERT_QUEUE_URL: this.queue.queueUrl,
        CONVERT_DLQ_URL: this.deadLetterQueue.queueUrl,
        MAX_RECEIVE_COUNT: String(maxReceiveCount),
        // DuckDB gets 40% of the memory: Node.js, DuckDB's code and its unmanaged buffers need the rest (bench/RESULTS.md).
        DUCKDB_MEMORY_LIMIT_MB: String(Math.floor(memorySize * 0.4)),
        // Lambda gives a full vCPU at 1769 MiB.
        DUCKDB_THREADS: String(Math.max(1, Math.floor(memorySize / 1769))),
      },
      logEncryptionKey: props.logEncryptionKey,
      network: props.network,
    });
    this.function.addEventSource(
      new SqsEventSource(this.queue, { batchSize: 1, reportBatchItemFailures: true, maxConcurrency: concurrency }),
    );
    this.grantAccess(props);
    if (props.monitoring) this.monitor(props.monitoring);
  }

  /** Let the copier hand each file it copies to this converter: send permission and the queue's URL in one call. */
  bindCopier(copier: SyncFunction): void {
    this.queue.grantSendMessages(copier);
    copier.addEnvironment('CONVERT_QUEUE_URL', this.queue.queueUrl);
  }

  /** Read the JSON layer's data objects; create, and only create, objects under `<prefix>/parquet/`. */
  private grantAccess(props: ParquetConverterProps): void {
    const prefix = props.keyPrefix;
    const parquetObjects = props.bucket.arnForObjects(`${prefix}/${PARQUET_FOLDER}/*`);
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:GetObject'],
        resources: TABLES.map((table) => props.bucket.arnForObjects(`${prefix}/${table.folder}/*`)),
      }),
    );
    // Existence checks are prefix listings (see S3Sink.exists): of Parquet objects, and of a JSON object whose GET
    // S3 answered 403 (it does so for a missing key to a caller without an unconditioned s3:ListBucket).
    this.function.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['s3:ListBucket'],
        resources: [props.bucket.bucketArn],
        conditions: {
          StringLike: {
            's3:prefix': [PARQUET_FOLDER, ...TABLES.map((table) => table.folder)].map(
              (folder) => `${prefix}/${folder}/*`,
            ),
          },
        },
      }),
    );
    // To abort the multipart upload of a converter killed mid-write (a Parquet file over 5 GiB) once its key landed.
    // It cannot be narrowed: the action is on the bucket, with no prefix condition.
    this.function.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:ListBucketMultipartUploads'], resources: [props.bucket.bucketArn] }),
    );
    // A Parquet object is created once and never replaced by the converter (a redelivery finds it present; only the
    // CLI's convert --rebuild replaces, with the user's own credentials).
    for (const statement of createOnlyPutStatements([parquetObjects])) this.function.addToRolePolicy(statement);
    this.function.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:AbortMultipartUpload'], resources: [parquetObjects] }),
    );
    // Reads the JSON objects (GetObject: Decrypt) and writes the Parquet ones (PutObject: GenerateDataKey; a multipart
    // upload, for a twin over 5 GiB, also Decrypts for each part).
    if (props.bucketKey) grantKeyUseVia(props.bucketKey, this.function, 's3', ['kms:Decrypt', 'kms:GenerateDataKey']);
    const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const folders = [PARQUET_FOLDER, ...TABLES.map((table) => table.folder)].join('|');
    acknowledgeExpectedWildcards(this, [
      {
        finding: new RegExp(`^Resource::.*/${escaped}/(${folders})/\\*$`),
        reason: `The converter reads the JSON layer's folders and writes only under "${prefix}/${PARQUET_FOLDER}/" (object ARNs under a prefix end in *).`,
      },
    ]);
    this.deadLetterQueue.grantSendMessages(this.function);
    // Requeue a conversion handed back at the deadline (the event source grants receiving and visibility changes).
    this.queue.grantSendMessages(this.function);
  }

  private monitor(monitoring: Monitoring): void {
    const metric = (metricName: string, statistic = 'Sum', period = Duration.hours(1)) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        statistic,
        period,
        dimensionsMap: { service: 'localytics-export-sync' },
      });
    const dlqDepth = this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(5),
      statistic: 'Maximum',
    });
    const alarm = (alarmId: string, options: { metric: Metric; description: string }) => {
      const created = new Alarm(this, alarmId, {
        metric: options.metric,
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: options.description,
      });
      created.addAlarmAction(new SnsAction(monitoring.topic));
      this.alarms.push(created);
    };
    alarm('ConversionFailures', {
      metric: metric(METRIC.conversionFailures, 'Sum', Duration.minutes(5)),
      description: 'Parquet conversions failed (retried, then parked): see the converter log, reason in the message.',
    });
    alarm('ConverterErrors', {
      metric: this.function.metricErrors({ period: Duration.minutes(5) }),
      description: 'The Parquet converter function failed (crash, out of memory or timeout).',
    });
    alarm('ConversionDeadLetterQueueNotEmpty', {
      metric: dlqDepth,
      description: 'Conversions were parked in the dead-letter queue: read their failureReason attribute.',
    });
    monitoring.dashboard.addWidgets(
      new GraphWidget({
        title: 'Parquet layer',
        left: [
          metric(METRIC.filesConverted).with({ label: 'files converted' }),
          metric(METRIC.conversionFailures).with({ label: 'failures' }),
          metric(METRIC.conversionWarnings).with({ label: 'warnings' }),
        ],
        right: [metric(METRIC.rowsConverted).with({ label: 'rows converted' })],
        width: 8,
      }),
      new GraphWidget({
        title: 'Parquet queue',
        left: [
          this.queue.metricApproximateNumberOfMessagesVisible({ label: 'waiting' }),
          this.queue.metricApproximateNumberOfMessagesNotVisible({ label: 'in flight' }),
        ],
        right: [dlqDepth.with({ label: 'dead-letter queue' })],
        width: 8,
      }),
      new SingleValueWidget({
        title: 'Conversion duration (p50 / p99 ms)',
        metrics: [metric(METRIC.conversionDuration, 'p50'), metric(METRIC.conversionDuration, 'p99')],
        width: 8,
      }),
    );
  }
}
