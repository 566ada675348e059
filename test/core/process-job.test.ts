import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { type JobMessage, newJobMessage, serializeJobMessage } from '../../functions/core/job-message.js';
import { dataKey } from '../../functions/core/jobs.js';
import type { ExportSource } from '../../functions/core/ports.js';
import { silentLogger } from '../../functions/core/ports.js';
import { type JobQueue, processJobMessage } from '../../functions/core/process-job.js';
import { tempDir } from '../support/temp.js';

class RecordingQueue implements JobQueue {
  requeued: { message: JobMessage; delaySeconds: number }[] = [];
  parked: { body: string; reason: string }[] = [];
  async enqueue() {}
  async requeue(message: JobMessage, delaySeconds: number) {
    this.requeued.push({ message, delaySeconds });
  }
  async park(body: string, reason: string) {
    this.parked.push({ body, reason });
  }
}

const job = { kind: 'log_hour', appUuid: 'ab-cd', hour: Date.UTC(2026, 0, 1, 5) } as const;
const slowSource: ExportSource = {
  listAudiences: async () => [],
  listProfiles: async () => [],
  resolve: async () => ({ status: 'ready', location: 'https://s3.amazonaws.com/x' }),
  download: async () => ({ body: Readable.from([]) }),
};

test('a job handed back at the deadline is requeued at once, and parked with a reason the fifth time', async () => {
  const sink = new LocalDirSink(await tempDir());
  const aborted = new AbortController();
  aborted.abort();
  const queue = new RecordingQueue();
  const options = { receiveCount: 1, maxReceiveCount: 5, now: job.hour + 2 * 3_600_000 };
  let message: JobMessage = newJobMessage(job, 0);
  for (let i = 0; i < 4; i++) {
    const result = await processJobMessage(
      serializeJobMessage(message),
      { source: slowSource, sink, logger: silentLogger, queue, signal: aborted.signal },
      options,
    );
    expect(result).toMatchObject({ action: 'requeued', reason: 'interrupted', delaySeconds: 0 });
    message = queue.requeued.at(-1)?.message as JobMessage;
  }
  const last = await processJobMessage(
    serializeJobMessage(message),
    { source: slowSource, sink, logger: silentLogger, queue, signal: aborted.signal },
    options,
  );
  expect(last).toMatchObject({ action: 'parked' });
  expect(queue.parked[0]?.reason).toBe(
    "could not be copied within the copier's timeout 5 times: raise copierTimeoutMinutes",
  );
});

test('a not-ready hour the next hourly planning covers is left to it; an older one is requeued with a delay', async () => {
  const sink = new LocalDirSink(await tempDir());
  const queue = new RecordingQueue();
  const notReady: ExportSource = { ...slowSource, resolve: async () => ({ status: 'not_ready' }) };
  const deps = { source: notReady, sink, logger: silentLogger, queue };
  const base = { receiveCount: 1, maxReceiveCount: 5, now: job.hour + 3 * 3_600_000 };
  const left = await processJobMessage(serializeJobMessage(newJobMessage(job, 0)), deps, {
    ...base,
    replannedFrom: job.hour,
  });
  expect(left).toMatchObject({ action: 'left_for_planner' });
  const requeued = await processJobMessage(serializeJobMessage(newJobMessage(job, 0)), deps, {
    ...base,
    replannedFrom: job.hour + 3_600_000,
  });
  expect(requeued).toMatchObject({ action: 'requeued', reason: 'not_ready', delaySeconds: 900 });
  expect(queue.requeued).toHaveLength(1);
});

test('a job with no request budget slot before the deadline is handed back with a delay, never counted toward parking', async () => {
  const sink = new LocalDirSink(await tempDir());
  const queue = new RecordingQueue();
  // What the client answers when the shared budget has no slot before the copier's deadline: nothing was sent.
  const budgetFull: ExportSource = {
    ...slowSource,
    resolve: async () => ({ status: 'throttled', retryAfterMs: 42_300, byBudget: true }),
  };
  const deps = { source: budgetFull, sink, logger: silentLogger, queue };
  const options = { receiveCount: 1, maxReceiveCount: 5, now: job.hour + 2 * 3_600_000 };
  // A backfill at scale: the same job waits for the budget many more times than the interruption limit.
  let message: JobMessage = { ...newJobMessage(job, 0), interruptions: 4 };
  for (let i = 0; i < 12; i++) {
    const result = await processJobMessage(serializeJobMessage(message), deps, options);
    expect(result).toEqual({ action: 'requeued', reason: 'budget', delaySeconds: 43, apiRequests: 0 });
    message = queue.requeued.at(-1)?.message as JobMessage;
  }
  expect(message).toMatchObject({ interruptions: 4 });
  expect(queue.parked).toEqual([]);
});

describe('the hand-off after a copy (the Parquet converter)', () => {
  const servingSource: ExportSource = {
    ...slowSource,
    download: async () => ({ body: Readable.from([gzipSync('{"type":"e"}\n')]) }),
  };
  const options = { receiveCount: 1, maxReceiveCount: 3, now: job.hour + 2 * 3_600_000 };

  test('gets the key of a file copied, and of a file found already there', async () => {
    const sink = new LocalDirSink(await tempDir());
    const handed: string[] = [];
    const deps = {
      source: servingSource,
      sink,
      logger: silentLogger,
      queue: new RecordingQueue(),
      afterCopy: async (key: string) => {
        handed.push(key);
      },
    };
    const body = serializeJobMessage(newJobMessage(job, 0));
    expect(await processJobMessage(body, deps, options)).toMatchObject({ outcome: { status: 'copied' } });
    expect(await processJobMessage(body, deps, options)).toMatchObject({ outcome: { status: 'present' } });
    expect(handed).toEqual([dataKey(job), dataKey(job)]);
  });

  test('that fails makes the job a retryable failure, parked with its reason on the last delivery', async () => {
    const sink = new LocalDirSink(await tempDir());
    const queue = new RecordingQueue();
    const deps = {
      source: servingSource,
      sink,
      logger: silentLogger,
      queue,
      afterCopy: async () => {
        throw new Error('queue unavailable');
      },
    };
    const body = serializeJobMessage(newJobMessage(job, 0));
    expect(await processJobMessage(body, deps, options)).toMatchObject({
      action: 'retry',
      reason: 'copied, but could not be handed on: queue unavailable',
    });
    // The file is safe at its key; the redelivery finds it present and tries the hand-off again.
    expect(await sink.exists(dataKey(job))).toBe(true);
    expect(await processJobMessage(body, deps, { ...options, receiveCount: 3 })).toMatchObject({ action: 'parked' });
    expect(queue.parked[0]?.reason).toBe('copied, but could not be handed on: queue unavailable (after 3 deliveries)');
  });
});
