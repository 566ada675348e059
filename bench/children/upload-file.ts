/**
 * The upload limit: a local file to S3 with a plain lib-storage `Upload` (8 MiB parts, its default queue of 4).
 * Usage: node upload-file.mjs <file> <endpoint> <bucket> <key>; prints {"bytes": n}.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

const [file, endpoint, bucket, key] = process.argv.slice(2);
if (!file || !endpoint || !bucket || !key) throw new Error('usage: upload-file <file> <endpoint> <bucket> <key>');
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
});
const upload = new Upload({
  client,
  partSize: 8 * 1024 * 1024,
  params: { Bucket: bucket, Key: key, Body: createReadStream(file), ContentType: 'application/gzip' },
});
await upload.done();
client.destroy();
process.stdout.write(`${JSON.stringify({ bytes: (await stat(file)).size })}\n`);
