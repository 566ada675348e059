import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createDynamoDbClient, createS3Client, createSqsClient } from '../adapters/aws-clients.js';
import { DynamoDbJobLedger } from '../adapters/dynamodb-job-ledger.js';
import { budgetTableRegion, DynamoDbRequestBudget } from '../adapters/dynamodb-request-budget.js';
import { LocalyticsClient } from '../adapters/localytics-client.js';
import { fromPowertools } from '../adapters/powertools-logger.js';
import { S3Sink } from '../adapters/s3-sink.js';
import { SecretsManagerSecretProvider } from '../adapters/secrets.js';
import { SqsConversionQueue, SqsJobQueue } from '../adapters/sqs-queue.js';
import type { Logger } from '../core/ports.js';
import type { AcquireOptions, RequestBudget } from '../core/request-budget.js';
import { sweepAbandonedUploads } from '../core/upload-sweep.js';
import { type HandlerConfig, readHandlerConfig } from './config.js';
import { METRICS_NAMESPACE } from './telemetry.js';

/** Everything a handler needs, built once per cold start and reused by warm invocations. */
export interface Runtime {
  readonly config: HandlerConfig;
  readonly logger: Logger;
  readonly powertoolsLogger: PowertoolsLogger;
  readonly metrics: Metrics;
  readonly sink: S3Sink;
  readonly queue: SqsJobQueue;
  /** This deployment's queued-job ledger. */
  readonly ledger: DynamoDbJobLedger;
  /** The copier's sweep of uploads killed copiers left open: at most once an hour per container. */
  sweepAbandonedUploads(signal?: AbortSignal): Promise<void>;
  /** Hands a data object to the Parquet converter's queue (when the deployment has the Parquet layer). */
  readonly afterCopy?: (key: string) => Promise<void>;
  /**
   * The Localytics client with current credentials (the secret is cached, re-read after its TTL), for one invocation
   * whose work must end by `deadlineAt` (epoch ms): each call takes no request budget slot later than
   * `budgetNotAfter(now, deadlineAt)`.
   */
  source(invocation?: { readonly deadlineAt?: number }): Promise<LocalyticsClient>;
}

/** How often a copier container sweeps the uploads killed copiers left open. */
const SWEEP_INTERVAL_MS = 60 * 60_000;

/** The longest an invocation waits for a budget slot: sleeping copiers cost money and a slot a minute on is as good. */
const MAX_BUDGET_WAIT_MS = 60_000;

/**
 * The latest budget slot an invocation whose work must end by `deadlineAt` takes: at most half of the time left (the
 * other half is for the work) and at most a minute. A later one is not reserved; the job is handed back with a delay.
 */
export function budgetNotAfter(now: number, deadlineAt: number): number {
  return Math.min(now + MAX_BUDGET_WAIT_MS, now + Math.max(0, deadlineAt - now) / 2);
}

let cached: Runtime | undefined;

export function runtime(env: Readonly<Record<string, string | undefined>> = process.env): Runtime {
  cached ??= createRuntime(env);
  return cached;
}

/** A fresh runtime (one per Lambda container; tests make several to play several containers). */
export function createRuntime(env: Readonly<Record<string, string | undefined>>): Runtime {
  const config = readHandlerConfig(env);
  const powertoolsLogger = new PowertoolsLogger({ serviceName: 'localytics-export-sync' });
  const logger = fromPowertools(powertoolsLogger);
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'localytics-export-sync' });
  const secrets = new SecretsManagerSecretProvider({ secretId: config.secretId, client: new SecretsManagerClient({}) });
  const dynamo = createDynamoDbClient(budgetTableRegion(config.budgetTable));
  let client: { key: string; client: LocalyticsClient; budget: InvocationBudget } | undefined;
  const sqs = createSqsClient(env);
  const conversions = config.convertQueueUrl
    ? new SqsConversionQueue(sqs, { queueUrl: config.convertQueueUrl })
    : undefined;
  const sink = new S3Sink(createS3Client(env), { bucket: config.bucket, prefix: config.prefix });
  let sweptAt: number | undefined;
  return {
    config,
    logger,
    powertoolsLogger,
    metrics,
    sink,
    async sweepAbandonedUploads(signal) {
      if (sweptAt !== undefined && Date.now() - sweptAt < SWEEP_INTERVAL_MS) return;
      sweptAt = Date.now();
      await sweepAbandonedUploads(sink, logger, signal);
    },
    queue: new SqsJobQueue(sqs, config.queueUrl, config.deadLetterQueueUrl),
    ledger: new DynamoDbJobLedger(createDynamoDbClient(), config.ledgerTable),
    afterCopy: conversions && ((key) => conversions.convertLater(key)),
    async source(invocation = {}) {
      const credentials = await secrets.getCredentials();
      const key = `${credentials.apiKey}\u0000${credentials.apiSecret}`;
      if (client?.key !== key) {
        client?.client.close();
        // The one budget of the key, shared through DynamoDB by every function and container.
        const budget = new InvocationBudget(
          new DynamoDbRequestBudget({
            client: dynamo,
            tableName: config.budgetTable,
            apiKey: credentials.apiKey,
            ratePerMinute: config.ratePerMinute,
            logger,
          }),
        );
        client = {
          key,
          budget,
          client: new LocalyticsClient({
            apiUrl: config.apiUrl,
            credentials,
            budget,
            locationPolicy: { extraHosts: config.allowedFileHosts },
          }),
        };
      }
      client.budget.deadlineAt = invocation.deadlineAt;
      return client.client;
    },
  };
}

/**
 * The shared budget as one invocation sees it (Lambda runs one at a time): each call waits at most what
 * `budgetNotAfter` allows from the moment it asks, so that a call late in the invocation (the list that confirms a
 * generation after a long download) still gets its share of the time left.
 */
export class InvocationBudget implements RequestBudget {
  deadlineAt: number | undefined;

  constructor(private readonly shared: RequestBudget) {}

  acquire(signal?: AbortSignal, options: AcquireOptions = {}): Promise<void> {
    const notAfter =
      options.notAfter ?? (this.deadlineAt === undefined ? undefined : budgetNotAfter(Date.now(), this.deadlineAt));
    return this.shared.acquire(signal, { ...options, notAfter });
  }

  pause(ms: number): Promise<void> {
    return this.shared.pause(ms);
  }
}
