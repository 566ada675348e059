/**
 * The fault campaign: one seed picks a path (the CLI, or the Lambda/SQS deployment), a set of faults, and runs the
 * sync against the simulator and the emulators until it converges; then it checks the promises: nothing lost,
 * nothing duplicated, nothing corrupted, no multipart upload left open, no secret in any output, and every job
 * that did not finish either pending or parked with its reason.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { dataKey, type SyncJob } from '../../functions/core/jobs.js';
import {
  audienceRows,
  latestGeneration,
  profileChangeRows,
  profileRows,
  serializeRows,
} from '../../functions/simulator/dataset.js';
import type { FaultRule } from '../../functions/simulator/faults.js';
import { createRandom } from '../../functions/simulator/random.js';
import { LocalyticsSimulator, SIMULATOR_DEFAULT_CREDENTIALS } from '../../functions/simulator/server.js';
import { runCli } from '../support/cli.js';
import { TestDeployment } from '../support/deployment/deployment.js';
import type { LambdaContainer } from '../support/deployment/lambda-container.js';
import { E2E_SECRET_ARN, type SynthesizedDeployment } from '../support/deployment/synth.js';
import { clearTable, createTestTable } from '../support/dynamodb.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { findLeaks } from '../support/leak-scan.js';
import { createTestBucket, listAllKeys, S3RVER_CREDENTIALS } from '../support/s3.js';
import { S3RecordingProxy } from '../support/s3-proxy.js';
import { lambdaContext, queueDepth, receiveAll, toSqsEvent } from '../support/sqs.js';

export interface CampaignServers {
  readonly s3Endpoint: string;
  readonly sqsEndpoint: string;
  readonly dynamoDbEndpoint: string;
  readonly dynamoDb: DynamoDBClient;
  readonly s3: (endpoint: string) => S3Client;
  readonly sqs: SQSClient;
  readonly createQueues: (sqs: SQSClient) => Promise<{ queueUrl: string; dlqUrl: string; queueArn: string }>;
  /** A fresh request budget table (the deployment's functions share the key's budget through it). */
  readonly createBudgetTable: () => Promise<string>;
  /** The synthesized stack whose bundled handlers the Lambda path runs. */
  readonly deployment: () => Promise<SynthesizedDeployment>;
}

export interface SeedResult {
  readonly seed: number;
  readonly path: 'cli' | 'lambda';
  readonly faults: string[];
  readonly expected: number;
  readonly landed: number;
  /** Expected keys still empty because their change set was reported lost (the next run pulls the next one). */
  readonly missingButReported: number;
  readonly lost: number;
  readonly reportedLost: number;
  readonly duplicated: number;
  readonly corrupted: number;
  readonly orphanedUploads: number;
  readonly leaks: number;
  readonly unexplained: number;
  readonly rounds: number;
  readonly problems: string[];
}

const PREFIX = 'lake';
const MAX_ROUNDS = 8;

/** One seed, start to finish. Never throws for a broken promise: it reports it in the result. */
export async function runSeed(seed: number, servers: CampaignServers): Promise<SeedResult> {
  const random = createRandom(seed * 7919 + 17);
  const chance = (p: number) => random() < p;
  const between = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const route: SeedResult['path'] = chance(0.5) ? 'cli' : 'lambda';
  // The deployed planner plans by the real clock: keep a Lambda seed within one hour, as the checks expect.
  if (route === 'lambda') await awayFromHourBoundary(45_000);
  // One clock for the whole seed: a run that crosses an hour (or 13:00 UTC) must not plan a different window.
  const seedStart = Date.now();
  const simulator = new LocalyticsSimulator({ ratePerMinute: 6000, now: () => seedStart });
  const proxy = new S3RecordingProxy(servers.s3Endpoint);
  const secrets = new FakeSecretsManager();
  await Promise.all([simulator.start(), proxy.start(), secrets.start()]);
  const output: string[] = [];
  const problems: string[] = [];
  const faults: string[] = [];
  try {
    const s3 = servers.s3(proxy.url);
    const bucket = await createTestBucket(s3);
    const apps = [...simulator.dataset.apps];
    const to = floorHour(seedStart) - 3 * HOUR_MS;
    const from = to - 3 * HOUR_MS;
    const large = chance(0.35) ? { app: apps[0] as string, hour: from, bytes: 12 * 1024 * 1024 } : undefined;
    if (large) {
      // A gzip log hour: one streaming PutObject (its length is known), 12 MiB so that a kill lands mid-body.
      simulator.setLargeHour(large.app, large.hour, large.bytes);
      faults.push('large');
    }

    const add = (rule: FaultRule, label: string) => {
      simulator.faults.add(rule);
      faults.push(label);
    };
    if (chance(0.5))
      add(
        { kind: 'throttle', count: between(2, 8), retryAfterSeconds: chance(0.5) ? between(0, 1) : undefined },
        '429-storm',
      );
    if (chance(0.4)) add({ kind: 'server_error', count: between(1, 3) }, '5xx');
    if (chance(0.5)) add({ kind: 'reset', count: between(1, 3) }, 'reset');
    if (chance(0.4)) add({ kind: 'truncate', count: between(1, 2), match: 'log/' }, 'truncate');
    if (chance(0.3)) add({ kind: 'corrupt', count: 1, match: 'log/' }, 'corrupt');
    if (chance(0.4))
      add({ kind: 'expire', count: between(1, 2), match: chance(0.2) ? 'profile_changes/' : 'log/' }, 'expire');
    if (chance(0.3)) add({ kind: 'file_server_error', count: between(1, 3) }, 'file-5xx');
    if (chance(0.25)) add({ kind: 'slow', count: 1, match: 'audience/' }, 'slow');
    if (chance(0.3)) {
      proxy.failNext('PutObject', between(1, 2));
      faults.push('s3-put');
    }
    if (large && chance(0.5)) {
      // Large hours were multipart uploads (UploadPart or Complete failed); they are single PUTs now. The draw stays,
      // so that every seed keeps the faults it had.
      chance(0.5);
      proxy.failNext('PutObject', 1);
      faults.push('s3-upload');
    }
    const kill = large && chance(0.5);
    if (kill) {
      // The first download of the large hour trickles, so the kill lands mid-copy.
      simulator.faults.add({ kind: 'slow', count: 1, match: `log/${large.app}/${formatHour(large.hour)}` });
      faults.push('kill');
    }
    const duplicates = route === 'lambda' && chance(0.5);
    if (duplicates) faults.push('duplicate-delivery');
    const deadline = route === 'lambda' && chance(0.3);
    if (deadline) faults.push('deadline');

    const s3Env = {
      AWS_ENDPOINT_URL_S3: proxy.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    };
    Object.assign(process.env, s3Env, {
      AWS_ENDPOINT_URL_SQS: servers.sqsEndpoint,
      AWS_ENDPOINT_URL_DYNAMODB: servers.dynamoDbEndpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    });

    let rounds = 0;
    let failures: { job: string; reason: string }[] = [];
    let parkedReasons: (string | undefined)[] = [];
    // Change sets reported lost, one entry per report (the same job can lose more than one change set).
    const lostReported: string[] = [];

    if (route === 'cli') {
      const args = [
        'sync',
        '--dest',
        `s3://${bucket}/${PREFIX}`,
        '--api-url',
        simulator.url,
        '--apps',
        apps.join(','),
        '--from',
        formatHour(from),
        '--to',
        formatHour(to),
        '--rate',
        '6000',
        '--json',
        '--verbose',
      ];
      const env = {
        ...s3Env,
        LOCALYTICS_API_KEY: SIMULATOR_DEFAULT_CREDENTIALS.apiKey,
        LOCALYTICS_API_SECRET: SIMULATOR_DEFAULT_CREDENTIALS.apiSecret,
      };
      if (kill && large) {
        await killMidCopy(
          spawnNode([path.resolve('dist/localytics-sync.mjs'), ...args], env, output),
          undefined,
          () => midCopy(proxy, large),
          proxy,
        );
      }
      const round = async () => {
        const run = await runCliCaptured(args, env, output);
        const summary = JSON.parse(run.stdout || '{}') as {
          failed?: { job: string; reason: string }[];
          pending?: string[];
        };
        failures = summary.failed ?? [];
        for (const failure of failures) if (isReportedLoss(failure.reason)) lostReported.push(failure.job);
        const remaining = failures.filter((failure) => !isReportedLoss(failure.reason));
        return remaining.length === 0 && (summary.pending ?? []).length === 0;
      };
      for (rounds = 1; rounds <= MAX_ROUNDS; rounds++) if (await round()) break;
      // A run killed after its change-set request left a claim that holds until its lease ends: let it end.
      if (await ageAbandonedClaims(s3, bucket)) await round();
    } else {
      // The deployment as deployed: the bundled handlers on Node.js 22, the template's environment, every AWS call
      // checked against the function's synthesized policy.
      const queues = await servers.createQueues(servers.sqs);
      secrets.put(E2E_SECRET_ARN, JSON.stringify(SIMULATOR_DEFAULT_CREDENTIALS));
      const ledgerTable = await createTestTable(servers.dynamoDb);
      const deployment = await TestDeployment.start({
        synth: await servers.deployment(),
        endpoints: {
          s3: servers.s3Endpoint,
          sqs: servers.sqsEndpoint,
          dynamoDb: servers.dynamoDbEndpoint,
          secretsManager: secrets.url,
        },
        s3Proxy: proxy,
        apiUrl: simulator.url,
        bucket,
        queues,
        budgetTable: await servers.createBudgetTable(),
        ledgerTable,
        // The simulator's apps, not the deployment's bundled list.
        apps,
        environment: {
          RATE_PER_MINUTE: '6000',
          MAX_RECEIVE_COUNT: '4',
          RETRY_BASE_SECONDS: '1',
          NOT_READY_DELAY_SECONDS: '1',
          LOOKBACK_HOURS: '3',
          LOG_LAG_HOURS: '3',
          // Info logs too: the more the functions say, the more the leak scan sees.
          POWERTOOLS_LOG_LEVEL: 'INFO',
        },
      });
      try {
        // The hourly planner covers the three log hours of the window; the daily one, audiences and profiles.
        const [logPlanner, exportPlanner] = await Promise.all([
          deployment.startContainer('planner', { DATASETS: 'logs' }),
          deployment.startContainer('planner', { DATASETS: 'audiences,profiles' }),
        ]);
        const plan = async (container: LambdaContainer, task: string) =>
          (await container.invoke<{ enqueued: number }>({ task }, 300_000)).enqueued;
        const planner = async () => (await plan(logPlanner, 'logs')) + (await plan(exportPlanner, 'exports'));
        await planner();
        if (kill && large) {
          // A copier container killed (SIGKILL, as Lambda ends a timed-out one) in the middle of a copy.
          const doomed = await deployment.startContainer('copier');
          await killMidCopy(
            doomed,
            drain(
              deployment.eventSource,
              queues,
              (event, context) => doomed.invoke(event, context.getRemainingTimeInMillis()),
              {
                duplicates: false,
                deadline: false,
                random,
              },
            ),
            () => midCopy(proxy, large),
            proxy,
          );
        }
        for (rounds = 1; rounds <= MAX_ROUNDS; rounds++) {
          await drain(deployment.eventSource, queues, deployment.copier, {
            duplicates,
            deadline: deadline && rounds === 1,
            random,
          });
          // Each further round plays the next day's planning: parked jobs and the entries of messages SQS moved to
          // the dead-letter queue have expired from the ledger by then.
          await clearTable(servers.dynamoDb, ledgerTable);
          if ((await planner()) === 0) break;
        }
        // A copier killed after its change-set request left a claim that holds until its invocation's deadline.
        if (await ageAbandonedClaims(s3, bucket)) {
          // Later: the deferred job's delayed message and its ledger entry have expired too.
          await clearTable(servers.dynamoDb, ledgerTable);
          await planner();
          await drain(deployment.eventSource, queues, deployment.copier, {
            duplicates: false,
            deadline: false,
            random,
          });
        }
      } finally {
        const denied = deployment.deniedActions();
        if (denied.length > 0) problems.push(`calls outside the function's IAM policy: ${denied.join(', ')}`);
        await deployment.stop();
        output.push(deployment.output('planner'), deployment.output('copier'));
      }
      const parked = await drainDeadLetters(servers.sqs, queues.dlqUrl);
      parkedReasons = parked.map((message) => message.reason);
      for (const message of parked) {
        if (isReportedLoss(message.reason ?? '')) lostReported.push(message.body);
      }
      failures = parked.map((message) => ({ job: message.body, reason: message.reason ?? '' }));
    }

    // ---- Checks ------------------------------------------------------------------------------------------------
    const generation = latestGeneration(seedStart);
    const expected = new Map<string, SyncJob>();
    for (const appUuid of apps) {
      for (let hour = from; hour < to; hour += HOUR_MS)
        expected.set(dataKey({ kind: 'log_hour', appUuid, hour }), { kind: 'log_hour', appUuid, hour });
    }
    for (const audience of simulator.dataset.audiences) {
      for (const identifierType of audience.identifierTypes) {
        const job: SyncJob = {
          kind: 'audience',
          audienceId: audience.audienceId,
          identifierType,
          generatedAt: generation,
        };
        expected.set(dataKey(job), job);
      }
    }
    for (const db of simulator.dataset.profileDbs) {
      for (const kind of ['profile', 'profile_changes'] as const) {
        const job: SyncJob = { kind, profileDbId: db.profileDbId, generatedAt: generation };
        expected.set(dataKey(job), job);
      }
    }
    const keys = (await listAllKeys(s3, bucket, `${PREFIX}/`)).map((key) => key.slice(PREFIX.length + 1));
    const dataKeys = keys.filter((key) => !key.startsWith('_'));
    const duplicated = dataKeys.filter((key) => !expected.has(key)).length;
    let corrupted = 0;
    let lost = 0;
    // Every report of a lost or possibly consumed change set leaves a marker (a takeover of a dead run's claim is
    // reported as a warning and a marker, not as a failure).
    const markers = (await listAllKeys(s3, bucket, `${PREFIX}/_state/profile_changes_lost/`)).length;
    while (lostReported.length < markers) lostReported.push('marker');
    const reportedLost = lostReported.length;
    let missingButReported = 0;
    const changeRows: string[] = [];
    for (const [key, job] of expected) {
      if (!dataKeys.includes(key)) {
        // A change set whose loss was reported leaves its key empty until the next run pulls the next one.
        if (job.kind === 'profile_changes' && reportedLost > 0) missingButReported++;
        else {
          lost++;
          problems.push(`lost ${key}`);
        }
        continue;
      }
      const stored = await objectBytes(s3, bucket, `${PREFIX}/${key}`);
      let good: boolean;
      if (job.kind === 'log_hour') {
        good = sha256(stored) === (await streamSha256(await simulator.logHourFile(job.appUuid, job.hour)));
      } else if (job.kind === 'audience') {
        good =
          gunzipSync(stored).toString() ===
          serializeRows(audienceRows(simulator.dataset, job.audienceId, job.identifierType, generation));
      } else if (job.kind === 'profile') {
        good =
          gunzipSync(stored).toString() === serializeRows(profileRows(simulator.dataset, job.profileDbId, generation));
      } else {
        const text = gunzipSync(stored).toString();
        changeRows.push(...text.split('\n').filter(Boolean));
        const consumed = simulator.changeSetsConsumed(job.profileDbId);
        good = Array.from({ length: consumed }, (_, i) =>
          serializeRows(profileChangeRows(simulator.dataset, job.profileDbId, i + 1)),
        ).includes(text);
      }
      if (!good) {
        corrupted++;
        problems.push(`corrupted ${key}`);
      }
    }
    // Every change row landed at most once across files.
    if (new Set(changeRows).size !== changeRows.length) {
      problems.push('a change set landed twice');
    }
    const consumedSets = simulator.dataset.profileDbs.reduce(
      (total, db) => total + simulator.changeSetsConsumed(db.profileDbId),
      0,
    );
    const landedSets = dataKeys.filter((key) => key.startsWith('profile_changes/')).length;
    if (consumedSets > landedSets + lostReported.length) {
      const trail = simulator.requests
        .filter((r) => r.path.endsWith('/profile_changes') || r.file?.startsWith('profile_changes/'))
        .map((r) => `${r.kind === 'api' ? 'API' : r.file} ${r.status}`)
        .join(', ');
      problems.push(`${consumedSets - landedSets} change set(s) consumed but neither landed nor reported [${trail}]`);
      lost += consumedSets - landedSets - lostReported.length;
    }
    const orphanedUploads = proxy.openUploads().length;
    if (orphanedUploads > 0) problems.push(`${orphanedUploads} multipart upload(s) left open`);
    const leaks = output.flatMap((text, index) => findLeaks(text, `output ${index}`));
    if (leaks.length > 0) problems.push(`leaks: ${leaks.map((leak) => leak.what).join(', ')}`);
    const unexplained =
      failures.filter((failure) => !failure.reason.trim()).length +
      parkedReasons.filter((reason) => !reason?.trim()).length;
    if (unexplained > 0) problems.push(`${unexplained} unfinished job(s) without a reason`);
    if (duplicated > 0) problems.push(`${duplicated} unexpected object(s)`);
    return {
      seed,
      path: route,
      faults,
      expected: expected.size,
      landed: dataKeys.filter((key) => expected.has(key)).length,
      missingButReported,
      lost,
      reportedLost,
      duplicated: duplicated + (new Set(changeRows).size !== changeRows.length ? 1 : 0),
      corrupted,
      orphanedUploads,
      leaks: leaks.length,
      unexplained,
      rounds,
      problems,
    };
  } catch (error) {
    problems.push(`seed crashed: ${(error as Error).stack ?? String(error)}`);
    return {
      seed,
      path: route,
      faults,
      expected: 0,
      landed: 0,
      missingButReported: 0,
      lost: 0,
      reportedLost: 0,
      duplicated: 0,
      corrupted: 0,
      orphanedUploads: 0,
      leaks: 0,
      unexplained: 0,
      rounds: 0,
      problems,
    };
  } finally {
    await Promise.all([simulator.stop(), proxy.stop(), secrets.stop()]);
  }
}

/**
 * Make the claims of killed runs stale, as the passing of their lease would (the campaign does not wait minutes):
 * answers how many there were.
 */
async function ageAbandonedClaims(s3: S3Client, bucket: string): Promise<number> {
  let aged = 0;
  for (const key of await listAllKeys(s3, bucket, `${PREFIX}/_state/profile_changes/`)) {
    const record = JSON.parse((await objectBytes(s3, bucket, key)).toString()) as { state: string };
    if (record.state !== 'requesting' && record.state !== 'claimed') continue;
    const past = new Date(Date.now() - 60 * 60_000).toISOString();
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: JSON.stringify({ ...record, claimedAt: past, staleAfter: past }),
        ContentType: 'application/json',
      }),
    );
    aged++;
  }
  return aged;
}

function isReportedLoss(reason: string): boolean {
  return /change set lost|may have consumed/.test(reason);
}

/** A seed passes when every promise held. */
export function passed(result: SeedResult): boolean {
  return result.problems.length === 0;
}

async function runCliCaptured(args: string[], env: Record<string, string>, output: string[]) {
  const run = await runCli(args, env);
  output.push(run.stdout, run.stderr);
  return run;
}

function spawnNode(args: string[], env: Record<string, string>, output: string[]): ChildProcess {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.once('exit', () => output.push(text));
  return child;
}

/** The large hour is being written: a multipart upload under way, or its single PutObject streaming. */
function midCopy(proxy: S3RecordingProxy, large: { app: string; hour: number }): boolean {
  const key = dataKey({ kind: 'log_hour', appUuid: large.app, hour: large.hour });
  return (
    proxy.count('UploadPart') > 0 ||
    proxy.openUploads().length > 0 ||
    proxy.putsInFlight().some((path) => path.endsWith(`/${key}`))
  );
}

/**
 * Kill the process with SIGKILL (no cleanup possible) once `midCopy()` says it is in the middle of a copy (or `work`,
 * the killed process's own work when it runs in this one, ended). Its open multipart uploads are then made to look an
 * hour old, as they will be when a later run finds them: only then may a writer of the same key abort them (a younger
 * one could be a live concurrent writer's).
 */
async function killMidCopy(
  target: ChildProcess | LambdaContainer,
  work: Promise<unknown> | undefined,
  midCopy: () => boolean,
  proxy: S3RecordingProxy,
): Promise<void> {
  const done = work?.catch(() => undefined);
  let finished = false;
  void done?.then(() => {
    finished = true;
  });
  const alive = () => ('alive' in target ? target.alive : target.exitCode === null);
  // A child that is already gone emits no more 'exit' (a CLI run can finish before this starts on a loaded machine:
  // waiting for it hung a campaign process for 20 minutes).
  const exited =
    'alive' in target || target.exitCode !== null || target.signalCode !== null
      ? undefined
      : new Promise((resolve) => target.once('exit', resolve));
  const end = Date.now() + 30_000;
  while (Date.now() < end && alive() && !finished && !midCopy()) await sleep(20);
  target.kill('SIGKILL');
  await Promise.all([exited, done]);
  for (const upload of proxy.openUploads()) proxy.backdate(upload, 2 * HOUR_MS);
}

type Copier = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** Lambda's SQS event source in small, with duplicate deliveries and one short-deadline invocation on demand. */
async function drain(
  sqs: SQSClient,
  queues: { queueUrl: string; queueArn: string },
  copier: Copier,
  options: { duplicates: boolean; deadline: boolean; random: () => number },
): Promise<void> {
  const end = Date.now() + 60_000;
  let shortDeadline = options.deadline;
  while (Date.now() < end) {
    const messages = await receiveAll(sqs, queues.queueUrl, 5);
    if (messages.length === 0) {
      const depth = await queueDepth(sqs, queues.queueUrl);
      if (depth.visible === 0 && depth.inFlight === 0 && depth.delayed === 0) return;
      await sleep(150);
      continue;
    }
    const event = toSqsEvent(messages, queues.queueArn);
    const context = lambdaContext(shortDeadline ? 30_300 : 300_000);
    shortDeadline = false;
    const response = await copier(event, context);
    if (options.duplicates && options.random() < 0.5) {
      // At-least-once delivery: the same batch again (its deletion was lost, or SQS delivered it twice).
      await copier(event, lambdaContext());
    }
    const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
    for (const message of messages) {
      if (failed.has(message.MessageId as string)) continue;
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: queues.queueUrl, ReceiptHandle: message.ReceiptHandle as string }),
      );
    }
  }
}

async function drainDeadLetters(sqs: SQSClient, dlqUrl: string) {
  const parked: { body: string; reason: string | undefined }[] = [];
  for (;;) {
    const messages = await receiveAll(sqs, dlqUrl, 10);
    if (messages.length === 0) return parked;
    for (const message of messages) {
      parked.push({ body: message.Body ?? '', reason: message.MessageAttributes?.failureReason?.StringValue });
    }
  }
}

async function objectBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const chunks: Buffer[] = [];
  for await (const chunk of response.Body as Readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha256(buffer: Buffer): string {
  return createHash('sha256').update(buffer).digest('hex');
}

async function streamSha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Wait until the next hour starts when it is less than `marginMs` away. */
async function awayFromHourBoundary(marginMs: number): Promise<void> {
  const untilNextHour = floorHour(Date.now()) + HOUR_MS - Date.now();
  if (untilNextHour < marginMs) await sleep(untilNextHour + 1_000);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
