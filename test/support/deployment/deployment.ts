import { appendFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { writeAppList } from '../app-list.js';
import { arm64NodeCommand } from '../arm64.js';
import { S3RVER_CHECKSUMS, S3RVER_CREDENTIALS } from '../s3.js';
import { S3RecordingProxy } from '../s3-proxy.js';
import { createJobQueues } from '../sqs.js';
import { AwsActionRecorder, type AwsService, type RecordedAction } from './action-recorder.js';
import { type PhysicalResources, resolveCfn, TEST_ACCOUNT, TEST_REGION } from './cfn.js';
import { type AwsAction, isAllowed, type PolicyStatement } from './iam.js';
import { type KeyArns, keyUsesOf } from './kms.js';
import { LambdaContainer, privateTmpUnavailable } from './lambda-container.js';
import { E2E_BUCKET_KEY_ARN, E2E_BUCKET_PLACEHOLDER, type FunctionName, type SynthesizedDeployment } from './synth.js';

type Queues = { readonly queueUrl: string; readonly dlqUrl: string; readonly queueArn: string };

export interface TestDeploymentOptions {
  readonly synth: SynthesizedDeployment;
  readonly endpoints: {
    readonly s3: string;
    readonly sqs: string;
    readonly dynamoDb: string;
    readonly secretsManager: string;
  };
  /** The Localytics API (the simulator). */
  readonly apiUrl: string;
  /** The emulator resources that stand for the stack's. */
  readonly bucket: string;
  readonly queues: Queues;
  /** The Parquet converter's queue and dead-letter queue. @default new ones */
  readonly convertQueues?: Queues;
  readonly budgetTable: string;
  readonly ledgerTable: string;
  /** Set on every function over the template's environment: settings the template leaves to their defaults. */
  readonly environment?: Readonly<Record<string, string>>;
  /** An S3 proxy of the test's own (with failures to inject) to use instead of a new one in front of `s3`. */
  readonly s3Proxy?: S3RecordingProxy;
  /**
   * Apps the planner plans instead of those bundled with it: a list file like the bundled one, named by APPS_FILE.
   * @default the bundled list
   */
  readonly apps?: readonly string[];
}

const SERVICES: readonly AwsService[] = ['s3', 'sqs', 'dynamodb', 'secretsmanager'];
const FUNCTIONS: readonly FunctionName[] = ['planner', 'copier', 'converter'];

interface FunctionUnderTest {
  readonly environment: Record<string, string>;
  readonly statements: readonly PolicyStatement[];
  readonly recorders: Readonly<Record<AwsService, AwsActionRecorder>>;
  readonly containers: LambdaContainer[];
  warm?: LambdaContainer;
  /** SQS as Lambda's event source mapping uses it for this function: with its role, through its recorder. */
  eventSource?: SQSClient;
}

let sharedTmpWarned = false;

/**
 * The synthesized deployment, run locally: each function's bundled asset on Node.js 22 in its own "containers"
 * (processes, each with a private /tmp where the machine allows it), with the environment of the template (resources
 * mapped to the emulators', endpoints overridden), and every AWS call recorded at a proxy so that it can be checked
 * against the function's synthesized IAM policy. The planner and the copier (JavaScript only) run on this machine's
 * Node.js; the converter, whose layer is DuckDB's linux-arm64 native code, runs on arm64 Node.js under qemu.
 */
export class TestDeployment {
  /** In front of s3rver: tracks multipart uploads (none may be left open) and answers what s3rver lacks. */
  readonly s3Proxy: S3RecordingProxy;
  /** The queues standing for the converter's. */
  readonly convertQueues: Queues;
  private readonly functions: Record<FunctionName, FunctionUnderTest>;
  /** The converter's scratch folders where containers have no /tmp of their own. */
  private readonly scratchDirs: string[] = [];

  private constructor(
    private readonly options: TestDeploymentOptions,
    s3Proxy: S3RecordingProxy,
    convertQueues: Queues,
    functions: Record<FunctionName, FunctionUnderTest>,
    private readonly appListDir: string | undefined,
  ) {
    this.s3Proxy = s3Proxy;
    this.convertQueues = convertQueues;
    this.functions = functions;
  }

  /** SQS as Lambda's event source mapping uses it for the copier: with the copier's role. */
  get eventSource(): SQSClient {
    return this.eventSourceOf('copier');
  }

  /** SQS as Lambda's event source mapping uses it for `name`: with its role, hence through its recorder. */
  eventSourceOf(name: FunctionName): SQSClient {
    const fn = this.functions[name];
    fn.eventSource ??= new SQSClient({
      endpoint: fn.recorders.sqs.url,
      region: TEST_REGION,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      useQueueUrlAsEndpoint: false,
    });
    return fn.eventSource;
  }

  static async start(options: TestDeploymentOptions): Promise<TestDeployment> {
    const s3Proxy = options.s3Proxy ?? new S3RecordingProxy(options.endpoints.s3);
    if (!options.s3Proxy) await s3Proxy.start();
    const { synth, queues } = options;
    const convertQueues = options.convertQueues ?? (await newQueues(options.endpoints.sqs));
    const dlqArn = `${queues.queueArn}-dlq`;
    const convertDlqArn = `${convertQueues.queueArn}-dlq`;
    const tableArn = (name: string) => `arn:aws:dynamodb:${TEST_REGION}:${TEST_ACCOUNT}:table/${name}`;
    const { logicalIds } = synth;
    const budget = logicalIds.budgetTable;
    const physical: PhysicalResources = {
      refs: {
        [logicalIds.queue]: queues.queueUrl,
        [logicalIds.deadLetterQueue]: queues.dlqUrl,
        [logicalIds.convertQueue]: convertQueues.queueUrl,
        [logicalIds.convertDeadLetterQueue]: convertQueues.dlqUrl,
        ...(budget ? { [budget]: options.budgetTable } : {}),
        [logicalIds.ledgerTable]: options.ledgerTable,
      },
      attributes: {
        [logicalIds.queue]: { Arn: queues.queueArn },
        [logicalIds.deadLetterQueue]: { Arn: dlqArn },
        [logicalIds.convertQueue]: { Arn: convertQueues.queueArn },
        [logicalIds.convertDeadLetterQueue]: { Arn: convertDlqArn },
        ...(budget ? { [budget]: { Arn: tableArn(options.budgetTable) } } : {}),
        [logicalIds.ledgerTable]: { Arn: tableArn(options.ledgerTable) },
      },
    };
    // The template imports a placeholder bucket by name: each test's bucket takes its place, in ARNs too.
    const resolve = <T>(value: unknown): T =>
      JSON.parse(JSON.stringify(resolveCfn(value, physical)).replaceAll(E2E_BUCKET_PLACEHOLDER, options.bucket)) as T;
    const naming = {
      queueArns: {
        [queueName(queues.queueUrl)]: queues.queueArn,
        [queueName(queues.dlqUrl)]: dlqArn,
        [queueName(convertQueues.queueUrl)]: convertQueues.queueArn,
        [queueName(convertQueues.dlqUrl)]: convertDlqArn,
      },
    };
    const targets: Record<AwsService, string> = {
      s3: s3Proxy.url,
      sqs: options.endpoints.sqs,
      dynamodb: options.endpoints.dynamoDb,
      secretsmanager: options.endpoints.secretsManager,
    };
    const setUp = async (name: FunctionName): Promise<FunctionUnderTest> => {
      const fn = synth.functions[name];
      const recorders = Object.fromEntries(
        SERVICES.map((service) => [service, new AwsActionRecorder(service, targets[service], naming)]),
      ) as Record<AwsService, AwsActionRecorder>;
      await Promise.all(Object.values(recorders).map((recorder) => recorder.start()));
      return {
        recorders,
        containers: [],
        statements: resolve<PolicyStatement[]>(fn.statements),
        environment: {
          ...resolve<Record<string, string>>(fn.environment),
          API_URL: options.apiUrl,
          ...options.environment,
          // What Lambda sets, and the standard SDK environment pointed at the recorders in front of the emulators.
          // Lambda puts the layers' node_modules on the module search path (they are mounted at /opt).
          ...(fn.layerDirs.length > 0
            ? { NODE_PATH: fn.layerDirs.map((dir) => path.join(dir, 'nodejs', 'node_modules')).join(':') }
            : {}),
          AWS_LAMBDA_FUNCTION_NAME: name,
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
          AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
          AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
          LAMBDA_TASK_ROOT: path.dirname(fn.handlerFile),
          AWS_REGION: TEST_REGION,
          AWS_DEFAULT_REGION: TEST_REGION,
          AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
          // s3rver stores aws-chunked framing of a streamed PUT as data: checksums only where required.
          AWS_REQUEST_CHECKSUM_CALCULATION: S3RVER_CHECKSUMS,
          AWS_ENDPOINT_URL_S3: recorders.s3.url,
          AWS_ENDPOINT_URL_SQS: recorders.sqs.url,
          AWS_ENDPOINT_URL_DYNAMODB: recorders.dynamodb.url,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: recorders.secretsmanager.url,
          TZ: ':UTC',
          LANG: 'en_US.UTF-8',
          PATH: '/usr/local/bin:/usr/bin:/bin',
        },
      };
    };
    const planner = await setUp('planner');
    let appListDir: string | undefined;
    if (options.apps) {
      appListDir = await mkdtemp(path.join(os.tmpdir(), 'lsync-apps-'));
      planner.environment.APPS_FILE = await writeAppList(appListDir, options.apps);
    }
    const functions = { planner, copier: await setUp('copier'), converter: await setUp('converter') };
    return new TestDeployment(options, s3Proxy, convertQueues, functions, appListDir);
  }

  /** The environment a function's containers get. */
  environment(name: FunctionName): Readonly<Record<string, string>> {
    return this.functions[name].environment;
  }

  /**
   * A new execution environment of `name` (a cold start), with a /tmp of its own. Where the machine cannot give it
   * one (not root, not Linux), containers share the machine's and the converter's scratch moves to a folder of each
   * container's; CI fails instead.
   */
  async startContainer(name: FunctionName, environment: Record<string, string> = {}): Promise<LambdaContainer> {
    const fn = this.options.synth.functions[name];
    const noPrivateTmp = privateTmpUnavailable();
    if (noPrivateTmp && process.env.CI)
      throw new Error(`CI must give Lambda containers a private /tmp: ${noPrivateTmp}`);
    if (noPrivateTmp && !sharedTmpWarned) {
      sharedTmpWarned = true;
      console.warn(`Lambda containers share this machine's /tmp (${noPrivateTmp}); run as root for a private one`);
    }
    const scratch: Record<string, string> = {};
    if (noPrivateTmp) {
      scratch.SCRATCH_DIR = await mkdtemp(path.join(os.tmpdir(), `lsync-${name}-tmp-`));
      this.scratchDirs.push(scratch.SCRATCH_DIR);
    }
    const container = await LambdaContainer.start({
      handlerFile: fn.handlerFile,
      exportName: fn.exportName,
      functionName: name,
      // Native code in a layer runs only on the architecture it was built for.
      node: fn.layerDirs.length > 0 && fn.architecture === 'arm64' ? arm64NodeCommand() : undefined,
      layerDirs: fn.layerDirs,
      // The planner's app list of this test (APPS_FILE), outside its bundle.
      readDirs: name === 'planner' && this.appListDir ? [this.appListDir] : [],
      privateTmpMiB: noPrivateTmp ? undefined : fn.ephemeralStorageMiB,
      env: { ...this.functions[name].environment, ...scratch, ...environment },
    });
    this.functions[name].containers.push(container);
    return container;
  }

  /** Start the container `invoke` will use, ahead of the first invocation (a cold start done beforehand). */
  async warmUp(name: FunctionName): Promise<void> {
    const fn = this.functions[name];
    if (!fn.warm?.alive) fn.warm = await this.startContainer(name);
  }

  /** Invoke `name` in its warm container (a new one when there is none or it was killed), as Lambda does. */
  async invoke<T>(name: FunctionName, event: unknown, remainingMs?: number): Promise<T> {
    await this.warmUp(name);
    return (this.functions[name].warm as LambdaContainer).invoke<T>(
      event,
      remainingMs ?? this.options.synth.functions[name].timeoutSeconds * 1000,
    );
  }

  /** The planner as the scheduler invokes it. */
  planner = <T = Record<string, unknown>>(event: unknown, remainingMs?: number): Promise<T> =>
    this.invoke<T>('planner', event, remainingMs);

  /** The copier as the SQS event source invokes it (same shape as the handler, for the SQS helpers). */
  copier = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    this.invoke<SQSBatchResponse>('copier', event, context.getRemainingTimeInMillis());

  /** The Parquet converter as its SQS event source invokes it. */
  converter = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    this.invoke<SQSBatchResponse>('converter', event, context.getRemainingTimeInMillis());

  /** Every AWS call a function's containers made, as IAM actions. */
  actions(name: FunctionName): readonly RecordedAction[] {
    return SERVICES.flatMap((service) => this.functions[name].recorders[service].actions);
  }

  /** Whether `name`'s synthesized policy allows `action`. */
  allows(name: FunctionName, action: AwsAction): boolean {
    return isAllowed(this.functions[name].statements, action);
  }

  /**
   * What each call of `name` makes S3 or DynamoDB do with customer-managed keys on its behalf: the bucket's key (and
   * a budget table's, given its ARN) as `kms:` actions on the key ARN with their `kms:ViaService`.
   */
  keyUses(name: FunctionName, keys: Partial<KeyArns> = { bucket: E2E_BUCKET_KEY_ARN }): AwsAction[] {
    const tableArn = (table: string) => `arn:aws:dynamodb:${TEST_REGION}:${TEST_ACCOUNT}:table/${table}`;
    return this.actions(name).flatMap((action) =>
      keyUsesOf(
        action,
        { bucketArn: `arn:aws:s3:::${this.options.bucket}`, budgetTableArn: tableArn(this.options.budgetTable) },
        keys,
      ),
    );
  }

  /**
   * The calls a function made that its synthesized policy does not allow, including what S3 does with the bucket's
   * key on the call's behalf: `function: action resource`.
   */
  deniedActions(): string[] {
    const denied: string[] = [];
    for (const name of FUNCTIONS) {
      const { statements } = this.functions[name];
      for (const action of [...this.actions(name), ...this.keyUses(name)]) {
        if (!isAllowed(statements, action)) denied.push(`${name}: ${action.action} ${action.resource}`);
      }
    }
    return [...new Set(denied)];
  }

  /** `process.version` of every container started so far. */
  runtimeVersions(): string[] {
    return [
      ...new Set(Object.values(this.functions).flatMap((fn) => fn.containers.map((container) => container.node))),
    ];
  }

  /** `process.arch` of the containers of `name` started so far. */
  architectures(name: FunctionName): string[] {
    return [...new Set(this.functions[name].containers.map((container) => container.arch))];
  }

  /** Everything the function's containers printed (JSON logs, EMF metrics). */
  output(name: FunctionName): string {
    return this.functions[name].containers.map((container) => container.output).join('');
  }

  async stop(): Promise<void> {
    const all = Object.values(this.functions);
    await Promise.all(all.flatMap((fn) => fn.containers.map((container) => container.stop())));
    // The suite scans all output for leaked secrets: the containers' output too.
    const capture = process.env.LSYNC_OUTPUT_CAPTURE;
    if (capture) {
      for (const [name, fn] of Object.entries(this.functions)) {
        const text = fn.containers.map((container) => container.output).join('');
        if (text) appendFileSync(path.join(capture, `lambda-${name}-${process.pid}.log`), text);
      }
    }
    for (const fn of all) fn.eventSource?.destroy();
    await Promise.all(this.scratchDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    await Promise.all([
      this.appListDir ? rm(this.appListDir, { recursive: true, force: true }) : undefined,
      this.options.s3Proxy ? undefined : this.s3Proxy.stop(),
      ...all.flatMap((fn) => Object.values(fn.recorders).map((recorder) => recorder.stop())),
    ]);
  }
}

/** Queues for a function whose queues the test did not create (conversions nobody runs wait there). */
async function newQueues(endpoint: string): Promise<Queues> {
  const sqs = new SQSClient({
    endpoint,
    region: TEST_REGION,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    useQueueUrlAsEndpoint: false,
  });
  try {
    return await createJobQueues(sqs, { visibilitySeconds: 600 });
  } finally {
    sqs.destroy();
  }
}

function queueName(url: string): string {
  return url.split('/').at(-1) as string;
}
