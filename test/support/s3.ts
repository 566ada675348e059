import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';

/** s3rver accepts only these credentials. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export function s3Endpoint(): string {
  return inject('s3Endpoint');
}

/**
 * s3rver does not decode the SDK's aws-chunked uploads (its default for a streamed body with a checksum): it would
 * store the framing as data. The tests' own clients, and the functions (which run only against Amazon S3 and never
 * probe the store), send checksums only when an operation requires them, as `AWS_REQUEST_CHECKSUM_CALCULATION`
 * does for code that reads the environment. The CLI needs no such setting: it probes an S3-compatible store.
 */
export const S3RVER_CHECKSUMS = 'WHEN_REQUIRED';

export function createS3Client(endpoint = s3Endpoint()): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: S3RVER_CHECKSUMS,
  });
}

export async function createTestBucket(client: S3Client): Promise<string> {
  const bucket = `test-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

export async function listAllKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

/** Test helper only: reads a (small) object whole. */
export async function getObjectBytes(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/**
 * Environment for code that builds its S3 client from the standard AWS SDK environment: a user's, with the SDK's
 * default checksums (the CLI finds out that s3rver keeps aws-chunked framing, and adapts).
 */
export function s3Environment(endpoint = s3Endpoint()): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  };
}

/** The environment of a function run against s3rver: never probing, it needs the SDK setting s3rver needs. */
export function s3FunctionEnvironment(endpoint = s3Endpoint()): Record<string, string> {
  return { ...s3Environment(endpoint), AWS_REQUEST_CHECKSUM_CALCULATION: S3RVER_CHECKSUMS };
}
