import os from 'node:os';
import { createS3Client } from '../adapters/aws-clients.js';
import { DuckDbParquetEncoder } from '../adapters/duckdb-parquet-encoder.js';
import { LocalDirObjectReader, S3ObjectReader } from '../adapters/object-readers.js';
import type { ConvertDependencies, ConvertOutcome, StoredObjectReader } from '../core/convert-file.js';
import { type ConvertSummary, convertDestination, convertKeys } from '../core/convert-layer.js';
import type { Logger, ObjectSink } from '../core/ports.js';
import { type CliIo, EXIT_FAILURES, EXIT_OK } from './io.js';
import { type Destination, parseDestination } from './options.js';
import { formatBytes, formatDuration } from './report.js';
import { checkDestination, createLogger, createSink } from './wiring.js';

export interface ConvertCommandOptions {
  dest?: string;
  rebuild?: boolean;
  json?: boolean;
  verbose?: boolean;
}

export function createReader(destination: Destination, io: CliIo): StoredObjectReader {
  if (destination.type === 'local') return new LocalDirObjectReader(destination.dir);
  return new S3ObjectReader(createS3Client(io.env), destination);
}

/**
 * Run `work` with the CLI's conversion dependencies: DuckDB with a 1 GiB memory limit and every core, scratch space
 * in TMPDIR; the database is stopped afterwards.
 */
async function withConverter<T>(
  destination: Destination,
  sink: ObjectSink,
  logger: Logger,
  io: CliIo,
  signal: AbortSignal | undefined,
  work: (deps: ConvertDependencies) => Promise<T>,
): Promise<T> {
  const encoder = new DuckDbParquetEncoder({ memoryLimitMiB: 1024 });
  try {
    return await work({
      reader: createReader(destination, io),
      sink,
      encoder,
      logger,
      scratchDir: os.tmpdir(),
      signal,
    });
  } finally {
    await encoder.close();
  }
}

/** `localytics-sync convert`: build the Parquet layer for what is already at the destination. */
export async function convertCommand(options: ConvertCommandOptions, io: CliIo): Promise<number> {
  const destination = parseDestination(options.dest);
  const sink = createSink(destination, io);
  await checkDestination(sink, { writes: true });
  const logger = createLogger(Boolean(options.verbose), io);
  const interrupt = new AbortController();
  const stopListening = io.onInterrupt?.(() => {
    io.stderr('\ninterrupted: stopping the conversion in flight (nothing partial is left behind)...\n');
    interrupt.abort();
  });
  const progress = io.interactive && !options.json ? conversionProgress(io) : undefined;
  try {
    const summary = await withConverter(destination, sink, logger, io, interrupt.signal, (deps) =>
      convertDestination(deps, { rebuild: Boolean(options.rebuild), onReport: progress }),
    );
    if (progress) io.stderr('\r\x1b[2K');
    io.stdout(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatConvertSummary(summary));
    return summary.failed.length > 0 || summary.interrupted > 0 ? EXIT_FAILURES : EXIT_OK;
  } finally {
    stopListening?.();
  }
}

/** `sync --parquet`: convert the files this run copied (and those it found already copied). */
export async function convertCopied(
  jsonKeys: readonly string[],
  destination: Destination,
  sink: ObjectSink,
  logger: Logger,
  io: CliIo,
  signal?: AbortSignal,
): Promise<ConvertSummary> {
  return withConverter(destination, sink, logger, io, signal, (deps) => convertKeys(jsonKeys, deps));
}

function conversionProgress(io: CliIo) {
  let done = 0;
  return (outcome: ConvertOutcome) => {
    done++;
    io.stderr(`\r\x1b[2K[${done}] ${outcome.status} ${outcome.jsonKey}`.slice(0, 200));
  };
}

export function formatConvertSummary(summary: ConvertSummary): string {
  const lines = [
    `Parquet layer of ${summary.destination} (parquet/<table>/...)`,
    `  converted    ${summary.converted} file(s), ${summary.rows} row(s): ${formatBytes(summary.jsonBytes)} of gzip JSON -> ${formatBytes(summary.parquetBytes)} of Parquet`,
    `  present      ${summary.present} already converted`,
    `  failed       ${summary.failed.length}`,
  ];
  if (summary.interrupted > 0) lines.push(`  interrupted  ${summary.interrupted} (the next run converts them)`);
  lines.push(`  time         ${formatDuration(summary.durationMs)}`);
  for (const failure of summary.failed) lines.push(`  FAILED ${failure.key}: ${failure.reason}`);
  for (const warning of summary.warnings) lines.push(`  warning: ${warning}`);
  return `${lines.join('\n')}\n`;
}
