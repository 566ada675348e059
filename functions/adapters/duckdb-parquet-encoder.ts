import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { ColumnDefinition, HiveType, TableDefinition } from '../../lib/catalog/tables.js';
import { sourceKey } from '../../lib/catalog/tables.js';
import {
  ParquetEncodeError,
  type ParquetEncodeRequest,
  type ParquetEncodeResult,
  type ParquetEncoder,
} from '../core/convert-file.js';
import { describeError } from '../core/redact.js';

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
}

/**
 * The Parquet writer: DuckDB (`@duckdb/node-api`), native code that reads the gzip JSON lines itself, sorts out of
 * core within a memory limit (spilling to the scratch directory) and writes ZSTD-compressed Parquet. A fresh
 * in-memory database per file, so nothing is kept between files. Loaded on first use: `sync` without `--parquet`
 * never loads the native module.
 */
export class DuckDbParquetEncoder implements ParquetEncoder {
  constructor(private readonly options: DuckDbParquetEncoderOptions = {}) {}

  async encode(request: ParquetEncodeRequest): Promise<ParquetEncodeResult> {
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const settings: Record<string, string> = {
      memory_limit: `${this.options.memoryLimitMiB ?? 512}MB`,
      temp_directory: path.join(request.scratchDir, 'spill'),
      preserve_insertion_order: 'true',
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    };
    if (this.options.threads) settings.threads = String(this.options.threads);
    let instance: Awaited<ReturnType<typeof DuckDBInstance.create>>;
    try {
      instance = await DuckDBInstance.create(':memory:', settings);
    } catch (error) {
      throw new ParquetEncodeError(`could not start DuckDB: ${describeError(error)}`, { cause: error });
    }
    const connection = await instance.connect();
    const onAbort = () => connection.interrupt();
    request.signal?.addEventListener('abort', onAbort);
    try {
      return await this.encodeWith(connection, request);
    } catch (error) {
      throw new ParquetEncodeError(`converting to Parquet failed: ${describeError(error)}`, { cause: error });
    } finally {
      request.signal?.removeEventListener('abort', onAbort);
      connection.closeSync();
      instance.closeSync();
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
