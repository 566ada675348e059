import * as z from 'zod/mini';
import { ConfigError } from '../core/errors.js';
import { firstIssue } from '../core/schema.js';

const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.pipe(
    z.string().check(z.regex(/^\d+$/, 'must be a whole number')),
    z.pipe(z.transform(Number), z.int().check(z.gte(min), z.lte(max))),
  );

/** Environment of the Parquet converter, set by the CDK construct. Read and validated once per cold start. */
const envSchema = z.object({
  DEST_BUCKET: z.string().check(z.minLength(3)),
  DEST_PREFIX: z.prefault(z.string(), ''),
  CONVERT_QUEUE_URL: z.string().check(z.minLength(1)),
  CONVERT_DLQ_URL: z.string().check(z.minLength(1)),
  MAX_RECEIVE_COUNT: z.prefault(wholeNumber(1), '5'),
  RETRY_BASE_SECONDS: z.prefault(wholeNumber(1), '30'),
  /** DuckDB's memory limit: a share of the function's memory, the rest is Node.js and DuckDB's own code. */
  DUCKDB_MEMORY_LIMIT_MB: wholeNumber(64),
  DUCKDB_THREADS: wholeNumber(1, 64),
  /** Ephemeral storage for the downloaded JSON, the Parquet file and DuckDB's spill files. */
  SCRATCH_DIR: z.prefault(z.string().check(z.minLength(1)), '/tmp'),
});

export interface ConverterConfig {
  readonly bucket: string;
  readonly prefix: string;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly maxReceiveCount: number;
  readonly retryBaseSeconds: number;
  readonly memoryLimitMiB: number;
  readonly threads: number;
  readonly scratchDir: string;
}

export function readConverterConfig(env: Readonly<Record<string, string | undefined>>): ConverterConfig {
  const result = envSchema.safeParse(env);
  if (!result.success) throw new ConfigError(`invalid converter configuration: ${firstIssue(result.error)}`);
  const e = result.data;
  return {
    bucket: e.DEST_BUCKET,
    prefix: e.DEST_PREFIX.replace(/^\/+|\/+$/g, ''),
    queueUrl: e.CONVERT_QUEUE_URL,
    deadLetterQueueUrl: e.CONVERT_DLQ_URL,
    maxReceiveCount: e.MAX_RECEIVE_COUNT,
    retryBaseSeconds: e.RETRY_BASE_SECONDS,
    memoryLimitMiB: e.DUCKDB_MEMORY_LIMIT_MB,
    threads: e.DUCKDB_THREADS,
    scratchDir: e.SCRATCH_DIR,
  };
}
