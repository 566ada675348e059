import { S3Client } from '@aws-sdk/client-s3';

/**
 * The S3 client, from the standard AWS SDK environment. With an endpoint override (an emulator or an S3-compatible
 * store) path-style addressing is used, since such endpoints rarely resolve bucket subdomains.
 */
export function createS3Client(env: Readonly<Record<string, string | undefined>>): S3Client {
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  return new S3Client({ forcePathStyle: Boolean(endpoint) || env.AWS_S3_FORCE_PATH_STYLE === 'true' });
}
