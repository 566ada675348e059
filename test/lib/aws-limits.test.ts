import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DynamoDbRequestBudget } from '../../functions/adapters/dynamodb-request-budget.js';
import { SqsConversionQueue, SqsJobQueue } from '../../functions/adapters/sqs-queue.js';
import { newConversionMessage } from '../../functions/core/conversion-job.js';
import { type JobMessage, newJobMessage, serializeJobMessage } from '../../functions/core/job-message.js';
import { dataKey, type SyncJob } from '../../functions/core/jobs.js';
import { readStackConfig } from '../../lib/config.js';
import { LocalyticsExportSyncStack } from '../../lib/localytics-export-sync-stack.js';
import { assetDirectories, testApp } from '../support/cdk.js';
import { LONGEST_PSEUDO, longestResolver, type Template } from '../support/longest-values.js';
import { syntheticApps } from '../support/synthetic-apps.js';

/**
 * AWS's hard limits, which no emulator enforces, checked on the stack as synthesized with 1 to 5,000 apps. Every
 * CloudFormation token is counted at the longest value it can take on AWS (test/support/longest-values.ts).
 */
const LIMITS = {
  /** Lambda: all environment variables of a function, as Lambda measures them (their JSON). */
  environmentBytes: 4 * 1024,
  resources: 500,
  outputs: 200,
  parameters: 200,
  /** CloudFormation template body (from S3), as `cdk deploy` uploads it (the file CDK writes). */
  templateBytes: 1_000_000,
  /** IAM: all inline policies of a role, without whitespace. */
  rolePolicyCharacters: 10_240,
  /** Lambda: function code and its layers, unzipped. */
  codeBytes: 250 * 1024 * 1024,
  layers: 5,
  /** Lambda asynchronous invocation payload (EventBridge Scheduler, the deployment trigger). */
  asyncPayloadBytes: 256 * 1024,
  /** Glue: a table parameter's value (the partition projection's enum of app IDs). */
  glueParameterCharacters: 512_000,
  /** SQS: a message (body and attributes), and a SendMessageBatch's messages together. */
  sqsMessageBytes: 256 * 1024,
  /** DynamoDB: an item. */
  dynamoDbItemBytes: 400 * 1024,
};

const APP_COUNTS = [1, 60, 1000, 5000];

const LONGEST_ARN_PREFIX = `arn:${LONGEST_PSEUDO['AWS::Partition']}`;
const REGION_AND_ACCOUNT = `${LONGEST_PSEUDO['AWS::Region']}:${LONGEST_PSEUDO['AWS::AccountId']}`;

/**
 * Two configurations: the defaults (every resource created: bucket, budget table; alarms by e-mail), and every
 * option that lengthens the environment or the policies at its longest (an imported 63-character bucket with its
 * KMS key, a secret ARN with a 512-character name, a shared budget table by ARN with a 255-character name, a long
 * key prefix).
 */
const CONFIGURATIONS: Record<string, Record<string, unknown>> = {
  defaults: { secretName: 'localytics-export-sync/api-credentials', alarmEmail: 'alarms@example.com' },
  'longest options': {
    secretName: `${LONGEST_ARN_PREFIX}:secretsmanager:${REGION_AND_ACCOUNT}:secret:${'s'.repeat(512)}-AbCdEf`,
    bucketName: 'b'.repeat(63),
    bucketKmsKeyArn: `${LONGEST_ARN_PREFIX}:kms:${REGION_AND_ACCOUNT}:key/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`,
    budgetTable: `${LONGEST_ARN_PREFIX}:dynamodb:${REGION_AND_ACCOUNT}:table/${'t'.repeat(255)}`,
    keyPrefix: 'k'.repeat(256),
    alarmEmail: `${'a'.repeat(64)}@${'e'.repeat(180)}.example`,
  },
};

interface Synthesized {
  readonly template: Template & { Resources: Record<string, Resource> };
  readonly templateBytes: number;
  readonly outdir: string;
}

type Resource = { Type: string; Properties: Record<string, unknown> };

function synthesize(apps: number, context: Record<string, unknown>, options: { bundle: boolean }): Synthesized {
  const app = testApp({
    context: {
      ...context,
      apps: syntheticApps(apps),
      // CDK's own resource count check throws at 500: this test counts (and reports) them itself.
      '@aws-cdk/core:stackResourceLimit': 0,
      // Bundling takes seconds per function and changes no template size: only the code size check needs it.
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
    },
  });
  new LocalyticsExportSyncStack(app, 'Limits', { config: readStackConfig(app.node) });
  const assembly = app.synth();
  const file = path.join(assembly.directory, assembly.getStackByName('Limits').templateFile);
  return {
    template: JSON.parse(readFileSync(file, 'utf8')),
    templateBytes: statSync(file).size,
    outdir: assembly.directory,
  };
}

const ofType = (template: Synthesized['template'], type: string) =>
  Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);

/** What each function's environment takes, as Lambda measures it: the JSON of the variables. */
function environmentSizes(synth: Synthesized): Record<string, number> {
  const resolve = longestResolver(synth.template);
  return Object.fromEntries(
    ofType(synth.template, 'AWS::Lambda::Function').map(([id, fn]) => {
      const variables = (fn.Properties.Environment as { Variables?: unknown } | undefined)?.Variables ?? {};
      return [id, Buffer.byteLength(JSON.stringify(resolve(variables)))];
    }),
  );
}

/** Characters of each role's inline policies (its own and the AWS::IAM::Policy resources attached), as IAM counts. */
function rolePolicySizes(synth: Synthesized): Record<string, number> {
  const resolve = longestResolver(synth.template);
  const size = (document: unknown) => JSON.stringify(resolve(document)).length;
  return Object.fromEntries(
    ofType(synth.template, 'AWS::IAM::Role').map(([roleId, role]) => {
      const own = ((role.Properties.Policies ?? []) as { PolicyDocument: unknown }[]).map((policy) =>
        size(policy.PolicyDocument),
      );
      const attached = ofType(synth.template, 'AWS::IAM::Policy')
        .filter(([, policy]) => (policy.Properties.Roles as { Ref?: string }[]).some((ref) => ref.Ref === roleId))
        .map(([, policy]) => size(policy.Properties.PolicyDocument));
      return [roleId, [...own, ...attached].reduce((sum, n) => sum + n, 0)];
    }),
  );
}

/** The payload of each asynchronous invocation the stack sets up. */
function asyncPayloads(synth: Synthesized): Record<string, string> {
  const payloads: Record<string, string> = {};
  for (const [id, schedule] of ofType(synth.template, 'AWS::Scheduler::Schedule')) {
    payloads[id] = String((schedule.Properties.Target as { Input?: string }).Input ?? '');
  }
  for (const [id, trigger] of ofType(synth.template, 'Custom::Trigger')) {
    // CDK's trigger provider invokes the handler with FunctionName and InvocationType only: no payload. Any other
    // property would be a payload this check has to size.
    expect(Object.keys(trigger.Properties).sort()).toEqual([
      'ExecuteOnHandlerChange',
      'HandlerArn',
      'InvocationType',
      'ServiceToken',
      'Timeout',
    ]);
    payloads[id] = '';
  }
  return payloads;
}

/** The longest value of any Glue table parameter (the `app_uuid` projection's enum holds every app ID). */
function longestGlueParameter(synth: Synthesized): number {
  const resolve = longestResolver(synth.template);
  return Math.max(
    ...ofType(synth.template, 'AWS::Glue::Table').flatMap(([, table]) =>
      Object.values(
        resolve((table.Properties.TableInput as { Parameters?: unknown }).Parameters ?? {}) as Record<string, string>,
      ).map((value) => String(value).length),
    ),
  );
}

const max = (sizes: Record<string, number>) => Math.max(...Object.values(sizes));
const figures: string[] = [];

for (const [configuration, context] of Object.entries(CONFIGURATIONS)) {
  describe.each(APP_COUNTS)(`${configuration}, %i apps`, (apps) => {
    let synth: Synthesized;
    beforeAll(() => {
      synth = synthesize(apps, context, { bundle: false });
      const template = synth.template;
      figures.push(
        `${configuration}, ${apps} apps: ${Object.keys(template.Resources).length} resources, ` +
          `${Object.keys(template.Outputs ?? {}).length} outputs, ${Object.keys(template.Parameters ?? {}).length} parameters, ` +
          `template ${synth.templateBytes} B, largest environment ${max(environmentSizes(synth))} B, ` +
          `${ofType(template, 'AWS::CloudWatch::Alarm').length} alarms, ` +
          `largest role policies ${max(rolePolicySizes(synth))} characters, longest Glue parameter ${longestGlueParameter(synth)}, ` +
          `largest async payload ${Math.max(...Object.values(asyncPayloads(synth)).map((payload) => Buffer.byteLength(payload)))} B`,
      );
    }, 120_000);

    test('each function’s environment is at most 4 KB', () => {
      const sizes = environmentSizes(synth);
      expect(Object.keys(sizes).length).toBeGreaterThanOrEqual(3);
      expect(over(sizes, LIMITS.environmentBytes)).toEqual({});
    });

    test('at most 500 resources, 200 outputs and 200 parameters', () => {
      expect(Object.keys(synth.template.Resources).length).toBeLessThanOrEqual(LIMITS.resources);
      expect(Object.keys(synth.template.Outputs ?? {}).length).toBeLessThanOrEqual(LIMITS.outputs);
      expect(Object.keys(synth.template.Parameters ?? {}).length).toBeLessThanOrEqual(LIMITS.parameters);
    });

    test('the template is at most 1 MB', () => {
      expect(synth.templateBytes).toBeLessThanOrEqual(LIMITS.templateBytes);
    });

    test('each role’s inline policies total at most 10,240 characters', () => {
      const sizes = rolePolicySizes(synth);
      expect(Object.keys(sizes).length).toBeGreaterThanOrEqual(4);
      expect(over(sizes, LIMITS.rolePolicyCharacters)).toEqual({});
    });

    test('each asynchronous invocation payload (the schedules, the deployment trigger) is at most 256 KB', () => {
      const payloads = asyncPayloads(synth);
      expect(Object.keys(payloads)).toHaveLength(4);
      for (const payload of Object.values(payloads)) {
        expect(Buffer.byteLength(payload)).toBeLessThanOrEqual(LIMITS.asyncPayloadBytes);
      }
    });

    test('every Glue table parameter (the app_uuid projection of every app) is at most 512,000 characters', () => {
      expect(longestGlueParameter(synth)).toBeLessThanOrEqual(LIMITS.glueParameterCharacters);
    });
  });
}

describe('the code of each function, at 5,000 apps', () => {
  let synth: Synthesized;
  beforeAll(() => {
    synth = synthesize(5000, CONFIGURATIONS.defaults as Record<string, unknown>, { bundle: true });
  }, 180_000);

  test('code and layers take at most 250 MB unzipped, with at most 5 layers', () => {
    const sources = assetDirectories(synth.outdir, 'Limits');
    const assetDir = (code: { S3Key?: string }) => {
      const source = sources.get(String(code.S3Key));
      if (!source) throw new Error(`no asset uploads to ${code.S3Key}`);
      return source;
    };
    const functions = ofType(synth.template, 'AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThanOrEqual(3);
    const layerCounts: Record<string, number> = {};
    const codeBytes: Record<string, number> = {};
    for (const [id, fn] of functions) {
      const layers = ((fn.Properties.Layers ?? []) as { Ref: string }[]).map(
        (layer) => synth.template.Resources[layer.Ref] as Resource,
      );
      layerCounts[id] = layers.length;
      codeBytes[id] = [
        assetDir(fn.Properties.Code as { S3Key?: string }),
        ...layers.map((layer) => assetDir(layer.Properties.Content as { S3Key?: string })),
      ].reduce((sum, dir) => sum + directoryBytes(dir), 0);
      figures.push(
        `${id}: code and layers ${(codeBytes[id] / 1024 / 1024).toFixed(1)} MiB unzipped, ${layers.length} layer(s)`,
      );
    }
    expect(over(layerCounts, LIMITS.layers)).toEqual({});
    expect(over(codeBytes, LIMITS.codeBytes)).toEqual({});
    // The converter's DuckDB layer: the largest function by far.
    expect(max(codeBytes)).toBeGreaterThan(10 * 1024 * 1024);
  });
});

/** The longest value each job field may hold (the message schema's bounds). */
const LONGEST_APP = `${'f'.repeat(40)}-${'f'.repeat(40)}-${'f'.repeat(18)}`;
const LONGEST_ID = '9'.repeat(18);
const LARGEST_INT = Number.MAX_SAFE_INTEGER;
/** The latest time a Date can hold: its ISO form is the longest `plannedAt`. */
const LATEST_TIME = 8.64e15;
/** Keys need a real date: the last hour of year 9999. */
const LAST_HOUR = Date.UTC(9999, 11, 31, 23);

const longestJobs: SyncJob[] = [
  { kind: 'log_hour', appUuid: LONGEST_APP, hour: LARGEST_INT - (LARGEST_INT % 3_600_000) },
  {
    kind: 'audience',
    audienceId: LONGEST_ID,
    identifierType: 'customer_id',
    generatedAt: LARGEST_INT,
    resultsCount: LARGEST_INT,
  },
  { kind: 'profile', profileDbId: LONGEST_ID, generatedAt: LARGEST_INT, resultsCount: LARGEST_INT },
  { kind: 'profile_changes', profileDbId: LONGEST_ID, generatedAt: LARGEST_INT, resultsCount: LARGEST_INT },
];
const keyedJobs: SyncJob[] = [
  { kind: 'log_hour', appUuid: LONGEST_APP, hour: LAST_HOUR },
  { kind: 'audience', audienceId: LONGEST_ID, identifierType: 'customer_id', generatedAt: LAST_HOUR },
  { kind: 'profile', profileDbId: LONGEST_ID, generatedAt: LAST_HOUR },
  { kind: 'profile_changes', profileDbId: LONGEST_ID, generatedAt: LAST_HOUR },
];

type SentMessage = {
  MessageBody?: string;
  MessageAttributes?: Record<string, { DataType?: string; StringValue?: string }>;
};

/** SQS's size of a message: its body and each attribute's name, type and value (UTF-8). */
function sqsMessageBytes(message: SentMessage): number {
  let bytes = Buffer.byteLength(message.MessageBody ?? '');
  for (const [name, attribute] of Object.entries(message.MessageAttributes ?? {})) {
    bytes +=
      Buffer.byteLength(name) +
      Buffer.byteLength(attribute.DataType ?? '') +
      Buffer.byteLength(attribute.StringValue ?? '');
  }
  return bytes;
}

test('the largest SQS message the functions send (a batch of jobs, a requeue, a parked job, a conversion) is at most 256 KiB', async () => {
  const sent: { command: string; messages: SentMessage[] }[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: { Entries?: SentMessage[] } & SentMessage }) => {
      sent.push({ command: command.constructor.name, messages: command.input.Entries ?? [command.input] });
      return {};
    },
  } as unknown as SQSClient;
  const jobs = new SqsJobQueue(client, 'https://queue', 'https://dlq');
  const conversions = new SqsConversionQueue(client, {
    queueUrl: 'https://convert',
    deadLetterQueueUrl: 'https://convert-dlq',
  });
  // A reason of 1,000 three-byte characters: the most `park` keeps of one.
  const longestReason = '€'.repeat(5000);
  const messages: JobMessage[] = longestJobs.map((job) => ({
    ...newJobMessage(job, LATEST_TIME),
    requeues: LARGEST_INT,
    interruptions: LARGEST_INT,
    // The planner run's claim in the queued-job ledger, as long as the message schema accepts (a UUID is 36).
    ledgerClaim: 'c'.repeat(100),
  }));
  // Ten of the largest job in one batch, as the planner sends them.
  await jobs.enqueue(Array.from({ length: 10 }, () => messages[1] as JobMessage));
  for (const message of messages) {
    await jobs.enqueue([message]);
    await jobs.requeue(message, 900);
    await jobs.park(serializeJobMessage(message), longestReason);
  }
  const longestKey = keyedJobs.map(dataKey).sort((a, b) => b.length - a.length)[0] as string;
  await new SqsConversionQueue(client, { queueUrl: 'https://convert' }).convertLater(longestKey);
  const conversion = { ...newConversionMessage(longestKey), interruptions: LARGEST_INT };
  await conversions.requeue(conversion, 900);
  await conversions.park(JSON.stringify(conversion), longestReason);

  const largest = Math.max(...sent.flatMap(({ messages }) => messages.map(sqsMessageBytes)));
  const largestBatch = Math.max(
    ...sent.map(({ messages }) => messages.reduce((sum, message) => sum + sqsMessageBytes(message), 0)),
  );
  figures.push(`largest SQS message ${largest} B, largest batch ${largestBatch} B`);
  expect(sent.some(({ command }) => command === 'SendMessageBatchCommand')).toBe(true);
  expect(largest).toBeGreaterThan(1000);
  expect(largest).toBeLessThanOrEqual(LIMITS.sqsMessageBytes);
  expect(largestBatch).toBeLessThanOrEqual(LIMITS.sqsMessageBytes);
});

/** DynamoDB's size of an item (its documented rules; numbers counted with every digit significant, an upper bound). */
function dynamoDbItemBytes(item: Record<string, AttributeValue>): number {
  const valueBytes = (value: AttributeValue): number => {
    if (value.S !== undefined) return Buffer.byteLength(value.S);
    if (value.N !== undefined) return Math.ceil(value.N.replace(/[^0-9]/g, '').length / 2) + 1;
    if (value.B !== undefined) return value.B.length;
    if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
    if (value.L !== undefined) return 3 + value.L.reduce((sum, element) => sum + 1 + valueBytes(element), 0);
    if (value.M !== undefined)
      return (
        3 +
        Object.entries(value.M).reduce(
          (sum, [name, element]) => sum + 1 + Buffer.byteLength(name) + valueBytes(element),
          0,
        )
      );
    throw new Error(`no size rule for ${JSON.stringify(value)}`);
  };
  return Object.entries(item).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + valueBytes(value), 0);
}

test('the request budget’s DynamoDB item is at most 400 KB at the largest allowed rate (1,000 a minute)', async () => {
  let stored: Record<string, AttributeValue> | undefined;
  let largest = 0;
  let slots = 0;
  // One writer: every conditional write holds. The item is what the code writes, kept as DynamoDB would.
  const client = {
    send: async (command: { constructor: { name: string }; input: { Item?: Record<string, AttributeValue> } }) => {
      if (command.constructor.name === 'GetItemCommand') return { Item: stored };
      const item = command.input.Item as Record<string, AttributeValue>;
      stored = item;
      largest = Math.max(largest, dynamoDbItemBytes(item));
      slots = Math.max(slots, item.slots?.L?.length ?? 0);
      return {};
    },
  } as unknown as DynamoDBClient;
  let now = 1_800_000_000_000;
  const budget = new DynamoDbRequestBudget({
    client,
    tableName: 'budget',
    apiKey: 'k'.repeat(100),
    ratePerMinute: 1000,
    clock: {
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
    },
  });
  for (let call = 0; call < 1200; call++) await budget.acquire();
  figures.push(`budget item ${largest} B with ${slots} slots`);
  // The item keeps the last `rate` slots: the largest it can grow.
  expect(slots).toBe(1000);
  expect(largest).toBeLessThanOrEqual(LIMITS.dynamoDbItemBytes);
});

afterAll(() => {
  console.log(`AWS limits, measured:\n  ${figures.join('\n  ')}`);
});

/** The entries above `limit`: `{}` when all are within it, else each one over with its size. */
function over(sizes: Record<string, number>, limit: number): Record<string, number> {
  return Object.fromEntries(Object.entries(sizes).filter(([, size]) => size > limit));
}

function directoryBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + statSync(path.join(entry.parentPath, entry.name)).size, 0);
}
