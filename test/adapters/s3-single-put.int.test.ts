/**
 * The single streaming PutObject of a known length (issue 12) as deployed: with the SDK's default checksums (an
 * aws-chunked body with a CRC32 trailer, as on AWS), which the rest of the suite turns off for s3rver. A failing body
 * must fail the write, and nothing else: the SDK's aws-chunked wrapper re-emitted body errors on a stream nobody
 * listened to, an uncaught exception that crashes a Lambda invocation (found in review; each test failed then).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { S3Sink } from '../../functions/adapters/s3-sink.js';
import { copyJob } from '../../functions/core/copy-job.js';
import { IntegrityError } from '../../functions/core/errors.js';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { silentLogger } from '../../functions/core/ports.js';
import { VerifyingStream } from '../../functions/core/verify-stream.js';
import { createS3Client, createTestBucket, listAllKeys, S3RVER_CREDENTIALS, s3Endpoint } from '../support/s3.js';
import { S3RecordingProxy } from '../support/s3-proxy.js';
import { clientFor, useSimulator } from '../support/simulator.js';

const simulator = useSimulator();
const proxy = new S3RecordingProxy(s3Endpoint());
beforeAll(() => proxy.start());
afterAll(() => proxy.stop());

function failingBody(size: number, failAfter: number) {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= failAfter) {
        this.destroy(new Error('source connection reset'));
        return;
      }
      if (sent >= size) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(1024 * 1024, size - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

test('with the SDK default checksums (as on AWS), a source that dies mid single PUT fails the write, nothing else', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    // What the deployment and the CLI use: no requestChecksumCalculation override (WHEN_SUPPORTED: aws-chunked + CRC32 trailer).
    const client = new S3Client({
      endpoint: proxy.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
    });
    const bucket = await createTestBucket(client);
    const sink = new S3Sink(client, { bucket, prefix: 'lake' });
    await expect(
      sink.write('cut.json.gz', failingBody(30 * 1024 * 1024, 12 * 1024 * 1024), {
        contentType: 'application/gzip',
        contentLength: 30 * 1024 * 1024,
      }),
    ).rejects.toThrow(/source connection reset/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
    expect(uncaught.map(String)).toEqual([]);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});

test.each(['corrupt', 'reset'] as const)(
  'a %s download of a log hour with the SDK default checksums (as deployed) fails the job, nothing else',
  async (kind) => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const client = new S3Client({
        endpoint: proxy.url,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: S3RVER_CREDENTIALS,
      });
      const bucket = await createTestBucket(client);
      const sink = new S3Sink(client, { bucket, prefix: 'lake' });
      const appUuid = simulator.dataset.apps[0] as string;
      const hour = floorHour(Date.now()) - 5 * HOUR_MS;
      simulator.setLargeHour(appUuid, hour, 20 * 1024 * 1024);
      simulator.faults.add({ kind, match: `log/${appUuid}/${formatHour(hour)}`, count: 10 });
      const outcome = await copyJob(
        { kind: 'log_hour', appUuid, hour },
        {
          source: clientFor(simulator),
          sink,
          logger: silentLogger,
          clock: { now: Date.now, sleep: async () => {} } as never,
          maxDownloadAttempts: 1,
        },
      );
      simulator.faults.clear();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(outcome.status).toBe('failed');
      expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
      expect(uncaught.map(String)).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  },
);

test('the copier deadline mid single PUT (SDK default checksums, as deployed) hands the job back, nothing else', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    const client = new S3Client({
      endpoint: proxy.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
    });
    const bucket = await createTestBucket(client);
    const sink = new S3Sink(client, { bucket, prefix: 'lake' });
    const appUuid = simulator.dataset.apps[1] as string;
    const hour = floorHour(Date.now()) - 6 * HOUR_MS;
    simulator.setLargeHour(appUuid, hour, 20 * 1024 * 1024);
    simulator.faults.add({ kind: 'slow', delayMs: 20, match: `log/${appUuid}/${formatHour(hour)}` });
    const deadline = new AbortController();
    setTimeout(() => deadline.abort(), 1500);
    const outcome = await copyJob(
      { kind: 'log_hour', appUuid, hour },
      { source: clientFor(simulator), sink, logger: silentLogger, signal: deadline.signal },
    );
    simulator.faults.clear();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(outcome.status).toBe('interrupted');
    expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
    expect(uncaught.map(String)).toEqual([]);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});

test('a gzip file that is itself truncated, served whole (its Content-Length matches), leaves no object: the last chunk is held back', async () => {
  const client = createS3Client(proxy.url);
  const bucket = await createTestBucket(client);
  const sink = new S3Sink(client, { bucket, prefix: 'lake' });
  const lines = Array.from({ length: 40_000 }, () => `{"id":"${randomBytes(24).toString('hex')}"}\n`);
  const gz = Buffer.from(gzipSync(lines.join(''))).subarray(0, -100);
  const pieces = Array.from({ length: Math.ceil(gz.length / 65536) }, (_, i) =>
    gz.subarray(i * 65536, (i + 1) * 65536),
  );
  async function* download() {
    yield* pieces;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  const verifier = new VerifyingStream({ gzip: true, expectedBytes: gz.length });
  const flowing = pipeline(Readable.from(download()), verifier);
  const written = sink.write('truncated.json.gz', verifier, {
    contentType: 'application/gzip',
    contentLength: gz.length,
  });
  const [f, w] = await Promise.allSettled([flowing, written]);
  expect(f.status === 'rejected' && f.reason instanceof IntegrityError).toBe(true);
  expect(w.status).toBe('rejected');
  expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
});
