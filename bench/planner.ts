/**
 * Group 4: planner scale. The Lambda planner's use case (`planToQueue`, the daily backfill over 30 days) for many
 * apps against a destination that already holds every other hour, sending the missing hours to SQS (fauxqs) in
 * batches of 10: time and peak memory of the planning process (a child, measured by `/usr/bin/time -v`).
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DAY_MS, floorHour, HOUR_MS, hoursBetween, LOG_RETENTION_MS } from '../functions/core/hours.js';
import { dataKey } from '../functions/core/jobs.js';
import type { ChildName } from './children.js';
import type { PlanChildConfig, PlanChildResult } from './planner-types.js';
import { fixed, type GroupResult, infoRow, newGroup, table, targetRow } from './report.js';
import { startFauxqs, startS3rver } from './services.js';
import { forEachConcurrently, MiB, median, progress, rotate, rssMiB, timedOk } from './support.js';

const BUCKET = 'lake';
const PREFIX = 'localytics';
const MB = 1e6;
/** The planner task's settings in the benchmark (the handler's defaults). */
const LOG_LAG_HOURS = 1;
const BACKFILL_DAYS = 30;

const VARIANTS = ['s3', 'local'] as const;
type Variant = (typeof VARIANTS)[number];
const LABELS: Record<Variant, string> = { s3: 'S3Sink on s3rver', local: 'LocalDirSink' };

export interface PlannerBenchOptions {
  readonly apps: number;
  readonly runs: number;
  readonly tmpRoot: string;
  readonly children: Record<ChildName, string>;
}

interface Sample {
  readonly seconds: number;
  readonly rssMiB: number;
  readonly result: PlanChildResult;
}

/** Deterministic app IDs in Localytics' format (23 hex digits, then four dash-separated hex groups). */
export function syntheticApps(count: number): string[] {
  return Array.from({ length: count }, (_, index) => {
    const hex = createHash('sha256').update(`bench-app-${index}`).digest('hex');
    return `${hex.slice(0, 23)}-${hex.slice(23, 31)}-${hex.slice(31, 35)}-${hex.slice(35, 39)}-${hex.slice(39, 51)}`;
  });
}

/** The window `planToQueue` covers for the daily task (same arithmetic; the child's answer is checked against it). */
function backfillWindow(now: number): { from: number; to: number } {
  const to = floorHour(now - LOG_LAG_HOURS * HOUR_MS);
  const from = Math.max(to - BACKFILL_DAYS * DAY_MS, floorHour(now - LOG_RETENTION_MS) + HOUR_MS);
  return { from, to };
}

export async function benchPlanner(options: PlannerBenchOptions): Promise<GroupResult> {
  const group = newGroup('4. Planner scale');
  const apps = syntheticApps(options.apps);
  const now = Date.now();
  const window = backfillWindow(now);
  const hours = [...hoursBetween(window.from, window.to)];
  const appHours = apps.length * hours.length;
  // Every other hour of every app is already at the destination.
  const keys = apps.flatMap((appUuid) =>
    hours.filter((_, index) => index % 2 === 0).map((hour) => dataKey({ kind: 'log_hour', appUuid, hour })),
  );
  const body = gzipSync('{}\n');
  const localDir = path.join(options.tmpRoot, 'planner-local');
  const s3 = await startS3rver(path.join(options.tmpRoot, 'planner-s3rver'), [BUCKET]);
  const sqs = await startFauxqs();
  try {
    progress(`planner: seeding ${keys.length} objects into s3rver`);
    let started = performance.now();
    await forEachConcurrently(keys, 32, async (key) => {
      await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/${key}`, Body: body }));
    });
    const seedS3Seconds = (performance.now() - started) / 1000;
    progress(`planner: seeding ${keys.length} files into a local directory`);
    started = performance.now();
    await forEachConcurrently(keys, 32, async (key) => {
      const file = path.join(localDir, PREFIX, key);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, body);
    });
    const seedLocalSeconds = (performance.now() - started) / 1000;

    const samples: Record<Variant, Sample[]> = { s3: [], local: [] };
    for (let rep = 0; rep < options.runs; rep++) {
      for (const variant of rotate(VARIANTS, rep)) {
        progress(`planner: run ${rep + 1}/${options.runs}, ${LABELS[variant]}`);
        const queues = await createQueues(sqs.client, `plan-${variant}-${rep}`);
        const config: PlanChildConfig = {
          sink:
            variant === 's3'
              ? { type: 's3', endpoint: s3.endpoint, bucket: BUCKET, prefix: PREFIX }
              : { type: 'local', dir: path.join(localDir, PREFIX) },
          sqsEndpoint: sqs.endpoint,
          queueUrl: queues.queueUrl,
          dlqUrl: queues.dlqUrl,
          apps,
          now,
        };
        const run = await timedOk(process.execPath, [options.children.plan, JSON.stringify(config)]);
        const result = JSON.parse(run.stdout) as PlanChildResult;
        const depth = await queueDepth(sqs.client, queues.queueUrl);
        const expected = appHours - keys.length;
        if (result.present !== keys.length || result.enqueued !== expected || depth !== expected) {
          throw new Error(
            `planner (${variant}) found ${result.present} of ${keys.length} present hours and enqueued ` +
              `${result.enqueued} (queue holds ${depth}), expected ${expected}`,
          );
        }
        await sqs.client.send(new DeleteQueueCommand({ QueueUrl: queues.queueUrl }));
        await sqs.client.send(new DeleteQueueCommand({ QueueUrl: queues.dlqUrl }));
        samples[variant].push({ seconds: run.seconds, rssMiB: rssMiB(run), result });
      }
    }
    summarise(group, samples, {
      apps: apps.length,
      hours: hours.length,
      appHours,
      present: keys.length,
      seedS3Seconds,
      seedLocalSeconds,
    });
  } finally {
    await sqs.stop();
    await s3.stop();
  }
  return group;
}

async function createQueues(client: SQSClient, name: string): Promise<{ queueUrl: string; dlqUrl: string }> {
  const dlq = await client.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const queue = await client.send(new CreateQueueCommand({ QueueName: name }));
  if (!queue.QueueUrl || !dlq.QueueUrl) throw new Error('fauxqs returned no queue URL');
  return { queueUrl: queue.QueueUrl, dlqUrl: dlq.QueueUrl };
}

async function queueDepth(client: SQSClient, queueUrl: string): Promise<number> {
  const response = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
  );
  return Number(response.Attributes?.ApproximateNumberOfMessages ?? -1);
}

interface Scale {
  readonly apps: number;
  readonly hours: number;
  readonly appHours: number;
  readonly present: number;
  readonly seedS3Seconds: number;
  readonly seedLocalSeconds: number;
}

function summarise(group: GroupResult, samples: Record<Variant, Sample[]>, scale: Scale): void {
  const seconds = (variant: Variant) => median(samples[variant].map((sample) => sample.seconds));
  const rss = (variant: Variant) => median(samples[variant].map((sample) => sample.rssMiB));
  const command = (variant: Variant, name: string) => {
    const calls = median(samples[variant].map((sample) => sample.result.commands[name]?.calls ?? 0));
    const ms = median(samples[variant].map((sample) => sample.result.commands[name]?.ms ?? 0));
    return calls ? `${calls} / ${fixed(ms / 1000, 2)} s` : '—';
  };
  const inner = (variant: Variant, pick: (result: PlanChildResult) => number) =>
    fixed(median(samples[variant].map((sample) => pick(sample.result))) / 1000, 2);
  const enqueued = scale.appHours - scale.present;
  const scope = `${scale.appHours.toLocaleString('en-US')} app-hours (${scale.apps} apps × ${scale.hours} h), ${scale.present.toLocaleString('en-US')} present, ${enqueued.toLocaleString('en-US')} enqueued`;
  group.rows.push(
    infoRow('scale', scope),
    targetRow(
      'plan + enqueue, S3 destination (s3rver): wall time',
      `${fixed(seconds('s3'))} s`,
      seconds('s3'),
      '<',
      60,
      '< 60 s',
    ),
    targetRow(
      'plan + enqueue, S3 destination (s3rver): peak RSS',
      `${fixed((rss('s3') * MiB) / MB)} MB (${fixed(rss('s3'))} MiB)`,
      (rss('s3') * MiB) / MB,
      '<',
      300,
      '< 300 MB',
    ),
    infoRow(
      'plan + enqueue, local directory destination: wall / peak RSS',
      `${fixed(seconds('local'))} s / ${fixed((rss('local') * MiB) / MB)} MB`,
    ),
    infoRow(
      'seeding the present hours (setup, not timed by the target)',
      `s3rver PutObject ×${scale.present.toLocaleString('en-US')}: ${fixed(scale.seedS3Seconds)} s (${fixed(scale.present / scale.seedS3Seconds, 0)}/s); local files: ${fixed(scale.seedLocalSeconds)} s`,
    ),
  );
  group.details.push(
    table(
      [
        'Destination',
        'Wall s (median)',
        'planToQueue s',
        'listing + planning s',
        'enqueue s',
        'ListObjectsV2 calls / time',
        'SendMessageBatch calls / time',
        'Peak RSS MiB',
        'Heap at end MiB',
        'Wall s (every run)',
      ],
      VARIANTS.map((variant) => [
        LABELS[variant],
        fixed(seconds(variant), 2),
        inner(variant, (result) => result.totalMs),
        inner(variant, (result) => result.planMs),
        inner(variant, (result) => result.enqueueMs),
        command(variant, 'ListObjectsV2Command'),
        command(variant, 'SendMessageBatchCommand'),
        fixed(rss(variant)),
        fixed(median(samples[variant].map((sample) => sample.result.heapUsedMiB))),
        samples[variant].map((sample) => fixed(sample.seconds, 2)).join(', '),
      ]),
    ),
  );
  group.notes.push(
    `The child runs the real \`planToQueue('exports', …)\` (logs only, log lag ${LOG_LAG_HOURS} h, backfill ${BACKFILL_DAYS} days: the window is ${scale.hours} hours, not 720, because the newest hour is an hour old and the oldest must still be inside the 30-day retention), bundled by esbuild and run by plain \`node\`, with a source that lists nothing (log hours need no API call).`,
    'Existence checks are one listing per app (ListObjectsV2 from the window start), not one HEAD per hour; every missing hour becomes one message, sent by `SqsJobQueue` in SendMessageBatch calls of 10, one after the other.',
    'Each run gets a new queue; the benchmark checks that the planner found every seeded hour and that the queue holds exactly the missing ones.',
    'Wall time is the child process from start to exit (Node start-up included); command times are summed SDK latencies measured by a middleware in the child.',
  );
}
