import { expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { MemoryJobLedger } from '../../functions/adapters/memory-job-ledger.js';
import { EnqueueError } from '../../functions/core/errors.js';
import { floorHour, HOUR_MS, LOG_RETENTION_MS } from '../../functions/core/hours.js';
import {
  ledgerId,
  PARKED_ENTRY_TTL_MS,
  QUEUED_ENTRY_TTL_MS,
  settleLedgerEntry,
} from '../../functions/core/job-ledger.js';
import type { JobMessage } from '../../functions/core/job-message.js';
import { dataKey, type LogHourJob, type SyncJob } from '../../functions/core/jobs.js';
import { type PlannerSettings, planToQueue } from '../../functions/core/plan-to-queue.js';
import { type ExportListing, type ExportSource, silentLogger } from '../../functions/core/ports.js';
import type { JobQueue } from '../../functions/core/process-job.js';
import { tempDir } from '../support/temp.js';

const apps = [
  '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8',
  '2bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8',
];
const start = Date.UTC(2026, 10, 29, 12, 30);
/** The oldest hour the API still holds at `start`. */
const oldestHour = floorHour(start - LOG_RETENTION_MS) + HOUR_MS;

/** 10 requests a minute, 3 minutes ahead: the queue holds at most 30 jobs. */
const settings: PlannerSettings = {
  apps,
  datasets: new Set(['logs']),
  logLagHours: 1,
  lookbackHours: 6,
  backfillDays: 30,
  requestsPerMinute: 10,
  queueAheadMinutes: 3,
};

class RecordingQueue implements JobQueue {
  readonly sent: { message: JobMessage; delaySeconds: number }[] = [];
  failNext = false;
  async enqueue(messages: readonly JobMessage[], options: { delaySeconds?: number } = {}) {
    if (this.failNext) throw new Error('SendMessageBatch failed');
    for (const message of messages) this.sent.push({ message, delaySeconds: options.delaySeconds ?? 0 });
  }
  async requeue() {}
  async park() {}
  /** Take `count` messages off the queue, as copiers would (any order SQS likes: here the first ones). */
  take(count: number): JobMessage[] {
    return this.sent.splice(0, count).map((entry) => entry.message);
  }
  ids(): string[] {
    return this.sent.map((entry) => ledgerId(entry.message.job));
  }
}

const noApi: ExportSource = {
  listAudiences: async () => [],
  listProfiles: async () => [],
  resolve: async () => {
    throw new Error('planning never resolves');
  },
  download: async () => {
    throw new Error('planning never downloads');
  },
};

async function setup() {
  return {
    sink: new LocalDirSink(await tempDir()),
    queue: new RecordingQueue(),
    ledger: new MemoryJobLedger(),
  };
}
type World = Awaited<ReturnType<typeof setup>>;

function deps(world: World, extra: { source?: ExportSource; signal?: AbortSignal } = {}) {
  return { source: noApi, logger: silentLogger, ...world, ...extra };
}

/** What a copier does with a job that landed: the object exists, the ledger entry goes. */
async function finish(world: World, messages: readonly JobMessage[], now: number) {
  for (const message of messages) {
    await world.sink.writeText(dataKey(message.job), 'x');
    const outcome = { status: 'present', key: dataKey(message.job) } as const;
    await settleLedgerEntry(world.ledger, message, { action: 'done', outcome, apiRequests: 0 }, now);
  }
}

/** The ledger's queued set and the queue's messages name the same jobs, each once. */
async function expectLedgerMatchesQueue(world: World, now: number) {
  const ids = world.queue.ids();
  expect(new Set(ids).size).toBe(ids.length);
  expect([...(await world.ledger.read(now)).queued].sort()).toEqual([...ids].sort());
}

const hours = (jobs: readonly SyncJob[]) => jobs.map((job) => (job as LogHourJob).hour);

test('the first backfill sends the oldest hours up to the queue limit and marks the rest as backlog', async () => {
  const world = await setup();
  const summary = await planToQueue('exports', settings, deps(world), start);
  expect(summary.window.from).toBe(oldestHour);
  expect(summary.logHoursMissing).toBe(2 * 718);
  expect(summary).toMatchObject({ enqueued: 30, backlog: 2 * 718 - 30, alreadyQueued: 0, stoppedAtDeadline: false });
  // Oldest first: 15 hours of both apps, from the oldest the API still holds.
  const sent = world.queue.sent.map((entry) => entry.message.job as LogHourJob);
  expect(Math.max(...hours(sent))).toBe(oldestHour + 14 * HOUR_MS);
  expect(new Set(sent.map((job) => job.appUuid))).toEqual(new Set(apps));
  expect((await world.ledger.read(start)).backlogFrom).toBe(oldestHour + 15 * HOUR_MS);
  await expectLedgerMatchesQueue(world, start);
});

test('messages are released at the key pace, 15 s before their turn: a delay that grows with the work ahead, at most 15 minutes', async () => {
  const world = await setup();
  await planToQueue('exports', { ...settings, queueAheadMinutes: 200 }, deps(world), start);
  const delays = world.queue.sent.map((entry) => entry.delaySeconds);
  // 10 a minute: the batch at position 10·k waits 60·k − 15 seconds (the first none); from position 160 on, SQS's
  // maximum of 900 s.
  expect(delays.slice(0, 31).filter((_, index) => index % 10 === 0)).toEqual([0, 45, 105, 165]);
  expect(delays[160]).toBe(900);
  expect(delays[150]).toBe(885);
  expect(delays.at(-1)).toBe(900);
  expect([...delays].sort((a, b) => a - b)).toEqual(delays);
});

test('a top-up with a full queue sends nothing; after copiers finish jobs it sends the next oldest hours, once', async () => {
  const world = await setup();
  await planToQueue('exports', settings, deps(world), start);
  const firstBatch = [...world.queue.sent];
  // The top-up lists from the backlog's start: the 30 queued hours are older than its window.
  expect(await planToQueue('topup', settings, deps(world), start + 15 * 60_000)).toMatchObject({
    window: { from: oldestHour + 15 * HOUR_MS },
    enqueued: 0,
    backlog: 2 * 718 - 30,
  });
  expect(world.queue.sent).toEqual(firstBatch);

  const done = world.queue.take(12);
  await finish(world, done, start + 20 * 60_000);
  // Still the same hour (12:55): no new log hour has become due.
  const summary = await planToQueue('topup', settings, deps(world), start + 25 * 60_000);
  expect(summary).toMatchObject({ enqueued: 12, backlog: 2 * 718 - 42 });
  await expectLedgerMatchesQueue(world, start + 25 * 60_000);
  // The new ones are the oldest hours not copied and not queued: none older is left out.
  const newest = Math.max(...hours(world.queue.sent.map((entry) => entry.message.job)));
  expect(newest).toBe(oldestHour + 20 * HOUR_MS);
});

test('an hourly run during a backfill does not send new hours ahead of the older ones', async () => {
  const world = await setup();
  await planToQueue('exports', settings, deps(world), start);
  await finish(world, world.queue.take(30), start + 10 * 60_000);
  const hourLater = start + HOUR_MS;
  const summary = await planToQueue('logs', settings, deps(world), hourLater);
  // The window reaches back to the backlog; the queue takes the oldest 30 missing hours, none of the recent ones.
  expect(summary.window.from).toBe(oldestHour + 15 * HOUR_MS);
  expect(summary.enqueued).toBe(30);
  expect(Math.max(...hours(world.queue.sent.map((entry) => entry.message.job)))).toBe(oldestHour + 29 * HOUR_MS);
  await expectLedgerMatchesQueue(world, hourLater);
});

test('a re-plan over an overlapping window sends nothing already waiting', async () => {
  const world = await setup();
  const roomy = { ...settings, queueAheadMinutes: 200 };
  await planToQueue('exports', roomy, deps(world), start);
  expect(world.queue.sent).toHaveLength(2 * 718);
  const later = start + 2 * HOUR_MS;
  const summary = await planToQueue('exports', roomy, deps(world), later);
  // Two hours of both apps fell out of the retention and two new ones arrived: only those are sent.
  expect(summary.enqueued).toBe(2 * 2);
  expect(summary.alreadyQueued).toBe(2 * (718 - 2));
  await expectLedgerMatchesQueue(world, later);
});

test('a queued entry whose message was lost expires, and the job is sent again', async () => {
  const world = await setup();
  const one = { ...settings, apps: [apps[0] as string], backfillDays: 1, queueAheadMinutes: 100 };
  await planToQueue('exports', one, deps(world), start);
  const lost = world.queue.take(world.queue.sent.length).at(-1)?.job as SyncJob;
  await planToQueue('exports', one, deps(world), start + HOUR_MS);
  expect(world.queue.ids()).not.toContain(ledgerId(lost));
  const later = start + QUEUED_ENTRY_TTL_MS + 60_000;
  await planToQueue('exports', one, deps(world), later);
  expect(world.queue.ids()).toContain(ledgerId(lost));
});

test('the backlog mark goes once a run has sent all of it', async () => {
  const world = await setup();
  const small = { ...settings, backfillDays: 1 };
  await planToQueue('exports', small, deps(world), start);
  expect((await world.ledger.read(start)).backlogFrom).toBeDefined();
  await finish(world, world.queue.take(30), start + 60_000);
  const summary = await planToQueue('topup', small, deps(world), start + 15 * 60_000);
  expect(summary).toMatchObject({ enqueued: 2 * 24 - 30, backlog: 0 });
  expect((await world.ledger.read(start + 15 * 60_000)).backlogFrom).toBeUndefined();
  // No backlog: the next top-up lists nothing and sends nothing.
  const listed: string[] = [];
  const watched = Object.create(world.sink, {
    list: {
      value: (prefix: string, options: object) => {
        listed.push(prefix);
        return world.sink.list(prefix, options);
      },
    },
  });
  const quiet = await planToQueue('topup', small, { ...deps(world), sink: watched }, start + 30 * 60_000);
  expect(quiet).toMatchObject({ enqueued: 0, logHoursMissing: 0 });
  expect(listed).toEqual([]);
});

test('a parked job is not planned again until its park expires', async () => {
  const world = await setup();
  const one = { ...settings, apps: [apps[0] as string], backfillDays: 1, queueAheadMinutes: 100 };
  await planToQueue('exports', one, deps(world), start);
  const parked = world.queue.sent.pop()?.message as JobMessage;
  const gap = parked.job;
  await settleLedgerEntry(world.ledger, parked, { action: 'parked', reason: '404', apiRequests: 1 }, start);
  const again = await planToQueue('exports', one, deps(world), start + HOUR_MS);
  expect(again).toMatchObject({ enqueued: 1, parkedRecently: 1 });
  expect(world.queue.ids()).not.toContain(ledgerId(gap));
  const later = start + PARKED_ENTRY_TTL_MS + 60_000;
  await planToQueue('exports', one, deps(world), later);
  expect(world.queue.ids()).toContain(ledgerId(gap));
});

test('a run stops sending at its deadline: every claimed job is sent and the rest is backlog', async () => {
  const world = await setup();
  const deadline = new AbortController();
  const queue = world.queue;
  let batches = 0;
  const stopping: JobQueue = {
    requeue: async () => {},
    park: async () => {},
    enqueue: async (messages, options) => {
      await queue.enqueue(messages, options);
      if (++batches === 2) deadline.abort();
    },
  };
  const summary = await planToQueue(
    'exports',
    { ...settings, queueAheadMinutes: 100 },
    { ...deps(world, { signal: deadline.signal }), queue: stopping },
    start,
  );
  expect(summary).toMatchObject({ enqueued: 20, stoppedAtDeadline: true, backlog: 2 * 718 - 20 });
  await expectLedgerMatchesQueue(world, start);
  expect((await world.ledger.read(start)).backlogFrom).toBe(oldestHour + 10 * HOUR_MS);
});

test('a batch the queue refuses leaves no claim behind, and the next run sends it', async () => {
  const world = await setup();
  world.queue.failNext = true;
  await expect(planToQueue('exports', settings, deps(world), start)).rejects.toThrow('SendMessageBatch failed');
  expect((await world.ledger.read(start)).queued.size).toBe(0);
  world.queue.failNext = false;
  expect(await planToQueue('exports', settings, deps(world), start + 60_000)).toMatchObject({ enqueued: 30 });
  await expectLedgerMatchesQueue(world, start + 60_000);
});

test('a job another run claimed meanwhile is not sent twice', async () => {
  const world = await setup();
  const oldest: LogHourJob = { kind: 'log_hour', appUuid: apps[0] as string, hour: oldestHour };
  const racing = Object.create(world.ledger, {
    read: {
      value: async (now: number) => {
        const snapshot = await world.ledger.read(now);
        // Between this run's read and its claims, another run claims the oldest hour.
        await world.ledger.claim(ledgerId(oldest), now + HOUR_MS, now, 'claim-of-another-run');
        return snapshot;
      },
    },
  });
  const summary = await planToQueue('exports', settings, { ...deps(world), ledger: racing }, start);
  expect(summary.alreadyQueued).toBe(1);
  expect(world.queue.ids()).not.toContain(ledgerId(oldest));
});

test('audiences and profiles are always sent, ahead of log hours, even when the queue is full', async () => {
  const world = await setup();
  const listing: ExportListing = {
    id: 1,
    name: 'a',
    sourceType: 'audiences',
    sourceId: '45644',
    jobType: 'idfa',
    resultsGeneratedAt: start - HOUR_MS,
  };
  const source = { ...noApi, listAudiences: async () => [listing] };
  const full = { ...settings, datasets: new Set(['logs', 'audiences'] as const) };
  await planToQueue('exports', full, deps(world, { source }), start);
  expect(world.queue.sent[0]?.message.job.kind).toBe('audience');
  // The audience took one place: 29 log hours fill the rest.
  const summary = await planToQueue('exports', full, deps(world, { source }), start + 60_000);
  expect(summary).toMatchObject({ enqueued: 0, alreadyQueued: 30 });
  await finish(world, world.queue.take(1), start + 60_000);
  const next = { ...listing, resultsGeneratedAt: start + HOUR_MS };
  const queueFull = await planToQueue(
    'exports',
    full,
    deps(world, { source: { ...noApi, listAudiences: async () => [next] } }),
    start + 2 * HOUR_MS,
  );
  expect(queueFull.enqueued).toBe(1);
  expect(world.queue.sent.at(-1)?.message.job.kind).toBe('audience');
});

test('a batch the queue partly accepted is not queued twice: only the refused jobs are released (found in review)', async () => {
  const sent: JobMessage[] = [];
  let failOnce = true;
  const queue: JobQueue = {
    // As SqsJobQueue.enqueue: 9 entries accepted, 1 still refused after its retries -> QueueError.
    enqueue: async (messages) => {
      if (failOnce) {
        failOnce = false;
        sent.push(...messages.slice(0, messages.length - 1));
        throw new EnqueueError('could not enqueue 1 job(s)', messages.slice(messages.length - 1));
      }
      sent.push(...messages);
    },
    requeue: async () => {},
    park: async () => {},
  };
  const world = {
    sink: new LocalDirSink(await tempDir()),
    queue,
    ledger: new MemoryJobLedger(),
    source: noApi,
    logger: silentLogger,
  };
  const now = Date.UTC(2026, 10, 29, 12, 30);
  await expect(planToQueue('exports', settings, world, now)).rejects.toThrow();
  await planToQueue('topup', settings, world, now + 15 * 60_000).catch(() => undefined);
  await planToQueue('exports', settings, world, now + 15 * 60_000);
  const ids = sent.map((message) => ledgerId(message.job));
  expect(ids.length - new Set(ids).size).toBe(0);
});
