import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import {
  ParquetEncodeError,
  type ParquetEncodeRequest,
  type ParquetEncodeResult,
  type ParquetEncoder,
} from '../core/convert-file.js';
import { describeError } from '../core/redact.js';
import type { ColumnDefinition, HiveType, TableDefinition } from '../core/tables.js';
import { sourceKey } from '../core/tables.js';

/** DuckDB's spelling of each Hive column type. The Parquet files carry these types; Athena reads them as the Hive ones. */
export const DUCKDB_TYPES: Record<HiveType, string> = {
  string: 'VARCHAR',
  int: 'INTEGER',
  bigint: 'BIGINT',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  'map<string,string>': 'MAP(VARCHAR, VARCHAR)',
  'array<string>': 'VARCHAR[]',
  'struct<customer_id:string>': 'STRUCT(customer_id VARCHAR)',
  'struct<attributes:array<string>>': 'STRUCT(attributes VARCHAR[])',
};

export const quoteIdentifier = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;
export const quoteLiteral = (text: string) => `'${text.replace(/'/g, "''")}'`;

/**
 * `read_json` of a gzip JSON-lines file with the given column types (keyed by JSON key): one row per line, a malformed
 * line read as a row of nulls, a value that cannot be read as its type read as null. The test suite reads the JSON
 * layer through the same call, so both layers answer queries alike.
 */
export function readJsonLines(file: string, columns: readonly (readonly [jsonKey: string, duckDbType: string])[]) {
  const spec = columns.map(([key, type]) => `${quoteLiteral(key)}: ${quoteLiteral(type)}`).join(', ');
  return (
    `read_json(${quoteLiteral(file)}, format = 'newline_delimited', compression = 'gzip', records = true, ` +
    `ignore_errors = true, columns = {${spec}})`
  );
}

export interface DuckDbParquetEncoderOptions {
  /** DuckDB's memory limit, MiB: it spills to the scratch directory beyond it. Default 512. */
  readonly memoryLimitMiB?: number;
  /** Worker threads. Default: DuckDB's (the number of cores). */
  readonly threads?: number;
  /** Rows sampled to find fields that are not columns. Default 20,480. */
  readonly sampleRows?: number;
  /** Where DuckDB spills beyond its memory limit. Default: a directory of this process under the OS temp dir. */
  readonly spillDir?: string;
}

/**
 * The Parquet writer: DuckDB (`@duckdb/node-api`), native code that reads the gzip JSON lines itself, sorts out of
 * core within a memory limit (spilling to disk) and writes ZSTD-compressed Parquet. One in-memory database per
 * encoder, started on first use (so `sync` without `--parquet` never loads the native module) and reused: a fresh
 * connection per file, one file at a time.
 */
export class DuckDbParquetEncoder implements ParquetEncoder {
  private instance?: Promise<DuckDBInstance>;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: DuckDbParquetEncoderOptions = {}) {}

  encode(request: ParquetEncodeRequest): Promise<ParquetEncodeResult> {
    const run = this.queue.then(() => this.encodeOne(request));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Stop the database (its spill directory goes with it). */
  async close(): Promise<void> {
    const instance = this.instance;
    this.instance = undefined;
    await this.queue;
    if (instance) (await instance.catch(() => undefined))?.closeSync();
  }

  private start(): Promise<DuckDBInstance> {
    this.instance ??= (async () => {
      const { DuckDBInstance } = await import('@duckdb/node-api');
      const settings: Record<string, string> = {
        memory_limit: `${this.options.memoryLimitMiB ?? 512}MB`,
        temp_directory: this.options.spillDir ?? path.join(os.tmpdir(), `lsync-duckdb-spill-${process.pid}`),
        preserve_insertion_order: 'true',
        autoinstall_known_extensions: 'false',
        autoload_known_extensions: 'false',
      };
      if (this.options.threads) settings.threads = String(this.options.threads);
      return DuckDBInstance.create(':memory:', settings);
    })();
    this.instance.catch(() => {
      this.instance = undefined;
    });
    return this.instance;
  }

  private async encodeOne(request: ParquetEncodeRequest): Promise<ParquetEncodeResult> {
    let connection: DuckDBConnection;
    try {
      connection = await (await this.start()).connect();
    } catch (error) {
      throw new ParquetEncodeError(`could not start DuckDB: ${describeError(error)}`, { cause: error });
    }
    const onAbort = () => connection.interrupt();
    request.signal?.addEventListener('abort', onAbort);
    try {
      return await this.encodeWith(connection, request);
    } catch (error) {
      throw new ParquetEncodeError(`converting to Parquet failed: ${describeError(error)}`, { cause: error });
    } finally {
      request.signal?.removeEventListener('abort', onAbort);
      connection.closeSync();
    }
  }

  private async encodeWith(connection: DuckDBConnection, request: ParquetEncodeRequest): Promise<ParquetEncodeResult> {
    const { table, input, output } = request;
    const unknownFields = await this.unknownFields(connection, table, input);
    const unfitValues = await countUnfitValues(connection, table, input);
    const columns = table.columns.map((column) => [sourceKey(table, column), DUCKDB_TYPES[column.type]] as const);
    const select = table.columns
      .map((column) => `${quoteIdentifier(sourceKey(table, column))} AS ${quoteIdentifier(column.name)}`)
      .join(', ');
    const order = table.sortBy?.length
      ? ` ORDER BY ${table.sortBy.map((name) => `${quoteIdentifier(name)} NULLS LAST`).join(', ')}`
      : '';
    await connection.run(
      `COPY (SELECT ${select} FROM ${readJsonLines(input, columns)}${order}) TO ${quoteLiteral(output)} ` +
        `(FORMAT parquet, COMPRESSION zstd)`,
    );
    const rowsResult = await connection.runAndReadAll(
      `SELECT num_rows FROM parquet_file_metadata(${quoteLiteral(output)})`,
    );
    const rows = Number(rowsResult.getRows()[0]?.[0] ?? 0);
    // Row-group statistics let DuckDB skip every row group without nulls: this costs next to nothing.
    const allNull = table.columns.map((column) => `${quoteIdentifier(column.name)} IS NULL`).join(' AND ');
    const emptyResult = await connection.runAndReadAll(
      `SELECT count(*) FROM read_parquet(${quoteLiteral(output)}) WHERE ${allNull}`,
    );
    const emptyRows = Number(emptyResult.getRows()[0]?.[0] ?? 0);
    return { rows, unfitValues, emptyRows, unknownFields };
  }

  /** Top-level keys of a sample of rows that no column reads (key comparison as the JSON reader does it). */
  private async unknownFields(connection: DuckDBConnection, table: TableDefinition, input: string): Promise<string[]> {
    let keys: string[];
    try {
      const described = await connection.runAndReadAll(
        `DESCRIBE SELECT * FROM read_json(${quoteLiteral(input)}, format = 'newline_delimited', compression = 'gzip', ` +
          `records = true, ignore_errors = true, maximum_depth = 1, sample_size = ${this.options.sampleRows ?? 20_480})`,
      );
      keys = described.getRows().map((row) => String(row[0]));
    } catch {
      // Nothing to detect a schema from (an empty file, only malformed lines): there are no fields to report.
      return [];
    }
    const known = new Set(table.columns.map((column) => sourceKey(table, column)));
    return keys.filter((key) => !known.has(key));
  }
}

/**
 * Per column that is not a string: values present in the file (not JSON null) that the column's type cannot hold.
 * One extra read of the file with those columns as raw JSON, transformed exactly as `read_json` does; string columns
 * hold any value, so they need no check.
 */
async function countUnfitValues(
  connection: DuckDBConnection,
  table: TableDefinition,
  input: string,
): Promise<Record<string, number>> {
  const checked = table.columns.filter((column) => column.type !== 'string');
  if (checked.length === 0) return {};
  const raw = checked.map((column) => [sourceKey(table, column), 'JSON'] as const);
  const counts = checked.map((column) => {
    const value = quoteIdentifier(sourceKey(table, column));
    const typed = `json_transform(${value}, ${quoteLiteral(JSON.stringify(DUCKDB_TYPES[column.type]))})`;
    // A struct column reads any non-object as a struct of nulls rather than null: count those too.
    const unfit = column.type.startsWith('struct<')
      ? `(${typed} IS NULL OR json_type(${value}) <> 'OBJECT')`
      : `${typed} IS NULL`;
    return `count_if(${value} IS NOT NULL AND ${unfit})`;
  });
  const result = await connection.runAndReadAll(`SELECT ${counts.join(', ')} FROM ${readJsonLines(input, raw)}`);
  const row = result.getRows()[0] ?? [];
  return Object.fromEntries(checked.map((column: ColumnDefinition, index) => [column.name, Number(row[index] ?? 0)]));
}
