/**
 * The upload limit: a local file to S3 by the transport the S3 sink uses for that size. `put`: one streaming
 * `PutObject` with its `Content-Length` (what `sync` sends for a gzip log hour up to SINGLE_PUT_MAX_BYTES);
 * `multipart`: a plain lib-storage `Upload` (8 MiB parts, its default queue of 4).
 * Usage: node upload-file.mjs <put|multipart> <file> <endpoint> <bucket> <key>; prints {"bytes": n}.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

const [mode, file, endpoint, bucket, key] = process.argv.slice(2);
if (!(mode === 'put' || mode === 'multipart') || !file || !endpoint || !bucket || !key) {
  throw new Error('usage: upload-file <put|multipart> <file> <endpoint> <bucket> <key>');
}
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  // s3rver stores the SDK's aws-chunked framing as data; the CLI runs with the same setting (AWS_REQUEST_CHECKSUM_...).
  requestChecksumCalculation: 'WHEN_REQUIRED',
});
const { size } = await stat(file);
const params = { Bucket: bucket, Key: key, Body: createReadStream(file), ContentType: 'application/gzip' };
if (mode === 'put') await client.send(new PutObjectCommand({ ...params, ContentLength: size }));
else await new Upload({ client, partSize: 8 * 1024 * 1024, params }).done();
client.destroy();
process.stdout.write(`${JSON.stringify({ bytes: size })}\n`);
