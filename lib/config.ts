import { readFileSync } from 'node:fs';
import { TimeZone } from 'aws-cdk-lib';
import type { Node } from 'constructs';
import { z } from 'zod';
import { apiUrlProblem } from '../functions/adapters/api-url.js';
import { DATASETS, parseAppUuid } from '../functions/core/identifiers.js';
import { BUDGET_TABLE_REFERENCE } from '../functions/core/request-budget.js';

/** Context keys (cdk.json "context" or `-c key=value`) that configure the stack. Documented in the README. */
const listOf = <T extends z.ZodTypeAny>(item: T) =>
  z.union([
    z.array(item),
    z.string().transform((value, ctx) => {
      const items = value
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean);
      const parsed = z.array(item).safeParse(items);
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', message: parsed.error.issues[0]?.message ?? 'invalid list' });
        return z.NEVER;
      }
      return parsed.data as z.infer<T>[];
    }),
  ]);
/** A number, or a string of digits (`-c key=value` gives strings); not `true`, `0x32`, `[50]` or `1e3`. */
const integerInput = z.union(
  [
    z.number(),
    z
      .string()
      .trim()
      .regex(/^[0-9]+$/)
      .transform(Number),
  ],
  {
    error: 'must be a whole number',
  },
);
const wholeNumber = (min: number, max: number) => integerInput.pipe(z.number().int().min(min).max(max));

/** A non-empty list of AWS resource IDs, or a comma-separated string of them; a bad one is named by its index. */
const idList = (pattern: RegExp, what: string) =>
  z.preprocess(
    (value) =>
      typeof value === 'string'
        ? value
            .split(',')
            .map((part) => part.trim())
            .filter(Boolean)
        : value,
    z.array(z.string().regex(pattern, `must be a ${what}`)).min(1, `must list at least one ${what}`),
  );

/** A KMS key ARN (not an alias: IAM grants name the key). */
const kmsKeyArn = z
  .string()
  .regex(
    /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/,
    'must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)',
  );

const fields = z.object({
  stackName: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/)
    .default('LocalyticsExportSync'),
  bucketName: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'is not a valid S3 bucket name')
    .optional(),
  bucketKmsKeyArn: kmsKeyArn.optional(),
  keyPrefix: z.string().default('localytics'),
  secretName: z.string().min(1, 'is required: the Secrets Manager secret (name or ARN) with {"apiKey","apiSecret"}'),
  apps: listOf(z.string()).default([]),
  /** A file of app IDs (one a line, `#` comments), instead of `apps`: for lists too long for a command line. */
  appsFile: z.string().min(1).optional(),
  datasets: listOf(z.enum(DATASETS)).default([...DATASETS]),
  apiUrl: z
    .string()
    .superRefine((value, ctx) => {
      const problem = apiUrlProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default('https://api.localytics.com'),
  requestsPerMinute: integerInput
    .pipe(
      z
        .number()
        .int('must be a positive whole number (requests per minute of the API key)')
        .positive('must be a positive whole number (requests per minute of the API key)')
        // The shared budget's item holds one entry per request of the last minute, rewritten by each reservation.
        .max(1000, 'must be at most 1000 (the shared request budget is sized for up to 1000 requests a minute)'),
    )
    .default(50),
  budgetTable: z.string().regex(BUDGET_TABLE_REFERENCE, 'must be a DynamoDB table name or table ARN').optional(),
  budgetTableKmsKeyArn: kmsKeyArn.optional(),
  copierConcurrency: wholeNumber(2, 1000).default(2),
  copierTimeoutMinutes: wholeNumber(1, 15).default(5),
  batchSize: wholeNumber(1, 10).default(5),
  maxReceiveCount: wholeNumber(1, 1000).default(5),
  logLagHours: wholeNumber(0, 48).default(1),
  lookbackHours: wholeNumber(1, 720).default(6),
  backfillDays: wholeNumber(1, 30).default(30),
  queueAheadMinutes: wholeNumber(5, 120).default(30),
  logScheduleCron: z.string().default('20 * * * ? *'),
  exportsScheduleCron: z.string().default('30 9 * * ? *'),
  exportsScheduleTimeZone: z.string().default('America/New_York'),
  alarmEmail: z.email().optional(),
  lagAlarmHours: wholeNumber(1, 720).default(6),
  staleExportHours: wholeNumber(25, 720).default(48),
  catalogDatabaseName: z
    .string()
    .regex(/^[a-z0-9_]{1,255}$/, 'must be lower-case letters, digits and underscores')
    .default('localytics'),
  catalogStartDate: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be yyyy-MM-dd')
    .default('2020-01-01'),
  parquet: z.union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')]).default(true),
  converterMemorySize: wholeNumber(512, 10_240).default(1024),
  // The functions' network (all three, and CDK's deployment trigger): subnets of a VPC of yours.
  vpcId: z
    .string()
    .regex(/^vpc-([0-9a-f]{8}|[0-9a-f]{17})$/, 'must be a VPC ID (vpc-…)')
    .optional(),
  vpcSubnetIds: idList(/^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/, 'subnet ID (subnet-…)').optional(),
  vpcSecurityGroupIds: idList(/^sg-([0-9a-f]{8}|[0-9a-f]{17})$/, 'security group ID (sg-…)').optional(),
});

/** Keys that only mean something together with another. */
const configSchema = fields.superRefine((config, ctx) => {
  const requires = (key: keyof typeof config, other: keyof typeof config, why: string) => {
    if (config[key] !== undefined && config[other] === undefined) {
      ctx.addIssue({ code: 'custom', path: [key], message: `needs context "${other}" ${why}` });
    }
  };
  requires('vpcSubnetIds', 'vpcId', '(the VPC of the subnets)');
  requires('vpcId', 'vpcSubnetIds', '(the subnets the functions run in)');
  requires('vpcSecurityGroupIds', 'vpcSubnetIds', '(security groups apply to functions in subnets)');
  requires('budgetTableKmsKeyArn', 'budgetTable', '(a budget table this stack creates uses the AWS managed key)');
});

export type StackConfig = z.infer<typeof configSchema>;

const KEYS = Object.keys(fields.shape) as (keyof StackConfig)[];

/** Read the stack configuration from CDK context; a bad value throws one message naming every bad key. */
export function readStackConfig(node: Node): StackConfig {
  const raw: Record<string, unknown> = {};
  for (const key of KEYS) {
    const value = node.tryGetContext(key);
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `context "${issue.path.join('.')}" ${issue.message}`);
    throw new Error(`Invalid Localytics Export Sync configuration: ${problems.join('; ')}`);
  }
  if (result.data.appsFile !== undefined) {
    if (raw.apps !== undefined) {
      throw new Error(
        'Invalid Localytics Export Sync configuration: context "apps" and "appsFile" are both set: give one (remove "apps" from cdk.json to use a file)',
      );
    }
    result.data.apps = readAppsFile(result.data.appsFile);
  }
  const timeZones = Object.values(TimeZone).map((zone) => (zone as TimeZone).timezoneName);
  if (!timeZones.includes(result.data.exportsScheduleTimeZone)) {
    throw new Error(
      `Invalid Localytics Export Sync configuration: context "exportsScheduleTimeZone" ${result.data.exportsScheduleTimeZone} is not an IANA time zone`,
    );
  }
  return result.data;
}

/** The app IDs of an apps file: one a line; blank lines and `#` comments (whole or end of line) are ignored. */
function readAppsFile(file: string): string[] {
  const problem = (message: string) =>
    new Error(`Invalid Localytics Export Sync configuration: context "appsFile" ${file}${message}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw problem(` cannot be read: ${(error as Error).message}`);
  }
  const apps: string[] = [];
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    const entry = line.replace(/#.*$/, '').trim();
    if (!entry) continue;
    const app = parseAppUuid(entry);
    if (!app)
      throw problem(` line ${index + 1}: "${entry}" is not a Localytics app ID (hex groups separated by dashes)`);
    apps.push(app);
  }
  if (apps.length === 0) throw problem(' lists no app ID');
  return apps;
}
