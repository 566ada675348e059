import { opendir } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import {
  ANALYTICS_VIEWS,
  type AnalyticsView,
  DUCKDB_PRESTO_FUNCTIONS,
  type Layer,
  layerTableName,
} from '../core/analytics.js';
import { PARQUET_FOLDER, sourceKey, TABLES, type TableDefinition } from '../core/tables.js';
import { DUCKDB_TYPES, quoteLiteral as literal, quoteIdentifier as quote } from './duckdb-parquet-encoder.js';

export type { Layer } from '../core/analytics.js';

/** The table's rows, as the Glue table of that layer reads them: its columns, then its partition columns. */
function tableSource(root: string, table: TableDefinition, layer: Layer): string {
  const folders = table.partitions.map(() => '*').join('/');
  const partitions = table.partitions.map((partition) =>
    partition.type === 'int'
      ? `CAST(${quote(partition.name)} AS INTEGER) AS ${quote(partition.name)}`
      : quote(partition.name),
  );
  if (layer === 'parquet') {
    const glob = `${root}/${PARQUET_FOLDER}/${table.folder}/${folders}/*.parquet`;
    const select = [...table.columns.map((column) => quote(column.name)), ...partitions];
    return `SELECT ${select.join(', ')} FROM read_parquet(${literal(glob)}, hive_partitioning = true, hive_types_autocast = false)`;
  }
  const columns = table.columns.map(
    (column) => `${literal(sourceKey(table, column))}: ${literal(DUCKDB_TYPES[column.type])}`,
  );
  const glob = `${root}/${table.folder}/${folders}/*.json.gz`;
  const select = [
    ...table.columns.map((column) => `${quote(sourceKey(table, column))} AS ${quote(column.name)}`),
    ...partitions,
  ];
  return (
    `SELECT ${select.join(', ')} FROM read_json(${literal(glob)}, format = 'newline_delimited', ` +
    `hive_partitioning = true, hive_types_autocast = false, ignore_errors = true, columns = {${columns.join(', ')}})`
  );
}

export interface DuckDbLakeOptions {
  readonly layer: Layer;
  /**
   * Name each table as the Glue catalog does (`raw_logs_parquet` on the Parquet layer), or by its JSON table's name
   * on both layers (so that one query runs against either). Default: the Glue names.
   */
  readonly glueNames?: boolean;
  /** Also create the analytics views over the layer's tables. Default: true. */
  readonly analyticsViews?: boolean;
}

/**
 * DuckDB over a local destination directory, standing in for Athena: the catalog's tables of one layer as DuckDB
 * views built from the same table definitions as the Glue catalog (the same columns, dotted keys mapped, partition
 * columns, malformed lines read as nulls, DuckDB's JSON reader with the table's types standing in for Athena's JSON
 * SerDe), the Athena functions the saved queries use, and the analytics views. Tables with no file yet are left
 * out, and so are the views over them.
 */
export class DuckDbLake {
  /** The tables and analytics views defined, by name. */
  readonly relations = new Set<string>();

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
  ) {}

  static async open(root: string, options: DuckDbLakeOptions): Promise<DuckDbLake> {
    // Loaded on first use, like the Parquet writer: native code that commands without DuckDB never load.
    const { DuckDBInstance } = await import('@duckdb/node-api');
    // No extension is fetched from the network.
    const instance = await DuckDBInstance.create(':memory:', {
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
    const lake = new DuckDbLake(instance, await instance.connect());
    try {
      // UTC like Athena, whatever the machine's zone (casts between dates and timestamps).
      await lake.connection.run("SET TimeZone = 'UTC'");
      for (const statement of DUCKDB_PRESTO_FUNCTIONS) await lake.connection.run(statement);
      const glueNames = options.glueNames ?? true;
      for (const table of TABLES) {
        const folder =
          options.layer === 'parquet' ? path.join(root, PARQUET_FOLDER, table.folder) : path.join(root, table.folder);
        if (!(await holdsFile(folder, options.layer === 'parquet' ? '.parquet' : '.json.gz'))) continue;
        const name = glueNames ? layerTableName(table, options.layer) : table.name;
        await lake.run(`CREATE VIEW ${quote(name)} AS ${tableSource(root, table, options.layer)}`);
        lake.relations.add(name);
      }
      if (options.analyticsViews ?? true) {
        for (const view of ANALYTICS_VIEWS) {
          const source = layerTableName(view.table, options.layer);
          if (!lake.relations.has(source)) continue;
          await lake.createView(view, source);
        }
      }
      return lake;
    } catch (error) {
      lake.close();
      throw error;
    }
  }

  private async createView(view: AnalyticsView, source: string): Promise<void> {
    await this.run(`CREATE VIEW ${quote(view.name)} AS ${view.sql(source)}`);
    this.relations.add(view.name);
  }

  async run(sql: string): Promise<void> {
    await this.connection.run(sql);
  }

  /** The rows of a query (`?` marks bound to `parameters`), as JSON values (BIGINT as strings). */
  async query(sql: string, parameters: readonly string[] = []): Promise<Record<string, unknown>[]> {
    const reader = await this.connection.runAndReadAll(sql, parameters.length ? [...parameters] : undefined);
    return reader.getRowObjectsJson() as Record<string, unknown>[];
  }

  /**
   * A saved query, with its `?` marks bound in order. `current_date` is `today` (a UTC day, `YYYY-MM-DD`): Athena's
   * is the UTC date when the query runs; here the caller's clock decides.
   */
  runSavedQuery(sql: string, parameters: readonly string[], today: string): Promise<Record<string, unknown>[]> {
    return this.query(asOf(sql, today), parameters);
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }
}

/** A saved query's SQL with `current_date` as the given UTC day (`YYYY-MM-DD`). */
export function asOf(sql: string, today: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(today)) throw new Error(`today "${today}" is not YYYY-MM-DD`);
  return sql.replace(/\bcurrent_date\b/gi, `DATE ${literal(today)}`);
}

/** Whether the folder holds a file with that suffix at any depth (stops at the first). */
async function holdsFile(folder: string, suffix: string): Promise<boolean> {
  let dir: Awaited<ReturnType<typeof opendir>>;
  try {
    dir = await opendir(folder);
  } catch {
    return false;
  }
  // Leaving the loop early closes the directory.
  for await (const entry of dir) {
    if (entry.isFile() && entry.name.endsWith(suffix) && !entry.name.startsWith('.')) return true;
    if (entry.isDirectory() && (await holdsFile(path.join(folder, entry.name), suffix))) return true;
  }
  return false;
}
