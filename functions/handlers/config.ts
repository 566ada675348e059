import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { apiUrlProblem } from '../adapters/api-url.js';
import { ConfigError } from '../core/errors.js';
import { DATASETS, type Dataset, isAppUuid } from '../core/identifiers.js';
import { BUDGET_TABLE_REFERENCE } from '../core/request-budget.js';
import { firstIssue } from '../core/schema.js';

const list = z.pipe(
  z.string(),
  z.transform((value: string) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  ),
);
/** A whole number from the environment (a string), within [min, max]. */
const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.pipe(
    z.string().check(z.regex(/^\d+$/, 'must be a whole number')),
    z.pipe(z.transform(Number), z.int().check(z.gte(min), z.lte(max))),
  );
/** A default given as the environment would (a string), so that it is parsed like a set value. */
const withDefault = <T extends z.ZodMiniType>(schema: T, value: z.input<T>) => z.prefault(schema, value);

/** Environment of the Lambda functions, set by the CDK construct. Read and validated once per cold start. */
const envSchema = z.object({
  DEST_BUCKET: z.string().check(z.minLength(3)),
  DEST_PREFIX: withDefault(z.string(), ''),
  SECRET_ID: z.string().check(z.minLength(1)),
  API_URL: withDefault(z.url(), 'https://api.localytics.com'),
  /**
   * The planner's app list: a JSON array of app IDs in a file of the function's code (relative to its directory), so
   * that any number of apps fits (Lambda's environment holds 4 KB). The copier has none: it copies what it is given.
   */
  APPS_FILE: z.optional(z.string().check(z.minLength(1))),
  DATASETS: z.pipe(list, z.array(z.enum(DATASETS)).check(z.minLength(1))),
  RATE_PER_MINUTE: wholeNumber(1),
  /** The DynamoDB table holding the key's request budget, shared by every function (and CLI runs). */
  BUDGET_TABLE: z.string().check(z.regex(BUDGET_TABLE_REFERENCE, 'must be a DynamoDB table name or table ARN')),
  QUEUE_URL: z.string().check(z.minLength(1)),
  DLQ_URL: z.string().check(z.minLength(1)),
  MAX_RECEIVE_COUNT: withDefault(wholeNumber(1), '5'),
  LOG_LAG_HOURS: withDefault(wholeNumber(0), '1'),
  LOOKBACK_HOURS: withDefault(wholeNumber(1), '6'),
  BACKFILL_DAYS: withDefault(wholeNumber(1, 30), '30'),
  /** This deployment's queued-job ledger (DynamoDB table). */
  LEDGER_TABLE: z.string().check(z.minLength(3)),
  /** Minutes of work at the key's rate the planner keeps in the queue. */
  QUEUE_AHEAD_MINUTES: withDefault(wholeNumber(1, 120), '30'),
  NOT_READY_DEADLINE_HOURS: withDefault(wholeNumber(1), '24'),
  STALE_EXPORT_HOURS: withDefault(wholeNumber(1), '48'),
  /** The planner counts the apps that lag more than this (the lag alarm's threshold). */
  LAG_ALARM_HOURS: withDefault(wholeNumber(1), '6'),
  ALLOWED_FILE_HOSTS: withDefault(list, ''),
  /** First backoff of a retryable failure across deliveries (doubles each delivery). */
  RETRY_BASE_SECONDS: withDefault(wholeNumber(1), '30'),
  /** Delay before a not-ready log hour is tried again (SQS allows at most 900). */
  NOT_READY_DELAY_SECONDS: withDefault(wholeNumber(1, 900), '900'),
  /** The Parquet converter's queue: the copier sends it every file copied. Unset: no Parquet layer. */
  CONVERT_QUEUE_URL: z.optional(z.string().check(z.minLength(1))),
});

export interface HandlerConfig {
  readonly bucket: string;
  readonly prefix: string;
  readonly secretId: string;
  readonly apiUrl: string;
  /** The apps whose raw logs are planned (from `APPS_FILE`; none without it). */
  readonly apps: readonly string[];
  readonly datasets: ReadonlySet<Dataset>;
  /** The key's requests per minute, shared by every function through the budget table. */
  readonly ratePerMinute: number;
  readonly budgetTable: string;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly maxReceiveCount: number;
  readonly logLagHours: number;
  readonly lookbackHours: number;
  readonly backfillDays: number;
  /** The key's whole API budget, requests per minute. */
  readonly requestsPerMinute: number;
  readonly ledgerTable: string;
  readonly queueAheadMinutes: number;
  readonly notReadyDeadlineHours: number;
  /** An audience or profile export not regenerated for this long is reported. */
  readonly staleExportHours: number;
  /** Apps whose raw logs lag more than this are counted as lagging. */
  readonly lagAlarmHours: number;
  readonly allowedFileHosts: readonly string[];
  readonly retryBaseSeconds: number;
  readonly notReadyDelaySeconds: number;
  readonly convertQueueUrl?: string;
}

/** The planner's app list file: its name in the planner's bundle, and its content (written at synth). */
export const APP_LIST_FILE = 'apps.json';

export function formatAppList(apps: readonly string[]): string {
  return `${JSON.stringify(apps)}\n`;
}

const appListSchema = z.array(z.string().check(z.refine(isAppUuid, 'is not a Localytics app ID')));

function readAppList(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `invalid function configuration: APPS_FILE ${file} cannot be read (${(error as Error).message})`,
      {
        cause: error,
      },
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`invalid function configuration: APPS_FILE ${file} is not JSON`, { cause: error });
  }
  const result = appListSchema.safeParse(data);
  if (!result.success) {
    throw new ConfigError(`invalid function configuration: APPS_FILE ${file}: ${firstIssue(result.error)}`);
  }
  return result.data;
}

export function readHandlerConfig(env: Readonly<Record<string, string | undefined>>): HandlerConfig {
  const result = envSchema.safeParse(env);
  if (!result.success) throw new ConfigError(`invalid function configuration: ${firstIssue(result.error)}`);
  const e = result.data;
  const apiUrlIssue = apiUrlProblem(e.API_URL);
  if (apiUrlIssue) throw new ConfigError(`invalid function configuration: API_URL ${apiUrlIssue}`);
  return {
    bucket: e.DEST_BUCKET,
    prefix: e.DEST_PREFIX.replace(/^\/+|\/+$/g, ''),
    secretId: e.SECRET_ID,
    apiUrl: e.API_URL.replace(/\/+$/, ''),
    apps: e.APPS_FILE === undefined ? [] : readAppList(path.resolve(env.LAMBDA_TASK_ROOT ?? '.', e.APPS_FILE)),
    datasets: new Set(e.DATASETS),
    ratePerMinute: e.RATE_PER_MINUTE,
    budgetTable: e.BUDGET_TABLE,
    queueUrl: e.QUEUE_URL,
    deadLetterQueueUrl: e.DLQ_URL,
    maxReceiveCount: e.MAX_RECEIVE_COUNT,
    logLagHours: e.LOG_LAG_HOURS,
    lookbackHours: e.LOOKBACK_HOURS,
    backfillDays: e.BACKFILL_DAYS,
    requestsPerMinute: e.RATE_PER_MINUTE,
    ledgerTable: e.LEDGER_TABLE,
    queueAheadMinutes: e.QUEUE_AHEAD_MINUTES,
    notReadyDeadlineHours: e.NOT_READY_DEADLINE_HOURS,
    staleExportHours: e.STALE_EXPORT_HOURS,
    lagAlarmHours: e.LAG_ALARM_HOURS,
    allowedFileHosts: e.ALLOWED_FILE_HOSTS,
    retryBaseSeconds: e.RETRY_BASE_SECONDS,
    notReadyDelaySeconds: e.NOT_READY_DELAY_SECONDS,
    convertQueueUrl: e.CONVERT_QUEUE_URL,
  };
}
