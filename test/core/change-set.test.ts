import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { LocalyticsClient } from '../../functions/adapters/localytics-client.js';
import { copyJob } from '../../functions/core/copy-job.js';
import {
  AuthError,
  LocationExpiredError,
  PermanentJobError,
  RequestInFlightError,
  TransientError,
} from '../../functions/core/errors.js';
import { dataKey, type ProfileChangesJob, pendingChangeSetKey } from '../../functions/core/jobs.js';
import { type ObjectSink, type ResolveOutcome, silentLogger } from '../../functions/core/ports.js';
import { InProcessRequestBudget } from '../../functions/core/request-budget.js';
import { changeSetBody as body, ChangeSetSource, consumed } from '../support/change-set-source.js';
import { tempDir } from '../support/temp.js';

const changes: ProfileChangesJob = {
  kind: 'profile_changes',
  profileDbId: '60',
  generatedAt: Date.UTC(2026, 0, 2, 13),
};
const stateKey = pendingChangeSetKey(changes);
const noWait = { now: Date.now, sleep: async () => {} };

async function lostMarkers(dir: string): Promise<string[]> {
  const lostDir = path.join(dir, '_state/profile_changes_lost');
  return (await readdir(lostDir, { recursive: true }).catch(() => [] as string[])).filter((name) =>
    name.endsWith('.json'),
  );
}

/** The holder of a claim another run left: a random UUID, as this code writes. */
const deadHolder = '0b5c3a4e-8f1d-4c2a-9e7b-6d5f4a3b2c1d';

function claimRecord(overrides: Record<string, unknown>) {
  return JSON.stringify({
    state: 'requesting',
    profileDbId: '60',
    generatedAt: changes.generatedAt,
    key: dataKey(changes),
    holder: deadHolder,
    claimedAt: new Date(Date.now() - 4 * 60_000).toISOString(),
    // Past, by more than the tolerated clock skew between two machines (a minute).
    staleAfter: new Date(Date.now() - 61_000).toISOString(),
    ...overrides,
  });
}

describe('a stale claim is taken over by exactly one run (issue 10, item 1)', () => {
  test('two runs that find the same stale claim: one asks Localytics, the other comes back later; the possible loss is reported once', async () => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    // The stale claim of a run that died after sending its request (it may have consumed a change set).
    await sink.writeText(
      stateKey,
      claimRecord({ state: 'claimed', staleAfter: undefined, claimedAt: '2020-01-01T00:00:00Z' }),
    );
    const source = new ChangeSetSource(consumed);
    const [a, b] = await Promise.all([
      copyJob(changes, { source, sink, logger: silentLogger, clock: noWait }),
      copyJob(changes, { source, sink, logger: silentLogger, clock: noWait }),
    ]);
    expect(source.sent).toBe(1);
    expect([a.status, b.status].sort()).toEqual(['copied', 'deferred']);
    expect(await sink.exists(dataKey(changes))).toBe(true);
    expect(await lostMarkers(dir)).toHaveLength(1);
    expect(await sink.readText(stateKey)).toBeUndefined();
  });

  test('a claim is stale after its holder deadline, not after a fixed 15 minutes', async () => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    // Claimed four minutes ago by a copier whose invocation ended a minute ago: it cannot act any more.
    await sink.writeText(stateKey, claimRecord({}));
    const source = new ChangeSetSource(consumed);
    const outcome = await copyJob(changes, { source, sink, logger: silentLogger, clock: noWait });
    expect(outcome.status).toBe('copied');
    expect(source.sent).toBe(1);
    expect(outcome.status === 'copied' && outcome.warnings[0]).toMatch(/may have consumed one that was never saved/);
    expect(await lostMarkers(dir)).toHaveLength(1);
  });

  test('a live claim defers the job until its holder deadline, without asking Localytics', async () => {
    const sink = new LocalDirSink(await tempDir());
    const holderDeadline = Date.now() + 120_000;
    await sink.writeText(stateKey, claimRecord({ staleAfter: new Date(holderDeadline).toISOString() }));
    const source = new ChangeSetSource(consumed);
    const outcome = await copyJob(changes, { source, sink, logger: silentLogger, clock: noWait });
    expect(outcome).toMatchObject({
      status: 'deferred',
      reason: 'another run is requesting this change set right now',
    });
    // Its holder's deadline, plus the minute of clock skew tolerated between two machines.
    expect(outcome.status === 'deferred' && outcome.retryAfterMs).toBeGreaterThan(170_000);
    expect(outcome.status === 'deferred' && outcome.retryAfterMs).toBeLessThanOrEqual(180_000);
    expect(source.resolveCalls).toBe(0);
  });

  test('a claim does not go stale while its holder waits for the request budget', async () => {
    const sink = new LocalDirSink(await tempDir());
    let now = Date.now();
    const clock = { now: () => now, sleep: async () => {} };
    let openBudget: () => void = () => {};
    const budgetOpens = new Promise<void>((resolve) => {
      openBudget = resolve;
    });
    // Run A waits 20 minutes for a slot (a long Retry-After pause shared by the whole deployment).
    const waiting = new ChangeSetSource(consumed, () => budgetOpens);
    const runA = copyJob(changes, { source: waiting, sink, logger: silentLogger, clock });
    await new Promise((resolve) => setTimeout(resolve, 30));
    now += 20 * 60_000;
    // Run B arrives meanwhile: nothing is claimed, so it asks (and copies) at once.
    const other = new ChangeSetSource(consumed);
    const runB = await copyJob(changes, { source: other, sink, logger: silentLogger, clock });
    expect(runB.status).toBe('copied');
    openBudget();
    const outcomeA = await runA;
    // A got its slot after B copied the change set: it sends nothing.
    expect(waiting.sent + other.sent).toBe(1);
    expect(outcomeA.status).toBe('present');
  });

  test('a run that stopped while waiting for the budget leaves no claim: the next run asks at once and reports no loss', async () => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    // Killed while waiting: its promise never settles.
    const killed = new ChangeSetSource(consumed, () => new Promise<void>(() => {}));
    void copyJob(changes, { source: killed, sink, logger: silentLogger, clock: noWait });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const next = new ChangeSetSource(consumed);
    const outcome = await copyJob(changes, { source: next, sink, logger: silentLogger, clock: noWait });
    expect(outcome).toMatchObject({ status: 'copied', warnings: [] });
    expect(await lostMarkers(dir)).toEqual([]);
  });

  test('a holder with too little time left before its deadline does not start a change-set request', async () => {
    const sink = new LocalDirSink(await tempDir());
    const source = new ChangeSetSource(consumed);
    const outcome = await copyJob(changes, {
      source,
      sink,
      logger: silentLogger,
      clock: noWait,
      holderDeadline: Date.now() + 10_000,
    });
    expect(outcome.status).toBe('interrupted');
    expect(source.resolveCalls).toBe(0);
    expect(await sink.readText(stateKey)).toBeUndefined();
  });
});

describe('what a failed change-set request means (issue 10, item 2)', () => {
  test.each([
    ['a 5xx answer', new TransientError('/v1/exports/profiles/60/profile_changes answered 503')],
    [
      'a timeout after sending',
      new RequestInFlightError('request to /x failed: The operation was aborted due to timeout'),
    ],
    ['a reset after sending', new RequestInFlightError('request to /x failed: other side closed')],
  ])('%s is reported as possibly consumed, with its marker, and not retried', async (_what, error) => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    const source = new ChangeSetSource(() => ({ status: 'failed', error, retryable: true }));
    const outcome = await copyJob(changes, { source, sink, logger: silentLogger, clock: noWait });
    expect(outcome).toMatchObject({ status: 'failed', retryable: false });
    expect(outcome.status === 'failed' && outcome.reason).toMatch(/may have consumed a change set/);
    expect(await lostMarkers(dir)).toHaveLength(1);
    expect(await sink.readText(stateKey)).toBeUndefined();
  });

  test('an answer the source could not even turn into an outcome (it threw) is reported as possibly consumed at once', async () => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    const source = new ChangeSetSource(() => {
      throw new TypeError('Invalid URL');
    });
    const outcome = await copyJob(changes, { source, sink, logger: silentLogger, clock: noWait });
    expect(outcome).toMatchObject({ status: 'failed', retryable: false });
    expect(outcome.status === 'failed' && outcome.reason).toMatch(/Invalid URL.*may have consumed a change set/);
    expect(await lostMarkers(dir)).toHaveLength(1);
    // Not left for a later run to find stale and report 3 minutes on.
    expect(await sink.readText(stateKey)).toBeUndefined();
  });

  test('a request that never left the machine (connection refused) is simply retried: no marker, no claim left', async () => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    // Nothing listens on this port: the real client's fetch is refused before anything is sent.
    const client = new LocalyticsClient({
      apiUrl: 'http://127.0.0.1:45999',
      credentials: { apiKey: 'change-set-test-key', apiSecret: 'change-set-test-secret' },
      budget: new InProcessRequestBudget({ ratePerMinute: 6000 }),
    });
    try {
      const outcome = await copyJob(changes, { source: client, sink, logger: silentLogger, clock: noWait });
      expect(outcome).toMatchObject({ status: 'failed', retryable: true });
      expect(outcome.status === 'failed' && outcome.reason).toMatch(/ECONNREFUSED|fetch failed/);
      expect(await lostMarkers(dir)).toEqual([]);
      expect(await sink.readText(stateKey)).toBeUndefined();
    } finally {
      client.close();
    }
  });

  test.each([
    ['429', { status: 'throttled', retryAfterMs: 1000 } as ResolveOutcome, 'throttled'],
    ['401', { status: 'failed', error: new AuthError('401', 401), retryable: false } as ResolveOutcome, 'failed'],
    ['404', { status: 'failed', error: new PermanentJobError('404'), retryable: false } as ResolveOutcome, 'failed'],
  ])('a %s consumed nothing: the claim is released and no loss is reported', async (_status, answer, expected) => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    const outcome = await copyJob(changes, {
      source: new ChangeSetSource(() => answer),
      sink,
      logger: silentLogger,
      clock: noWait,
    });
    expect(outcome.status).toBe(expected);
    expect(await lostMarkers(dir)).toEqual([]);
    expect(await sink.readText(stateKey)).toBeUndefined();
  });
});

describe('the Location of a consumed change set', () => {
  test('is saved while copying and removed once the copy is confirmed', async () => {
    const sink = new LocalDirSink(await tempDir());
    let savedDuringDownload: string | undefined;
    const source = new ChangeSetSource(consumed, undefined, () => ({ body: Readable.from([Buffer.from(body)]) }));
    const download = source.download.bind(source);
    source.download = async (location) => {
      savedDuringDownload = await sink.readText(stateKey);
      return download(location);
    };
    const outcome = await copyJob(changes, { source, sink, logger: silentLogger, clock: noWait });
    expect(outcome.status).toBe('copied');
    expect(JSON.parse(savedDuringDownload ?? '{}')).toMatchObject({
      state: 'resolved',
      location: 'https://s3.amazonaws.com/set-1',
    });
    expect(await sink.readText(stateKey)).toBeUndefined();
  });

  test('is resumed by a later run instead of asking again (which would skip a change set)', async () => {
    const sink = new LocalDirSink(await tempDir());
    const failingFile = () => {
      throw new TransientError('reset');
    };
    const first = new ChangeSetSource(consumed, undefined, failingFile);
    const failed = await copyJob(changes, {
      source: first,
      sink,
      logger: silentLogger,
      clock: noWait,
      maxDownloadAttempts: 2,
    });
    expect(failed).toMatchObject({ status: 'failed', retryable: true });
    const second = new ChangeSetSource(consumed);
    const resumed = await copyJob(changes, { source: second, sink, logger: silentLogger, clock: noWait });
    expect(resumed.status).toBe('copied');
    expect(second.resolveCalls).toBe(0);
    expect(second.downloaded).toEqual(['https://s3.amazonaws.com/set-1']);
  });

  test('that expired before the copy is reported lost, never re-requested', async () => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    const source = new ChangeSetSource(consumed, undefined, () => {
      throw new LocationExpiredError('403');
    });
    const outcome = await copyJob(changes, { source, sink, logger: silentLogger, clock: noWait });
    expect(outcome).toMatchObject({ status: 'failed', retryable: false });
    expect(outcome.status === 'failed' && outcome.reason).toMatch(/lost/);
    expect(source.sent).toBe(1);
    expect(await lostMarkers(dir)).toHaveLength(1);
  });

  test('that cannot be saved is copied at once, or reported lost when that copy fails', async () => {
    const dir = await tempDir();
    const real = new LocalDirSink(dir);
    const sink: ObjectSink = Object.assign(Object.create(real) as LocalDirSink, {
      replaceText: async () => {
        throw new Error('S3 is down');
      },
    });
    const source = new ChangeSetSource(consumed, undefined, () => {
      throw new TransientError('reset');
    });
    const outcome = await copyJob(changes, {
      source,
      sink,
      logger: silentLogger,
      clock: noWait,
      maxDownloadAttempts: 2,
    });
    expect(outcome).toMatchObject({ status: 'failed', retryable: false });
    expect(outcome.status === 'failed' && outcome.reason).toMatch(
      /change set lost: its URL could not be saved \(S3 is down\)/,
    );
    expect(source.sent).toBe(1);
  });

  test('a record that cannot be deleted after the copy leaves the job copied', async () => {
    const real = new LocalDirSink(await tempDir());
    const sink: ObjectSink = Object.assign(Object.create(real) as LocalDirSink, {
      delete: async () => {
        throw new Error('AccessDenied');
      },
    });
    const outcome = await copyJob(changes, {
      source: new ChangeSetSource(consumed),
      sink,
      logger: silentLogger,
      clock: noWait,
    });
    expect(outcome).toMatchObject({ status: 'copied', downloads: 1 });
  });

  test('when another delivery copied the change set before the request, nothing is requested and no claim is left', async () => {
    const real = new LocalDirSink(await tempDir());
    let checks = 0;
    const sink: ObjectSink = Object.assign(Object.create(real) as LocalDirSink, {
      exists: async (key: string) => {
        checks++;
        if (checks === 2) await real.writeText(key, 'landed meanwhile');
        return real.exists(key);
      },
    });
    const source = new ChangeSetSource(consumed);
    const outcome = await copyJob(changes, { source, sink, logger: silentLogger, clock: noWait });
    expect(outcome.status).toBe('present');
    expect(source.sent).toBe(0);
    expect(await real.readText(stateKey)).toBeUndefined();
  });
});

describe('a claim record is input from storage (issue 21 item 6)', () => {
  test('a holder that is not the id this code writes is refused: no marker is written outside its folder, nothing is sent', async () => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    const seen = '{"exports":{}}';
    await sink.writeText('_state/exports_seen.json', seen);
    // Its lost marker would have been `_state/profile_changes_lost/<db>/<time>./../../../exports_seen.json`.
    await sink.writeText(stateKey, claimRecord({ holder: '/../../../exports_seen' }));
    const source = new ChangeSetSource(consumed);
    const outcome = await copyJob(changes, { source, sink, logger: silentLogger, clock: noWait });
    expect(await sink.readText('_state/exports_seen.json')).toBe(seen);
    expect(outcome).toMatchObject({ status: 'failed' });
    expect(outcome.status === 'failed' && outcome.reason).toMatch(/change set record .* is unreadable/);
    expect(source.resolveCalls).toBe(0);
    expect(await lostMarkers(dir)).toEqual([]);
  });

  test('a stale claim of this code (a random UUID holder) is still taken over and its marker named by that holder', async () => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    await sink.writeText(stateKey, claimRecord({}));
    const outcome = await copyJob(changes, {
      source: new ChangeSetSource(consumed),
      sink,
      logger: silentLogger,
      clock: noWait,
    });
    expect(outcome.status).toBe('copied');
    expect(await lostMarkers(dir)).toEqual([`profiledb_id=60/20260102T130000Z.${deadHolder}.json`]);
  });
});
