import { DuckDBInstance } from '@duckdb/node-api';
import type { ColumnDefinition, HiveType, TableDefinition } from '../../lib/catalog/tables.js';
import { TABLES } from '../../lib/catalog/tables.js';

const DUCKDB_TYPES: Record<HiveType, string> = {
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

function sourceKey(table: TableDefinition, column: ColumnDefinition): string {
  return column.jsonKey ?? (table.upperCaseKeys ? column.name.toUpperCase() : column.name);
}

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/**
 * DuckDB views over a synced destination directory, built from the same table definitions as the Glue catalog: the
 * same columns (dotted keys mapped), the same partition columns, malformed lines read as nulls.
 */
export async function openLake(root: string) {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  for (const table of TABLES) {
    const columns = table.columns.map(
      (column) => `${literal(sourceKey(table, column))}: ${literal(DUCKDB_TYPES[column.type])}`,
    );
    const glob = `${root}/${table.folder}/${table.partitions.map(() => '*').join('/')}/*.json.gz`;
    const select = [
      ...table.columns.map((column) => `${quote(sourceKey(table, column))} AS ${quote(column.name)}`),
      ...table.partitions.map((partition) =>
        partition.type === 'int'
          ? `CAST(${quote(partition.name)} AS INTEGER) AS ${quote(partition.name)}`
          : quote(partition.name),
      ),
    ];
    await connection.run(
      `CREATE VIEW ${table.name} AS SELECT ${select.join(', ')} FROM read_json(${literal(glob)}, format = 'newline_delimited', ` +
        `hive_partitioning = true, hive_types_autocast = false, ignore_errors = true, columns = {${columns.join(', ')}})`,
    );
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
