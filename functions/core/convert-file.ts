import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ObjectExistsError } from './errors.js';
import { parquetTargetOf } from './parquet-layer.js';
import type { Logger, ObjectSink } from './ports.js';
import { describeError } from './redact.js';
import type { TableDefinition } from './tables.js';

/** Reads stored objects back from the destination (the JSON layer, for conversion). */
export interface StoredObjectReader {
  /** The object's bytes as stored, or undefined when there is no object at `key`. `signal` aborts it at any point. */
  open(key: string, options?: { signal?: AbortSignal }): Promise<Readable | undefined>;
}

export interface ParquetEncodeRequest {
  readonly table: TableDefinition;
  /** A gzip JSON-lines file on local disk. */
  readonly input: string;
  /** Where to write the Parquet file. */
  readonly output: string;
  readonly signal?: AbortSignal;
}

export interface ParquetEncodeResult {
  readonly rows: number;
  /** Per column: JSON values present but not readable as the column's type, written as null. */
  readonly unfitValues: Readonly<Record<string, number>>;
  /** Rows with no value in any column: malformed JSON lines, or objects with none of the table's fields. */
  readonly emptyRows: number;
  /** Top-level fields of the file that are not columns (looked for in a sample of rows): dropped from Parquet. */
  readonly unknownFields: readonly string[];
}

/** Writes a table's typed Parquet file from a gzip JSON-lines file (DuckDB in production). */
export interface ParquetEncoder {
  encode(request: ParquetEncodeRequest): Promise<ParquetEncodeResult>;
}

/** The encoder could not convert the file. */
export class ParquetEncodeError extends Error {
  override readonly name = 'ParquetEncodeError';
}

export type ConvertOutcome =
  | {
      readonly status: 'converted';
      readonly jsonKey: string;
      readonly parquetKey: string;
      readonly rows: number;
      /** Size of the JSON object (gzip) that was read. */
      readonly jsonBytes: number;
      /** Size of the Parquet object written. */
      readonly bytes: number;
      readonly warnings: readonly string[];
      readonly durationMs: number;
    }
  | { readonly status: 'present'; readonly jsonKey: string; readonly parquetKey: string }
  /** Stopped on purpose (deadline or Ctrl-C); nothing was written. */
  | { readonly status: 'interrupted'; readonly jsonKey: string }
  | { readonly status: 'failed'; readonly jsonKey: string; readonly reason: string; readonly retryable: boolean };

export interface ConvertDependencies {
  readonly reader: StoredObjectReader;
  readonly sink: ObjectSink;
  readonly encoder: ParquetEncoder;
  readonly logger: Logger;
  /** Local directory for the downloaded JSON object and the Parquet file (Lambda: /tmp). */
  readonly scratchDir: string;
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

export interface ConvertOptions {
  /** Convert even when the Parquet object exists (after a column was added to the schema). Default false. */
  readonly rebuild?: boolean;
  /** Skip the existence check (the caller listed the Parquet layer already). Default true. */
  readonly checkExisting?: boolean;
}

export const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet';

/**
 * Convert one JSON data object to its Parquet twin: download it to scratch space, encode it with the table's typed
 * columns, and write the result to its deterministic key through the sink (atomic: nothing partial ever appears).
 * A key that exists is left alone unless `rebuild`. Never throws: every way it can end is a `ConvertOutcome`.
 */
export async function convertFile(
  jsonKey: string,
  deps: ConvertDependencies,
  options: ConvertOptions = {},
): Promise<ConvertOutcome> {
  const target = parquetTargetOf(jsonKey);
  if (!target) {
    return { status: 'failed', jsonKey, reason: `${jsonKey} is not a data object of any table`, retryable: false };
  }
  const now = deps.now ?? Date.now;
  const started = now();
  const fields = { jsonKey, parquetKey: target.parquetKey, table: target.table.name };
  const failed = (reason: string, retryable: boolean): ConvertOutcome => {
    deps.logger.warn('parquet conversion failed', { ...fields, reason, retryable });
    return { status: 'failed', jsonKey, reason, retryable };
  };
  let scratch: string | undefined;
  try {
    if (
      !options.rebuild &&
      (options.checkExisting ?? true) &&
      (await deps.sink.exists(target.parquetKey, { signal: deps.signal }))
    ) {
      return { status: 'present', jsonKey, parquetKey: target.parquetKey };
    }
    if (deps.signal?.aborted) return { status: 'interrupted', jsonKey };
    const body = await deps.reader.open(jsonKey, { signal: deps.signal });
    if (!body) return failed(`the JSON object ${jsonKey} does not exist`, false);
    scratch = await mkdtemp(path.join(deps.scratchDir, 'lsync-convert-'));
    const input = path.join(scratch, 'input.json.gz');
    const output = path.join(scratch, 'output.parquet');
    await pipeline(body, createWriteStream(input), { signal: deps.signal });
    const jsonBytes = (await stat(input)).size;
    const result = await deps.encoder.encode({
      table: target.table,
      input,
      output,
      signal: deps.signal,
    });
    if (deps.signal?.aborted) return { status: 'interrupted', jsonKey };
    const written = await deps.sink.write(target.parquetKey, createReadStream(output), {
      contentType: PARQUET_CONTENT_TYPE,
      // Known before it streams: one PutObject on S3 rather than a multipart upload.
      contentLength: (await stat(output)).size,
      metadata: { 'source-key': jsonKey, rows: String(result.rows) },
      replace: options.rebuild,
      signal: deps.signal,
    });
    const warnings = conversionWarnings(result);
    for (const warning of warnings) deps.logger.warn('parquet conversion warning', { ...fields, warning });
    const durationMs = now() - started;
    deps.logger.info('parquet converted', {
      ...fields,
      rows: result.rows,
      bytes: written.bytes,
      jsonBytes,
      durationMs,
    });
    return {
      status: 'converted',
      jsonKey,
      parquetKey: target.parquetKey,
      rows: result.rows,
      jsonBytes,
      bytes: written.bytes,
      warnings,
      durationMs,
    };
  } catch (error) {
    if (deps.signal?.aborted) return { status: 'interrupted', jsonKey };
    // Another conversion of the same file (a duplicate message) wrote it first.
    if (error instanceof ObjectExistsError) return { status: 'present', jsonKey, parquetKey: target.parquetKey };
    return failed(describeError(error), true);
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** One line per kind of problem, naming the columns and counts. */
export function conversionWarnings(result: ParquetEncodeResult): string[] {
  const warnings: string[] = [];
  if (result.rows === 0) warnings.push('the JSON file has no rows: the Parquet file has none either');
  const unfit = Object.entries(result.unfitValues).filter(([, count]) => count > 0);
  if (unfit.length > 0) {
    const total = unfit.reduce((sum, [, count]) => sum + count, 0);
    warnings.push(
      `${total} value(s) did not fit their column type and were written as null: ${unfit.map(([column, count]) => `${column} ${count}`).join(', ')}`,
    );
  }
  if (result.emptyRows > 0) {
    warnings.push(
      `${result.emptyRows} row(s) have no value in any column (malformed JSON, or none of the table's fields): kept as rows of nulls, as the JSON table reads them`,
    );
  }
  if (result.unknownFields.length > 0) {
    const shown = result.unknownFields.slice(0, 10).join(', ');
    const more = result.unknownFields.length > 10 ? ` and ${result.unknownFields.length - 10} more` : '';
    warnings.push(
      `field(s) not in the table's schema, kept in the JSON layer but not in Parquet: ${shown}${more} (add a column to functions/core/tables.ts to keep one)`,
    );
  }
  return warnings;
}
