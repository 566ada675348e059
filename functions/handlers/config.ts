import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { DATASETS, type Dataset, isAppUuid } from '../core/identifiers.js';

const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);
const positiveInt = z.coerce.number().int().positive();

/** Environment of the Lambda functions, set by the CDK construct. Read and validated once per cold start. */
const envSchema = z.object({
  DEST_BUCKET: z.string().min(3),
  DEST_PREFIX: z.string().default(''),
  SECRET_ID: z.string().min(1),
  API_URL: z.url().default('https://api.localytics.com'),
  APPS: list.pipe(z.array(z.string().refine(isAppUuid, 'is not a Localytics app ID'))),
  DATASETS: list.pipe(z.array(z.enum(DATASETS)).min(1)),
  RATE_PER_MINUTE: positiveInt,
  /** Processes that share the key's budget: the copier's maximum concurrency plus the planner. */
  BUDGET_SHARES: positiveInt,
  QUEUE_URL: z.string().min(1),
  DLQ_URL: z.string().min(1),
  MAX_RECEIVE_COUNT: positiveInt.default(5),
  LOG_LAG_HOURS: z.coerce.number().int().nonnegative().default(1),
  LOOKBACK_HOURS: positiveInt.default(6),
  BACKFILL_DAYS: positiveInt.max(30).default(7),
  NOT_READY_DEADLINE_HOURS: positiveInt.default(24),
  ALLOWED_FILE_HOSTS: list.default([]),
  /** First backoff of a retryable failure across deliveries (doubles each delivery). */
  RETRY_BASE_SECONDS: positiveInt.default(30),
  /** Delay before a not-ready log hour is tried again (SQS allows at most 900). */
  NOT_READY_DELAY_SECONDS: positiveInt.max(900).default(900),
});

export interface HandlerConfig {
  readonly bucket: string;
  readonly prefix: string;
  readonly secretId: string;
  readonly apiUrl: string;
  readonly apps: readonly string[];
  readonly datasets: ReadonlySet<Dataset>;
  /** This process's share of the key's budget, requests per minute. */
  readonly processRatePerMinute: number;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly maxReceiveCount: number;
  readonly logLagHours: number;
  readonly lookbackHours: number;
  readonly backfillDays: number;
  readonly notReadyDeadlineHours: number;
  readonly allowedFileHosts: readonly string[];
  readonly retryBaseSeconds: number;
  readonly notReadyDelaySeconds: number;
}

export function readHandlerConfig(env: Readonly<Record<string, string | undefined>>): HandlerConfig {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new ConfigError(`invalid function configuration: ${problems}`);
  }
  const e = result.data;
  return {
    bucket: e.DEST_BUCKET,
    prefix: e.DEST_PREFIX.replace(/^\/+|\/+$/g, ''),
    secretId: e.SECRET_ID,
    apiUrl: e.API_URL.replace(/\/+$/, ''),
    apps: e.APPS.map((app) => app.toLowerCase()),
    datasets: new Set(e.DATASETS),
    processRatePerMinute: e.RATE_PER_MINUTE / e.BUDGET_SHARES,
    queueUrl: e.QUEUE_URL,
    deadLetterQueueUrl: e.DLQ_URL,
    maxReceiveCount: e.MAX_RECEIVE_COUNT,
    logLagHours: e.LOG_LAG_HOURS,
    lookbackHours: e.LOOKBACK_HOURS,
    backfillDays: e.BACKFILL_DAYS,
    notReadyDeadlineHours: e.NOT_READY_DEADLINE_HOURS,
    allowedFileHosts: e.ALLOWED_FILE_HOSTS,
    retryBaseSeconds: e.RETRY_BASE_SECONDS,
    notReadyDelaySeconds: e.NOT_READY_DELAY_SECONDS,
  };
}
