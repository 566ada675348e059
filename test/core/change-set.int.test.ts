import { afterAll, beforeAll, expect, test } from 'vitest';
import { S3Sink } from '../../functions/adapters/s3-sink.js';
import { copyJob } from '../../functions/core/copy-job.js';
import { dataKey, type ProfileChangesJob, pendingChangeSetKey } from '../../functions/core/jobs.js';
import { silentLogger } from '../../functions/core/ports.js';
import { ChangeSetSource, consumed } from '../support/change-set-source.js';
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
      holder: 'dead-holder',
      claimedAt: new Date(Date.now() - 60_000).toISOString(),
      staleAfter: new Date(Date.now() - 1_000).toISOString(),
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
