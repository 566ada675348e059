import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';

/** `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`): an S3-compatible store or an emulator instead of Amazon S3. */
export function s3EndpointOverride(env: Readonly<Record<string, string | undefined>>): string | undefined {
  return env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
}

export interface S3ClientOptions {
  /**
   * Checksums only where an operation requires them, whatever the environment says: a streamed `PutObject` is then
   * a plain body of its `Content-Length` instead of the SDK's aws-chunked encoding with a trailing checksum.
   */
  readonly checksumsWhenRequired?: boolean;
}

/**
 * The S3 client, from the standard AWS SDK environment. With an endpoint override (an emulator or an S3-compatible
 * store) path-style addressing is used, since such endpoints rarely resolve bucket subdomains. A connection that
 * cannot be made in 5 s, or a socket silent for 60 s (a transfer included), fails the request; the sinks add their
 * callers' signals and a time limit per call.
 */
export function createS3Client(
  env: Readonly<Record<string, string | undefined>>,
  options: S3ClientOptions = {},
): S3Client {
  const endpoint = s3EndpointOverride(env);
  return new S3Client({
    // Read from `env` like every other setting (the SDK would read process.env itself).
    endpoint,
    forcePathStyle: Boolean(endpoint) || env.AWS_S3_FORCE_PATH_STYLE === 'true',
    logger: quiet,
    requestHandler: { connectionTimeout: 5_000, socketTimeout: 60_000 },
    ...(options.checksumsWhenRequired ? { requestChecksumCalculation: 'WHEN_REQUIRED' as const } : {}),
  });
}

/**
 * Without a logger the SDK prints some warnings with console.warn (for instance "An error was encountered in a
 * non-retryable streaming request" when a streamed PutObject fails): unstructured lines in the CLI's output and the
 * functions' JSON logs. The sinks report every failure themselves, with its cause.
 */
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/**
 * The SQS client. By default the SDK sends each call to the host of its queue URL; with an endpoint override (an
 * emulator, a VPC endpoint) the override must win, so that behaviour is switched off then.
 */
export function createSqsClient(env: Readonly<Record<string, string | undefined>>): SQSClient {
  const endpoint = env.AWS_ENDPOINT_URL_SQS ?? env.AWS_ENDPOINT_URL;
  return new SQSClient(endpoint ? { useQueueUrlAsEndpoint: false } : {});
}

/**
 * The DynamoDB client of the request budget, from the standard AWS SDK environment (`AWS_ENDPOINT_URL_DYNAMODB` for
 * an emulator); `region` for a table in another region than the environment's. Short timeouts: a budget call that hangs would hold every API request behind it.
 */
export function createDynamoDbClient(region?: string): DynamoDBClient {
  return new DynamoDBClient({
    region,
    // throwOnRequestTimeout: without it this SDK only warns when requestTimeout passes, and the call waits on.
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000, throwOnRequestTimeout: true },
    maxAttempts: 3,
  });
}
