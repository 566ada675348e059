import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createDynamoDbClient, createS3Client, s3EndpointOverride } from '../adapters/aws-clients.js';
import { createJsonLogger } from '../adapters/console-logger.js';
import { budgetTableRegion, DynamoDbRequestBudget } from '../adapters/dynamodb-request-budget.js';
import { LocalDirSink } from '../adapters/local-dir-sink.js';
import { S3Sink } from '../adapters/s3-sink.js';
import { SecretsManagerSecretProvider, StaticSecretProvider } from '../adapters/secrets.js';
import type { Credentials, Logger, ObjectSink, SecretProvider } from '../core/ports.js';
import { silentLogger } from '../core/ports.js';
import { describeError } from '../core/redact.js';
import { BUDGET_TABLE_REFERENCE, InProcessRequestBudget, type RequestBudget } from '../core/request-budget.js';
import type { CliIo } from './io.js';
import { type Destination, UsageError } from './options.js';

/**
 * Build the destination adapter. S3 takes the standard AWS SDK environment. An S3-compatible store (an endpoint
 * override) is probed before the first write: one that keeps the SDK's aws-chunked framing as data is sent plain
 * bodies instead, with no setting asked of the user.
 */
export function createSink(destination: Destination, io: CliIo): ObjectSink {
  if (destination.type === 'local') return new LocalDirSink(destination.dir);
  if (!s3EndpointOverride(io.env)) return new S3Sink(createS3Client(io.env), destination);
  return new S3Sink(createS3Client(io.env), destination, {
    probeStore: true,
    plainBodyClient: createS3Client(io.env, { checksumsWhenRequired: true }),
  });
}

/** Credentials from `--secret-id` (Secrets Manager) or `LOCALYTICS_API_KEY` / `LOCALYTICS_API_SECRET`. */
export async function loadCredentials(secretId: string | undefined, io: CliIo): Promise<Credentials> {
  let provider: SecretProvider;
  if (secretId) {
    provider = new SecretsManagerSecretProvider({ secretId, client: new SecretsManagerClient({}) });
  } else {
    const apiKey = io.env.LOCALYTICS_API_KEY;
    const apiSecret = io.env.LOCALYTICS_API_SECRET;
    if (!apiKey || !apiSecret) {
      throw new UsageError(
        'missing credentials: set LOCALYTICS_API_KEY and LOCALYTICS_API_SECRET, or pass --secret-id <Secrets Manager secret>',
      );
    }
    provider = new StaticSecretProvider({ apiKey, apiSecret });
  }
  try {
    return await provider.getCredentials();
  } catch (error) {
    throw new UsageError(describeError(error));
  }
}

/**
 * Fail before any API call when the destination cannot be read (missing bucket, no permission, no region), or, for a
 * command that `writes`, written correctly (a store that keeps other bytes than it is sent).
 */
export async function checkDestination(sink: ObjectSink, options: { writes?: boolean } = {}): Promise<void> {
  try {
    for await (const _ of sink.list('_state/')) break;
  } catch (error) {
    throw new UsageError(`destination ${sink.location} cannot be read: ${describeError(error)}`);
  }
  if (!options.writes) return;
  try {
    await sink.prepare?.();
  } catch (error) {
    throw new UsageError(describeError(error));
  }
}

export function createLogger(verbose: boolean, io: CliIo): Logger {
  return verbose ? createJsonLogger(io.stderr, 'info') : silentLogger;
}

/**
 * The request budget of this run: in process, or with `--budget-table` the one a deployment shares through DynamoDB
 * (standard AWS SDK environment). A table that cannot be read is a usage error, found before any API call.
 */
export async function createRequestBudget(
  table: string | undefined,
  ratePerMinute: number,
  apiKey: string,
  logger: Logger,
): Promise<RequestBudget> {
  if (table === undefined) return new InProcessRequestBudget({ ratePerMinute });
  if (!BUDGET_TABLE_REFERENCE.test(table)) {
    throw new UsageError(`--budget-table "${table}" is not a DynamoDB table name or table ARN`);
  }
  const budget = new DynamoDbRequestBudget({
    client: createDynamoDbClient(budgetTableRegion(table)),
    tableName: table,
    apiKey,
    ratePerMinute,
    logger,
  });
  try {
    await budget.check();
  } catch (error) {
    throw new UsageError(`--budget-table: ${describeError(error)}`);
  }
  return budget;
}
