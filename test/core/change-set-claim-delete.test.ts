/**
 * Issue 18, item 7: a holder that outlived its claim (a suspended laptop, a frozen container) must not delete the
 * claim another run took over meanwhile: a third run would then claim again, and two requests consume two change
 * sets. `release`, `lose` and `finish` delete only the record they hold (its version, S3's ETag).
 */
import { expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { copyJob } from '../../functions/core/copy-job.js';
import { RequestInFlightError } from '../../functions/core/errors.js';
import { type ProfileChangesJob, pendingChangeSetKey } from '../../functions/core/jobs.js';
import {
  type DownloadedFile,
  type ExportSource,
  type ResolveOptions,
  type ResolveOutcome,
  silentLogger,
} from '../../functions/core/ports.js';
import { tempDir } from '../support/temp.js';

const changes: ProfileChangesJob = {
  kind: 'profile_changes',
  profileDbId: '61',
  generatedAt: Date.UTC(2026, 0, 3, 13),
};
const stateKey = pendingChangeSetKey(changes);

/** "Localytics": every request that gets past the claim is counted; its answer waits until `answer()` is called. */
class GatedApi {
  sent = 0;
  private answers: ((outcome: ResolveOutcome) => void)[] = [];

  source(): ExportSource {
    return {
      listAudiences: async () => [],
      listProfiles: async () => [],
      resolve: async (_job, options: ResolveOptions = {}) => {
        try {
          await options.beforeSend?.();
        } catch (error) {
          return { status: 'failed', error: error as Error, retryable: true };
        }
        this.sent++;
        return new Promise<ResolveOutcome>((resolve) => this.answers.push(resolve));
      },
      download: async (): Promise<DownloadedFile> => {
        throw new Error('not used');
      },
    };
  }

  /** Answer the oldest request still waiting. */
  answer(outcome: ResolveOutcome): void {
    this.answers.shift()?.(outcome);
  }

  async waitForRequests(count: number): Promise<void> {
    while (this.sent < count) await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test.each([
  ['release (the request consumed nothing: 404)', { status: 'not_ready' } as ResolveOutcome],
  [
    'lose (the request failed after it was sent)',
    { status: 'failed', error: new RequestInFlightError('connection reset'), retryable: true } as ResolveOutcome,
  ],
])('a holder whose claim was taken over does not delete the new claim on %s', async (_, outcome) => {
  const sink = new LocalDirSink(await tempDir());
  const api = new GatedApi();
  const start = Date.now();
  // Run A claims (a CLI: its lease is 3 minutes) and its request hangs, as on a laptop that went to sleep.
  const runA = copyJob(changes, {
    source: api.source(),
    sink,
    logger: silentLogger,
    clock: { now: () => start, sleep: async () => {} },
  });
  await api.waitForRequests(1);
  const claimOfA = await sink.readText(stateKey);
  // Ten minutes later run B finds A's claim stale, reports its possible loss, takes the claim over and asks.
  const later = { now: () => start + 10 * 60_000, sleep: async () => {} };
  const runB = copyJob(changes, { source: api.source(), sink, logger: silentLogger, clock: later });
  await api.waitForRequests(2);
  const claimOfB = await sink.readText(stateKey);
  expect(claimOfB).not.toBe(claimOfA);
  // A wakes up and its request ends: it must leave B's claim where it is.
  api.answer(outcome);
  await runA;
  expect(await sink.readText(stateKey)).toBe(claimOfB);
  // So a third run, while B's request is in flight, comes back later instead of consuming another change set.
  const runC = await copyJob(changes, { source: api.source(), sink, logger: silentLogger, clock: later });
  expect(runC).toMatchObject({ status: 'deferred', reason: 'another run is requesting this change set right now' });
  expect(api.sent).toBe(2);
  api.answer({ status: 'not_ready' });
  await runB;
  // B releases its own claim.
  expect(await sink.readText(stateKey)).toBeUndefined();
});
