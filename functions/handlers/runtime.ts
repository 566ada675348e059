import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createDynamoDbClient, createS3Client, createSqsClient } from '../adapters/aws-clients.js';
import { DynamoDbJobLedger } from '../adapters/dynamodb-job-ledger.js';
import { LocalyticsClient } from '../adapters/localytics-client.js';
import { fromPowertools } from '../adapters/powertools-logger.js';
import { S3Sink } from '../adapters/s3-sink.js';
import { SecretsManagerSecretProvider } from '../adapters/secrets.js';
import { sqsConversionEnqueuer } from '../adapters/sqs-conversion-queue.js';
import { SqsJobQueue } from '../adapters/sqs-job-queue.js';
import type { Logger } from '../core/ports.js';
import { RequestBudget } from '../core/request-budget.js';
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
  /** Hands a data object to the Parquet converter's queue (when the deployment has the Parquet layer). */
  readonly afterCopy?: (key: string) => Promise<void>;
  /** The Localytics client with current credentials (the secret is cached, re-read after its TTL). */
  source(): Promise<LocalyticsClient>;
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
  // This process's share of the key's budget: all copiers at maximum concurrency plus the planner stay within it.
  const budget = new RequestBudget({ ratePerMinute: config.processRatePerMinute });
  let client: { key: string; client: LocalyticsClient } | undefined;
  const sqs = createSqsClient(env);
  return {
    config,
    logger,
    powertoolsLogger,
    metrics,
    sink: new S3Sink(createS3Client(env), { bucket: config.bucket, prefix: config.prefix }),
    queue: new SqsJobQueue(sqs, config.queueUrl, config.deadLetterQueueUrl),
    ledger: new DynamoDbJobLedger(createDynamoDbClient(), config.ledgerTable),
    afterCopy: config.convertQueueUrl ? sqsConversionEnqueuer(sqs, config.convertQueueUrl) : undefined,
    async source() {
      const credentials = await secrets.getCredentials();
      const key = `${credentials.apiKey}\u0000${credentials.apiSecret}`;
      if (client?.key !== key) {
        client?.client.close();
        client = {
          key,
          client: new LocalyticsClient({
            apiUrl: config.apiUrl,
            credentials,
            budget,
            locationPolicy: { extraHosts: config.allowedFileHosts },
          }),
        };
      }
      return client.client;
    },
  };
}
