import { appendFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { writeAppList } from '../app-list.js';
import { S3RVER_CHECKSUMS, S3RVER_CREDENTIALS } from '../s3.js';
import { S3RecordingProxy } from '../s3-proxy.js';
import { AwsActionRecorder, type AwsService, type RecordedAction } from './action-recorder.js';
import { type PhysicalResources, resolveCfn, TEST_ACCOUNT, TEST_REGION } from './cfn.js';
import { type AwsAction, isAllowed, type PolicyStatement } from './iam.js';
import { LambdaContainer } from './lambda-container.js';
import { E2E_BUCKET_PLACEHOLDER, type FunctionName, type SynthesizedDeployment } from './synth.js';

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
  readonly queues: { readonly queueUrl: string; readonly dlqUrl: string; readonly queueArn: string };
  readonly budgetTable: string;
  readonly ledgerTable: string;
  /** Set on both functions over the template's environment: settings the template leaves to their defaults. */
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

interface FunctionUnderTest {
  readonly environment: Record<string, string>;
  readonly statements: readonly PolicyStatement[];
  readonly recorders: Readonly<Record<AwsService, AwsActionRecorder>>;
  readonly containers: LambdaContainer[];
  warm?: LambdaContainer;
}

/**
 * The synthesized deployment, run locally: each function's bundled asset on Node.js 22 in its own "containers"
 * (processes), with the environment of the template (resources mapped to the emulators', endpoints overridden), and
 * every AWS call recorded at a proxy so that it can be checked against the function's synthesized IAM policy.
 */
export class TestDeployment {
  /** In front of s3rver: tracks multipart uploads (none may be left open) and answers what s3rver lacks. */
  readonly s3Proxy: S3RecordingProxy;
  /** SQS as Lambda's event source mapping uses it: with the copier's role, hence through the copier's recorder. */
  readonly eventSource: SQSClient;
  private readonly functions: Record<FunctionName, FunctionUnderTest>;

  private constructor(
    private readonly options: TestDeploymentOptions,
    s3Proxy: S3RecordingProxy,
    functions: Record<FunctionName, FunctionUnderTest>,
    private readonly appListDir: string | undefined,
  ) {
    this.s3Proxy = s3Proxy;
    this.functions = functions;
    this.eventSource = new SQSClient({
      endpoint: functions.copier.recorders.sqs.url,
      region: TEST_REGION,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      useQueueUrlAsEndpoint: false,
    });
  }

  static async start(options: TestDeploymentOptions): Promise<TestDeployment> {
    const s3Proxy = options.s3Proxy ?? new S3RecordingProxy(options.endpoints.s3);
    if (!options.s3Proxy) await s3Proxy.start();
    const { synth, queues } = options;
    const dlqArn = `${queues.queueArn}-dlq`;
    const tableArn = (name: string) => `arn:aws:dynamodb:${TEST_REGION}:${TEST_ACCOUNT}:table/${name}`;
    const physical: PhysicalResources = {
      refs: {
        [synth.logicalIds.queue]: queues.queueUrl,
        [synth.logicalIds.deadLetterQueue]: queues.dlqUrl,
        [synth.logicalIds.budgetTable]: options.budgetTable,
        [synth.logicalIds.ledgerTable]: options.ledgerTable,
      },
      attributes: {
        [synth.logicalIds.queue]: { Arn: queues.queueArn },
        [synth.logicalIds.deadLetterQueue]: { Arn: dlqArn },
        [synth.logicalIds.budgetTable]: { Arn: tableArn(options.budgetTable) },
        [synth.logicalIds.ledgerTable]: { Arn: tableArn(options.ledgerTable) },
      },
    };
    // The template imports a placeholder bucket by name: each test's bucket takes its place, in ARNs too.
    const resolve = <T>(value: unknown): T =>
      JSON.parse(JSON.stringify(resolveCfn(value, physical)).replaceAll(E2E_BUCKET_PLACEHOLDER, options.bucket)) as T;
    const naming = {
      queueArns: { [queueName(queues.queueUrl)]: queues.queueArn, [queueName(queues.dlqUrl)]: dlqArn },
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
    return new TestDeployment(options, s3Proxy, { planner, copier: await setUp('copier') }, appListDir);
  }

  /** The environment a function's containers get. */
  environment(name: FunctionName): Readonly<Record<string, string>> {
    return this.functions[name].environment;
  }

  /** A new execution environment of `name` (a cold start). */
  async startContainer(name: FunctionName, environment: Record<string, string> = {}): Promise<LambdaContainer> {
    const fn = this.options.synth.functions[name];
    const container = await LambdaContainer.start({
      handlerFile: fn.handlerFile,
      exportName: fn.exportName,
      functionName: name,
      env: { ...this.functions[name].environment, ...environment },
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

  /** Every AWS call a function's containers made, as IAM actions. */
  actions(name: FunctionName): readonly RecordedAction[] {
    return SERVICES.flatMap((service) => this.functions[name].recorders[service].actions);
  }

  /** Whether `name`'s synthesized policy allows `action`. */
  allows(name: FunctionName, action: AwsAction): boolean {
    return isAllowed(this.functions[name].statements, action);
  }

  /** The calls a function made that its synthesized policy does not allow: `function: action resource`. */
  deniedActions(): string[] {
    const denied: string[] = [];
    for (const name of ['planner', 'copier'] as const) {
      const { statements } = this.functions[name];
      for (const action of this.actions(name)) {
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
    this.eventSource.destroy();
    await Promise.all([
      this.appListDir ? rm(this.appListDir, { recursive: true, force: true }) : undefined,
      this.options.s3Proxy ? undefined : this.s3Proxy.stop(),
      ...all.flatMap((fn) => Object.values(fn.recorders).map((recorder) => recorder.stop())),
    ]);
  }
}

function queueName(url: string): string {
  return url.split('/').at(-1) as string;
}
