import { DuckDBInstance } from '@duckdb/node-api';
import {
  DUCKDB_TYPES,
  quoteLiteral as literal,
  quoteIdentifier as quote,
} from '../../functions/adapters/duckdb-parquet-encoder.js';
import { PARQUET_FOLDER, sourceKey, TABLES, type TableDefinition } from '../../functions/core/tables.js';

export type Layer = 'json' | 'parquet';

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

/**
 * DuckDB views over a synced destination directory, built from the same table definitions as the Glue catalog: the
 * same columns (dotted keys mapped), the same partition columns, malformed lines read as nulls. `json` reads the
 * JSON layer as the JSON tables do; `parquet` reads the Parquet layer as the `<table>_parquet` tables do, under the
 * same view names, so that one query runs against either.
 */
export async function openLake(root: string, layer: Layer = 'json') {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  for (const table of TABLES) {
    await connection.run(`CREATE VIEW ${table.name} AS ${tableSource(root, table, layer)}`);
  }
  return {
    async query(sql: string): Promise<Record<string, unknown>[]> {
      const reader = await connection.runAndReadAll(sql);
      return reader.getRowObjectsJson() as Record<string, unknown>[];
    },
    close() {
      connection.closeSync();
    },
  };
}

/** The SQL blocks of a Markdown document that start with a `-- title` comment line. */
export function sqlBlocks(markdown: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const match of markdown.matchAll(/```sql\n-- (.+)\n([\s\S]*?)```/g)) {
    blocks.set((match[1] as string).trim(), (match[2] as string).trim().replace(/;$/, ''));
  }
  return blocks;
}
