/**
 * Regression tests from a review of the change-set state machine (issue 10, items 1 and 2): each failed on the
 * first version of functions/core/change-set.ts.
 */
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { LocalyticsClient } from '../../functions/adapters/localytics-client.js';
import { copyJob } from '../../functions/core/copy-job.js';
import { newJobMessage } from '../../functions/core/job-message.js';
import { dataKey, type ProfileChangesJob, type SyncJob } from '../../functions/core/jobs.js';
import {
  type DownloadedFile,
  type ExportSource,
  type ObjectSink,
  type ResolveOptions,
  type ResolveOutcome,
  silentLogger,
} from '../../functions/core/ports.js';
import { processJobMessage } from '../../functions/core/process-job.js';
import { InProcessRequestBudget } from '../../functions/core/request-budget.js';
import { tempDir } from '../support/temp.js';

const changes: ProfileChangesJob = {
  kind: 'profile_changes',
  profileDbId: '60',
  generatedAt: Date.UTC(2026, 0, 2, 13),
};
const noWait = { now: Date.now, sleep: async () => {} };

async function lostMarkers(dir: string): Promise<string[]> {
  const lostDir = path.join(dir, '_state/profile_changes_lost');
  return (await readdir(lostDir, { recursive: true }).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
}

/** "Localytics": every request that gets past beforeSend consumes change set n; file n holds `set n`. */
class Api {
  consumed = 0;
  source(): ExportSource {
    return {
      listAudiences: async () => [],
      listProfiles: async () => [],
      resolve: async (_job: SyncJob, options: ResolveOptions = {}): Promise<ResolveOutcome> => {
        try {
          await options.beforeSend?.();
        } catch (error) {
          return { status: 'failed', error: error as Error, retryable: false };
        }
        this.consumed++;
        return { status: 'ready', location: `https://s3.amazonaws.com/set-${this.consumed}` };
      },
      download: async (location: string): Promise<DownloadedFile> => ({
        body: Readable.from([Buffer.from(`{"set":"${location.slice(-5)}"}\n`)]),
      }),
    };
  }
}

test('a run whose claim write is slow while another run copies the change set finds it present and asks nothing (review R1)', async () => {
  const dir = await tempDir();
  const real = new LocalDirSink(dir);
  const api = new Api();
  let releaseC: () => void = () => {};
  const cMayCreate = new Promise<void>((resolve) => {
    releaseC = resolve;
  });
  let cChecked: () => void = () => {};
  const cHasChecked = new Promise<void>((resolve) => {
    cChecked = resolve;
  });
  // Run C's sink: its claim write (createText) is delayed (S3 latency, a retry, a paused container) until A is done.
  let cExistsCalls = 0;
  const sinkC: ObjectSink = Object.assign(Object.create(real) as LocalDirSink, {
    exists: async (key: string) => {
      const answer = await real.exists(key);
      if (key === dataKey(changes) && ++cExistsCalls === 2) cChecked(); // the check inside beforeSend
      return answer;
    },
    createText: async (key: string, text: string) => {
      await cMayCreate;
      return real.createText(key, text);
    },
  });
  const runC = copyJob(changes, { source: api.source(), sink: sinkC, logger: silentLogger, clock: noWait });
  await cHasChecked;
  // Run A (another delivery of the same job) does the whole thing meanwhile.
  const a = await copyJob(changes, { source: api.source(), sink: real, logger: silentLogger, clock: noWait });
  expect(a.status).toBe('copied');
  releaseC();
  const c = await runC;
  const stored = gunzipSync(await readFile(path.join(dir, dataKey(changes)))).toString();
  // What a careful user expects: C finds the change set copied (present), nothing more is consumed.
  expect({ consumed: api.consumed, c: c.status, stored, markers: (await lostMarkers(dir)).length }).toEqual({
    consumed: 1,
    c: 'present',
    stored: '{"set":"set-1"}\n',
    markers: 0,
  });
});

test('a copier whose budget slot comes less than 45 s before its hard deadline hands the job back, not toward the DLQ (review R2)', async () => {
  const sink = new LocalDirSink(await tempDir());
  let now = Date.now();
  const clock = { now: () => now, sleep: async () => {} };
  const holderDeadline = now + 60_000; // copierTimeoutMinutes=1; soft deadline at +30 s
  const source: ExportSource = {
    ...new Api().source(),
    resolve: async (_job, options: ResolveOptions = {}) => {
      now += 20_000; // the budget granted its slot 20 s later (a busy batch); the soft deadline has not fired yet
      try {
        await options.beforeSend?.();
      } catch (error) {
        // what LocalyticsClient.resolve answers for a RequestNotSentError (a TransientError)
        return { status: 'failed', error: error as Error, retryable: true };
      }
      return { status: 'ready', location: 'https://s3.amazonaws.com/x' };
    },
  };
  const queue = { enqueue: async () => {}, requeue: async () => {}, park: async () => {} };
  const result = await processJobMessage(
    JSON.stringify(newJobMessage(changes, now)),
    { source, sink, logger: silentLogger, clock, holderDeadline, queue },
    { receiveCount: 5, maxReceiveCount: 5, now },
  );
  // Expected: handed back (requeued, interrupted/deferred); nothing was sent and nothing is wrong with the job.
  expect(result.action).toBe('requeued');
});

test('Ctrl-C while the claim is being written sends nothing and reports no loss (review R3)', async () => {
  // An API that answers profile_changes with a 302 after 600 ms.
  let received = 0;
  const server = http.createServer((_request, response) => {
    received++;
    setTimeout(() => {
      response.writeHead(302, { location: 'https://s3.amazonaws.com/set-1' });
      response.end();
    }, 600);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new LocalyticsClient({
    apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    credentials: { apiKey: 'review-key-abcdef', apiSecret: 'review-secret-abcdef' },
    budget: new InProcessRequestBudget({ ratePerMinute: 6000 }),
  });
  const dir = await tempDir();
  const real = new LocalDirSink(dir);
  const interrupt = new AbortController();
  const sink: ObjectSink = Object.assign(Object.create(real) as LocalDirSink, {
    createText: async (key: string, text: string) => {
      const version = await real.createText(key, text);
      interrupt.abort(); // Ctrl-C arrives while the claim is written, before the request left
      return version;
    },
  });
  try {
    const outcome = await copyJob(changes, {
      source: client,
      sink,
      logger: silentLogger,
      clock: noWait,
      signal: interrupt.signal,
      inFlightGraceMs: 200,
    });
    expect({ received, status: outcome.status, markers: (await lostMarkers(dir)).length }).toEqual({
      received: 0,
      status: 'interrupted',
      markers: 0,
    });
  } finally {
    client.close();
    server.closeAllConnections();
    server.close();
  }
});
