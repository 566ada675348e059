import http from 'node:http';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LocalyticsClient } from '../../functions/adapters/localytics-client.js';
import { S3Sink } from '../../functions/adapters/s3-sink.js';
import { copyJob } from '../../functions/core/copy-job.js';
import { dataKey, type ProfileChangesJob, pendingChangeSetKey } from '../../functions/core/jobs.js';
import { silentLogger } from '../../functions/core/ports.js';
import { InProcessRequestBudget } from '../../functions/core/request-budget.js';
import { ChangeSetSource, consumed } from '../support/change-set-source.js';
import { closeServer, listenOnLoopback } from '../support/loopback-server.js';
import { createS3Client, createTestBucket, listAllKeys, s3Endpoint } from '../support/s3.js';
import { S3RecordingProxy } from '../support/s3-proxy.js';

const proxy = new S3RecordingProxy(s3Endpoint());
beforeAll(() => proxy.start());
afterAll(() => proxy.stop());

const changes: ProfileChangesJob = {
  kind: 'profile_changes',
  profileDbId: '61',
  generatedAt: Date.UTC(2026, 0, 3, 13),
};

test('on S3, of three runs that find the same stale claim exactly one takes it over (If-Match) and asks Localytics', async () => {
  const client = createS3Client(proxy.url);
  const bucket = await createTestBucket(client);
  const sink = new S3Sink(client, { bucket, prefix: 'lake' });
  await sink.writeText(
    pendingChangeSetKey(changes),
    JSON.stringify({
      state: 'requesting',
      profileDbId: '61',
      generatedAt: changes.generatedAt,
      key: dataKey(changes),
      holder: '0b5c3a4e-8f1d-4c2a-9e7b-6d5f4a3b2c1d',
      claimedAt: new Date(Date.now() - 4 * 60_000).toISOString(),
      staleAfter: new Date(Date.now() - 61_000).toISOString(),
    }),
  );
  const source = new ChangeSetSource(consumed);
  const clock = { now: Date.now, sleep: async () => {} };
  const outcomes = await Promise.all(
    [1, 2, 3].map(() => copyJob(changes, { source, sink, logger: silentLogger, clock })),
  );
  expect(source.sent).toBe(1);
  expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['copied', 'deferred', 'deferred']);
  const keys = await listAllKeys(client, bucket, 'lake/');
  expect(keys.filter((key) => key.startsWith('lake/profile_changes/'))).toEqual([`lake/${dataKey(changes)}`]);
  expect(keys.filter((key) => key.startsWith('lake/_state/profile_changes_lost/'))).toHaveLength(1);
  expect(keys.filter((key) => key.startsWith('lake/_state/profile_changes/'))).toEqual([]);
});

test('a transient S3 error in the check after the claim releases the claim and retries: no loss reported (issue 18 item 3)', async () => {
  const client = createS3Client(proxy.url);
  const bucket = await createTestBucket(client);
  const sink = new S3Sink(client, { bucket, prefix: 'lake' });
  // S3 fails the existence check that follows the claim (a ListObjectsV2), on every attempt the SDK makes.
  const failingAfterClaim = new Proxy(sink, {
    get(target, property, receiver) {
      if (property !== 'createText') return Reflect.get(target, property, receiver);
      return async (...args: Parameters<S3Sink['createText']>) => {
        const version = await target.createText(...args);
        proxy.failNext('Other', 3);
        return version;
      };
    },
  });
  const source = new ChangeSetSource(consumed);
  const clock = { now: Date.now, sleep: async () => {} };
  const first = await copyJob(changes, { source, sink: failingAfterClaim, logger: silentLogger, clock });
  expect(first).toMatchObject({ status: 'failed', retryable: true });
  expect(first.status === 'failed' && first.reason).not.toMatch(/lost/);
  expect(source.sent).toBe(0);
  const keys = await listAllKeys(client, bucket, 'lake/');
  expect(keys.filter((key) => key.startsWith('lake/_state/'))).toEqual([]);

  // The retry claims again and copies the change set.
  const retry = await copyJob(changes, { source, sink, logger: silentLogger, clock });
  expect(retry.status).toBe('copied');
  expect(source.sent).toBe(1);
});

test('a malformed Location after the request was sent is a failure that says so, and the loss is reported at once (issue 21 item 9)', async () => {
  const client = createS3Client(proxy.url);
  const bucket = await createTestBucket(client);
  const sink = new S3Sink(client, { bucket, prefix: 'lake' });
  // "Localytics" consumed the change set and answered a Location that is not a URL.
  const api = http.createServer((request, response) => {
    request.resume();
    response.writeHead(302, { location: 'https://exa mple.com/set-1?X-Amz-Signature=abc' }).end();
  });
  const apiUrl = await listenOnLoopback(api);
  const source = new LocalyticsClient({
    apiUrl,
    credentials: { apiKey: 'change-set-test-key', apiSecret: 'change-set-test-secret' },
    budget: new InProcessRequestBudget({ ratePerMinute: 6000 }),
  });
  try {
    const clock = { now: Date.now, sleep: async () => {} };
    const outcome = await copyJob(changes, { source, sink, logger: silentLogger, clock });
    expect(outcome).toMatchObject({ status: 'failed', retryable: false });
    const reason = outcome.status === 'failed' ? outcome.reason : '';
    expect(reason).toMatch(/302 with a Location that is not a URL/);
    expect(reason).toMatch(/change set lost/);
    expect(reason).not.toMatch(/Signature/);
    const keys = await listAllKeys(client, bucket, 'lake/');
    expect(keys.filter((key) => key.startsWith('lake/_state/profile_changes_lost/'))).toHaveLength(1);
    expect(keys.filter((key) => key.startsWith('lake/_state/profile_changes/'))).toEqual([]);
  } finally {
    source.close();
    await closeServer(api);
  }
});
