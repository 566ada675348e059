import { PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, test } from 'vitest';
import { DynamoDbJobLedger } from '../../functions/adapters/dynamodb-job-ledger.js';
import { MemoryJobLedger } from '../../functions/adapters/memory-job-ledger.js';
import type { JobLedger } from '../../functions/core/job-ledger.js';
import { createDynamoDbClient, createTestTable } from '../support/dynamodb.js';

const client = createDynamoDbClient();
const now = Date.UTC(2026, 10, 29, 12);
const minutes = (n: number) => now + n * 60_000;

/** The same contract for both adapters: the DynamoDB one on dynalite, the in-memory one. */
const ledgers: [string, () => Promise<JobLedger>][] = [
  ['DynamoDbJobLedger (dynalite)', async () => new DynamoDbJobLedger(client, await createTestTable(client))],
  ['MemoryJobLedger', async () => new MemoryJobLedger()],
];

describe.each(ledgers)('%s', (_, create) => {
  test('a job is claimed once while its entry lives, and again once it expired', async () => {
    const ledger = await create();
    expect(await ledger.claim('log_hour/a/2026-11-01T00', minutes(60), now, 'c1')).toBe(true);
    expect(await ledger.claim('log_hour/a/2026-11-01T00', minutes(90), minutes(30), 'c2')).toBe(false);
    expect(await ledger.claim('log_hour/a/2026-11-01T00', minutes(200), minutes(61), 'c3')).toBe(true);
  });

  test('read returns the live queued and parked jobs and the backlog mark, never expired ones', async () => {
    const ledger = await create();
    await ledger.claim('q1', minutes(60), now, 'c1');
    await ledger.claim('q2', minutes(10), now, 'c1');
    await ledger.rest('p1', minutes(60));
    await ledger.markBacklog(now - 5 * 3_600_000, minutes(60));
    const snapshot = await ledger.read(minutes(30));
    expect([...snapshot.queued].sort()).toEqual(['q1']);
    expect([...snapshot.parked]).toEqual(['p1']);
    expect(snapshot.backlogFrom).toBe(now - 5 * 3_600_000);
    const later = await ledger.read(minutes(61));
    expect(later).toEqual({ queued: new Set(), parked: new Set(), backlogFrom: undefined });
  });

  test('keep extends a queued entry, release forgets it, a parked entry blocks a claim', async () => {
    const ledger = await create();
    await ledger.claim('j', minutes(10), now, 'c1');
    await ledger.keep('j', minutes(100), 'c1');
    expect(await ledger.claim('j', minutes(200), minutes(50), 'c2')).toBe(false);
    await ledger.release('j', 'c1');
    expect(await ledger.claim('j', minutes(200), minutes(50), 'c2')).toBe(true);
    await ledger.rest('j', minutes(300));
    expect(await ledger.claim('j', minutes(400), minutes(250), 'c3')).toBe(false);
    expect((await ledger.read(minutes(250))).parked).toEqual(new Set(['j']));
  });

  test('release removes only its own claim: a stale duplicate message leaves a newer planner claim (issue 18 item 8)', async () => {
    const ledger = await create();
    const id = 'log_hour/a/2026-11-01T00';
    expect(await ledger.claim(id, minutes(60), now, 'claim-1')).toBe(true);
    await ledger.release(id, 'claim-1');
    // The next planner run sends the job again, under its own claim.
    expect(await ledger.claim(id, minutes(90), minutes(30), 'claim-2')).toBe(true);
    // SQS delivers the first message once more; its job ends and it releases its claim, which is gone.
    await ledger.release(id, 'claim-1');
    expect((await ledger.read(minutes(31))).queued).toEqual(new Set([id]));
    expect(await ledger.claim(id, minutes(120), minutes(31), 'claim-3')).toBe(false);
    await ledger.release(id, 'claim-2');
    expect((await ledger.read(minutes(31))).queued).toEqual(new Set());
  });

  test('a message that keeps its job queued takes the entry over: the last keeper releases it', async () => {
    const ledger = await create();
    const id = 'audience/7/idfa/20261129T000000Z';
    expect(await ledger.claim(id, minutes(60), now, 'claim-2')).toBe(true);
    // A duplicate of an older message is requeued (not ready): a message of it is in the queue again.
    await ledger.keep(id, minutes(200), 'claim-1');
    await ledger.release(id, 'claim-2');
    expect((await ledger.read(minutes(100))).queued).toEqual(new Set([id]));
    await ledger.release(id, 'claim-1');
    expect((await ledger.read(minutes(100))).queued).toEqual(new Set());
  });

  test('a message sent before claims had ids releases only an entry written without one', async () => {
    const ledger = await create();
    await ledger.keep('old', minutes(60), undefined);
    await ledger.release('old', undefined);
    expect(await ledger.claim('new', minutes(60), now, 'claim-1')).toBe(true);
    await ledger.release('new', undefined);
    expect((await ledger.read(now)).queued).toEqual(new Set(['new']));
  });

  test('clearing the backlog leaves a newer mark another run wrote', async () => {
    const ledger = await create();
    await ledger.markBacklog(1000 * 3_600_000, minutes(60));
    await ledger.markBacklog(1005 * 3_600_000, minutes(60));
    await ledger.clearBacklog(1000 * 3_600_000);
    expect((await ledger.read(now)).backlogFrom).toBe(1005 * 3_600_000);
    await ledger.clearBacklog(1005 * 3_600_000);
    expect((await ledger.read(now)).backlogFrom).toBeUndefined();
  });
});

test('the DynamoDB ledger reads every page of a large table', async () => {
  const table = await createTestTable(client);
  let scans = 0;
  const counting = Object.create(client, {
    send: {
      value: (command: object) => {
        if (command instanceof ScanCommand) scans++;
        return client.send(command as never);
      },
    },
  });
  const ledger = new DynamoDbJobLedger(counting, table);
  // 1,200 items of ~1 KB: more than one 1 MB scan page.
  const padding = 'x'.repeat(1000);
  const ids = Array.from({ length: 1200 }, (_, index) => `log_hour/app/${String(index).padStart(5, '0')}`);
  for (let start = 0; start < ids.length; start += 50) {
    await Promise.all(
      ids.slice(start, start + 50).map((id) =>
        client.send(
          new PutItemCommand({
            TableName: table,
            Item: {
              pk: { S: id },
              state: { S: 'queued' },
              expiresAt: { N: String(now / 1000 + 3600) },
              pad: { S: padding },
            },
          }),
        ),
      ),
    );
  }
  expect((await ledger.read(now)).queued.size).toBe(1200);
  expect(scans).toBeGreaterThan(1);
});

test('a missing table is an error that names it', async () => {
  const ledger = new DynamoDbJobLedger(client, 'no-such-ledger');
  await expect(ledger.read(now)).rejects.toThrow(
    /job ledger \(DynamoDB table "no-such-ledger"\): read failed: ResourceNotFoundException/,
  );
  await expect(ledger.claim('j', minutes(10), now, 'c1')).rejects.toThrow(/no-such-ledger.*claim failed/);
});
