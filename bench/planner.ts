/**
 * Group 4: planner scale. The Lambda planner's use case (`planToQueue`, logs only, 30-day window) as separate
 * processes against s3rver (the destination), fauxqs (the job queue) and dynalite (the queued-job ledger): the first
 * backfill of many apps after a deployment, a top-up during that backfill, and a destination that already holds
 * every other hour. Time and peak memory of the planning process (a child, measured by `/usr/bin/time -v`).
 */
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDbJobLedger } from '../functions/adapters/dynamodb-job-ledger.js';
import { floorHour, HOUR_MS, hoursBetween, LOG_RETENTION_MS } from '../functions/core/hours.js';
import { ledgerId } from '../functions/core/job-ledger.js';
import { type JobMessage, parseJobMessage } from '../functions/core/job-message.js';
import { dataKey, type LogHourJob } from '../functions/core/jobs.js';
import { createTestTable } from '../test/support/dynamodb.js';
import { syntheticApps } from '../test/support/synthetic-apps.js';
import type { ChildName } from './children.js';
import type { PlanChildConfig, PlanChildResult } from './planner-types.js';
import { fixed, type GroupResult, infoRow, newGroup, table, targetRow } from './report.js';
import { startDynalite, startFauxqs, startS3rver } from './services.js';
import { forEachConcurrently, MiB, median, progress, rssMiB, timedOk } from './support.js';

const BUCKET = 'lake';
const MB = 1e6;
/** The deployment's defaults: 50 requests a minute, 30 minutes of work in the queue. */
const RATE = 50;
const AHEAD_MINUTES = 30;
const CAPACITY = RATE * AHEAD_MINUTES;

export interface PlannerBenchOptions {
  /** Apps of the backfill scenarios (1,000 in a full run). */
  readonly apps: number;
  /** Apps of the dense-destination scenario (100 in a full run). */
  readonly denseApps: number;
  readonly runs: number;
  readonly tmpRoot: string;
  readonly children: Record<ChildName, string>;
}

const SCENARIOS = ['first', 'topup', 'dense'] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Sample {
  readonly seconds: number;
  readonly rssMiB: number;
  readonly result: PlanChildResult;
}

/** The hours of the 30-day window the daily task plans at `now` (log lag 1 h), oldest first. */
function windowHours(now: number): number[] {
  const to = floorHour(now - HOUR_MS);
  return [...hoursBetween(floorHour(now - LOG_RETENTION_MS) + HOUR_MS, to)];
}

export async function benchPlanner(options: PlannerBenchOptions): Promise<GroupResult> {
  const group = newGroup('4. Planner scale');
  const apps = syntheticApps(options.apps);
  const denseApps = syntheticApps(options.denseApps);
  const now = Date.now();
  const hours = windowHours(now);
  const body = gzipSync('{}\n');
  const s3 = await startS3rver(path.join(options.tmpRoot, 'planner-s3rver'), [BUCKET]);
  const sqs = await startFauxqs();
  const dynalite = await startDynalite(path.join(options.tmpRoot, 'planner-dynalite'));
  const put = (prefix: string, keys: readonly string[]) =>
    forEachConcurrently(keys, 32, async (key) => {
      await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${key}`, Body: body }));
    });
  try {
    // Dense destination: every other hour of every app is there already.
    const denseKeys = denseApps.flatMap((appUuid) =>
      hours.filter((_, index) => index % 2 === 0).map((hour) => dataKey({ kind: 'log_hour', appUuid, hour })),
    );
    progress(`planner: seeding ${denseKeys.length} objects into s3rver`);
    const started = performance.now();
    await put('dense', denseKeys);
    const seedSeconds = (performance.now() - started) / 1000;

    const samples: Record<Scenario, Sample[]> = { first: [], topup: [], dense: [] };
    for (let rep = 0; rep < options.runs; rep++) {
      const prefix = `backfill-${rep}`;
      const base = {
        s3Endpoint: s3.endpoint,
        bucket: BUCKET,
        sqsEndpoint: sqs.endpoint,
        dynamoDbEndpoint: dynalite.endpoint,
        now,
        requestsPerMinute: RATE,
        queueAheadMinutes: AHEAD_MINUTES,
      };
      const run = async (scenario: Scenario, config: PlanChildConfig) => {
        progress(`planner: run ${rep + 1}/${options.runs}, ${scenario}`);
        const timed = await timedOk(process.execPath, [options.children.plan, JSON.stringify(config)]);
        const result = JSON.parse(timed.stdout) as PlanChildResult;
        samples[scenario].push({ seconds: timed.seconds, rssMiB: rssMiB(timed), result });
        return result;
      };

      // First backfill after a deployment: nothing at the destination, an empty ledger.
      const queues = await createQueues(sqs.client, `plan-${rep}`);
      const ledgerTable = await createTestTable(dynalite.client);
      const ledger = new DynamoDbJobLedger(dynalite.client, ledgerTable);
      const backfill = { ...base, ...queues, ledgerTable, prefix, apps };
      const first = await run('first', { ...backfill, task: 'exports' });
      const messages = await queuedMessages(sqs.endpoint, queues.name);
      const queued = messages.map((message) => message.job as LogHourJob);
      expectOldestFirst('first backfill', queued, apps, hours, CAPACITY);
      check('first backfill', first.enqueued === CAPACITY && first.logHoursMissing === apps.length * hours.length);

      // The copiers land those jobs (the bench writes their objects and ends their ledger entries), then a top-up.
      await put(
        prefix,
        queued.map((job) => dataKey(job)),
      );
      for (const message of messages) await ledger.release(ledgerId(message.job), message.ledgerClaim);
      const topup = await run('topup', { ...backfill, task: 'topup' });
      const both = await queuedJobs(sqs.endpoint, queues.name);
      // The queue still holds the first messages too (nobody deleted them): together, the oldest, each once.
      expectOldestFirst('top-up', both, apps, hours, 2 * CAPACITY);
      check('top-up', topup.enqueued === CAPACITY);

      // A destination holding every other hour: one listing per app returns 359 keys.
      const denseQueues = await createQueues(sqs.client, `dense-${rep}`);
      const dense = await run('dense', {
        ...base,
        ...denseQueues,
        ledgerTable: await createTestTable(dynalite.client),
        prefix: 'dense',
        apps: denseApps,
        task: 'exports',
      });
      check('dense', dense.present === denseKeys.length && dense.enqueued === CAPACITY);
    }
    summarise(group, samples, { apps: apps.length, denseApps: denseApps.length, hours: hours.length, seedSeconds });
  } finally {
    await dynalite.stop();
    await sqs.stop();
    await s3.stop();
  }
  return group;
}

function check(what: string, ok: boolean): void {
  if (!ok) throw new Error(`planner bench: ${what} did not plan what was expected`);
}

/**
 * The queue holds `count` distinct jobs, and they are the oldest of the window: every hour before the newest
 * queued hour is queued for every app.
 */
function expectOldestFirst(
  what: string,
  jobs: readonly LogHourJob[],
  apps: readonly string[],
  hours: readonly number[],
  count: number,
): void {
  const ids = new Set(jobs.map((job) => ledgerId(job)));
  check(`${what}: ${ids.size} distinct of ${jobs.length} queued, expected ${count}`, ids.size === count);
  const newest = Math.max(...jobs.map((job) => job.hour));
  for (const hour of hours.filter((hour) => hour < newest)) {
    for (const appUuid of apps) {
      check(`${what}: an older hour is not queued`, ids.has(ledgerId({ kind: 'log_hour', appUuid, hour })));
    }
  }
}

async function createQueues(client: SQSClient, name: string) {
  const dlq = await client.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const queue = await client.send(new CreateQueueCommand({ QueueName: name }));
  if (!queue.QueueUrl || !dlq.QueueUrl) throw new Error('fauxqs returned no queue URL');
  return { name, queueUrl: queue.QueueUrl, dlqUrl: dlq.QueueUrl };
}

/** Every message of a queue, ready or delayed, from fauxqs' inspection endpoint (nothing is received). */
async function queuedMessages(endpoint: string, queue: string): Promise<JobMessage[]> {
  const response = await fetch(`${endpoint}/_fauxqs/queues/${queue}`);
  if (!response.ok) throw new Error(`fauxqs inspection of ${queue} answered ${response.status}`);
  const state = (await response.json()) as {
    messages: Record<string, { body?: string; message?: { body: string } }[]>;
  };
  return Object.values(state.messages)
    .flat()
    .map((entry) => parseJobMessage(entry.body ?? entry.message?.body ?? ''));
}

async function queuedJobs(endpoint: string, queue: string): Promise<LogHourJob[]> {
  return (await queuedMessages(endpoint, queue)).map((message) => message.job as LogHourJob);
}

interface Scale {
  readonly apps: number;
  readonly denseApps: number;
  readonly hours: number;
  readonly seedSeconds: number;
}

const LABELS: Record<Scenario, string> = {
  first: 'first backfill (empty destination)',
  topup: 'top-up during the backfill',
  dense: 'every other hour present',
};

function summarise(group: GroupResult, samples: Record<Scenario, Sample[]>, scale: Scale): void {
  const seconds = (scenario: Scenario) => median(samples[scenario].map((sample) => sample.seconds));
  const rss = (scenario: Scenario) => median(samples[scenario].map((sample) => sample.rssMiB));
  const command = (scenario: Scenario, name: string) => {
    const calls = median(samples[scenario].map((sample) => sample.result.commands[name]?.calls ?? 0));
    const ms = median(samples[scenario].map((sample) => sample.result.commands[name]?.ms ?? 0));
    return calls ? `${calls} / ${fixed(ms / 1000, 2)} s` : '—';
  };
  const appHours = (apps: number) => (apps * scale.hours).toLocaleString('en-US');
  const slowest = Math.max(seconds('first'), seconds('topup'));
  const biggest = Math.max(rss('first'), rss('topup'));
  group.rows.push(
    infoRow(
      'scale',
      `${appHours(scale.apps)} app-hours (${scale.apps} apps × ${scale.hours} h) missing at first; the queue takes ${CAPACITY.toLocaleString('en-US')} (${AHEAD_MINUTES} min at ${RATE}/min)`,
    ),
    targetRow(
      `${scale.apps} apps, first backfill and top-up: slowest wall time`,
      `${fixed(slowest)} s`,
      slowest,
      '<',
      150,
      '< 150 s (half the 5-min timeout)',
    ),
    targetRow(
      `${scale.apps} apps, first backfill and top-up: peak RSS`,
      `${fixed((biggest * MiB) / MB)} MB (${fixed(biggest)} MiB)`,
      (biggest * MiB) / MB,
      '<',
      400,
      '< 400 MB (the planner has 512 MB)',
    ),
    infoRow(
      `${scale.denseApps} apps, every other hour present: wall / peak RSS`,
      `${fixed(seconds('dense'))} s / ${fixed((rss('dense') * MiB) / MB)} MB`,
    ),
    infoRow(
      'seeding the dense destination (setup, not timed by the target)',
      `s3rver PutObject ×${(scale.denseApps * Math.ceil(scale.hours / 2)).toLocaleString('en-US')}: ${fixed(scale.seedSeconds)} s`,
    ),
  );
  group.details.push(
    table(
      [
        'Scenario',
        'Apps',
        'Wall s (median)',
        'planToQueue s',
        'ListObjectsV2 calls / time',
        'Scan / PutItem calls',
        'SendMessageBatch calls / time',
        'Peak RSS MiB',
        'Heap at end MiB',
        'Wall s (every run)',
      ],
      SCENARIOS.map((scenario) => [
        LABELS[scenario],
        String(scenario === 'dense' ? scale.denseApps : scale.apps),
        fixed(seconds(scenario), 2),
        fixed(median(samples[scenario].map((sample) => sample.result.totalMs)) / 1000, 2),
        command(scenario, 'ListObjectsV2Command'),
        `${command(scenario, 'ScanCommand')}; ${command(scenario, 'PutItemCommand')}`,
        command(scenario, 'SendMessageBatchCommand'),
        fixed(rss(scenario)),
        fixed(median(samples[scenario].map((sample) => sample.result.heapUsedMiB))),
        samples[scenario].map((sample) => fixed(sample.seconds, 2)).join(', '),
      ]),
    ),
  );
  group.notes.push(
    `The child runs the real \`planToQueue\` (logs only, log lag 1 h, backfill 30 days: ${scale.hours} hours, the newest an hour old and the oldest still inside the retention) with S3Sink on s3rver, SqsJobQueue on fauxqs and DynamoDbJobLedger on dynalite, bundled by esbuild and run by plain \`node\`; the source lists nothing (log hours need no API call).`,
    `First backfill: the deployment trigger's run (\`exports\`) on an empty destination and ledger. Top-up: the benchmark lands the ${CAPACITY.toLocaleString('en-US')} queued jobs (objects written, ledger entries ended) and runs \`topup\`. After each, it reads every message from fauxqs' inspection endpoint and checks that the queue holds each job once and that they are the oldest hours of every app.`,
    'Existence checks are one listing per app from the window start (8 at a time); claims are conditional PutItems, ten at a time, each batch then sent with SendMessageBatch. Wall time is the child process from start to exit (Node start-up included); command times are summed SDK latencies measured in the child (concurrent calls add up).',
  );
}
