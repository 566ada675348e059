/**
 * Issue 18, item 6: an S3 call that hangs must neither outlast its caller's deadline or Ctrl-C (every wait ends
 * within a second or two) nor wait forever when nobody stops it. A store that accepts connections and never answers
 * stands for a hung S3; the S3 client is the product's (`createS3Client`), as the CLI and the functions build it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createS3Client } from '../../functions/adapters/aws-clients.js';
import { S3Sink } from '../../functions/adapters/s3-sink.js';
import { copyJob } from '../../functions/core/copy-job.js';
import type { ProfileChangesJob } from '../../functions/core/jobs.js';
import { type ExportSource, type ObjectSink, silentLogger } from '../../functions/core/ports.js';

const hung = http.createServer(() => {
  // Never answers.
});
let endpoint = '';
beforeAll(async () => {
  // The SDK reads the region and credentials from the process environment.
  Object.assign(process.env, { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' });
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
  process.env.AWS_ENDPOINT_URL_S3 = endpoint;
});
afterAll(async () => {
  hung.closeAllConnections();
  await new Promise((resolve) => hung.close(resolve));
});

function hungSink(callTimeoutMs?: number): S3Sink {
  const client = createS3Client({ ...process.env, AWS_ENDPOINT_URL_S3: endpoint });
  return new S3Sink(client, { bucket: 'lake', prefix: 'p' }, { callTimeoutMs });
}

/** How long `call` took to fail; fails the test if it is still waiting after 5 s. */
async function failsAfter(call: () => Promise<unknown>): Promise<number> {
  const started = Date.now();
  const outcome = await Promise.race([
    call().then(
      () => 'resolved',
      () => 'rejected',
    ),
    new Promise((resolve) => setTimeout(resolve, 5_000, 'still waiting after 5 s')),
  ]);
  expect(outcome).toBe('rejected');
  return Date.now() - started;
}

const calls: [string, (sink: ObjectSink, signal?: AbortSignal) => Promise<unknown>][] = [
  ['exists', (sink, signal) => sink.exists('_state/x.json', { signal })],
  [
    'list',
    async (sink, signal) => {
      for await (const _ of sink.list('raw_logs/', { signal })) break;
    },
  ],
  ['readText', (sink, signal) => sink.readText('_state/x.json', { signal })],
  ['readVersioned', (sink, signal) => sink.readVersioned('_state/x.json', { signal })],
  ['writeText', (sink, signal) => sink.writeText('_state/x.json', '{}', { signal })],
  ['createText', (sink, signal) => sink.createText('_state/x.json', '{}', { signal })],
  ['replaceText', (sink, signal) => sink.replaceText('_state/x.json', '{}', '"etag"', { signal })],
  ['delete', (sink, signal) => sink.delete('_state/x.json', { signal })],
  ['deleteIfUnchanged', (sink, signal) => sink.deleteIfUnchanged('_state/x.json', '"etag"', { signal })],
  [
    'ListMultipartUploads (the sweep)',
    (sink, signal) => (sink as S3Sink).abortAbandonedUploads('raw_logs/', { signal }),
  ],
  [
    'a streamed write of known length',
    (sink, signal) =>
      sink.write('raw_logs/a.json.gz', Readable.from([Buffer.alloc(1000)]), {
        contentType: 'application/gzip',
        contentLength: 1000,
        signal,
      }),
  ],
  [
    'a write of unknown length',
    (sink, signal) =>
      sink.write('raw_logs/b.json.gz', Readable.from([Buffer.alloc(1000)]), {
        contentType: 'application/gzip',
        signal,
      }),
  ],
];

describe("a hung S3 call ends within a second or two of its caller's signal", () => {
  test.each(calls)('%s', async (_, call) => {
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error('deadline')), 300);
    const took = await failsAfter(() => call(hungSink(), stop.signal));
    // It waited for the store until the signal, and not much longer.
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2_300);
  });
});

describe('a hung S3 call that moves no data fails on its own after its time limit', () => {
  test.each(calls.filter(([name]) => !name.startsWith('a ')))('%s', async (_, call) => {
    const took = await failsAfter(() => call(hungSink(800)));
    expect(took).toBeGreaterThanOrEqual(750);
    expect(took).toBeLessThan(3_000);
  });
});

test('a change set whose claim hangs at S3 hands the job back at the deadline, nothing sent', async () => {
  const job: ProfileChangesJob = { kind: 'profile_changes', profileDbId: '7', generatedAt: Date.UTC(2026, 0, 4, 13) };
  let sent = 0;
  const source: ExportSource = {
    listAudiences: async () => [],
    listProfiles: async () => [],
    resolve: async (_job, options = {}) => {
      try {
        await options.beforeSend?.();
      } catch (error) {
        return { status: 'failed', error: error as Error, retryable: true };
      }
      sent++;
      return { status: 'not_ready' };
    },
    download: async () => {
      throw new Error('not used');
    },
  };
  const deadline = new AbortController();
  setTimeout(() => deadline.abort(), 300);
  const started = Date.now();
  const outcome = await Promise.race([
    copyJob(job, { source, sink: hungSink(), logger: silentLogger, signal: deadline.signal, checkExisting: false }),
    new Promise((resolve) => setTimeout(resolve, 5_000, 'still waiting after 5 s')),
  ]);
  expect(outcome).toMatchObject({ status: 'interrupted' });
  expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  expect(Date.now() - started).toBeLessThan(2_300);
  expect(sent).toBe(0);
});
