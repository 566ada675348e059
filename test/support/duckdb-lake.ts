import { DuckDbLake, type Layer } from '../../functions/adapters/duckdb-lake.js';

export type { Layer } from '../../functions/adapters/duckdb-lake.js';

/**
 * DuckDB views over a synced destination directory, built from the same table definitions as the Glue catalog
 * (`functions/adapters/duckdb-lake.ts`). `json` reads the JSON layer as the JSON tables do; `parquet` reads the
 * Parquet layer as the `<table>_parquet` tables do, under the same view names (`raw_logs`, ...), so that one query
 * runs against either.
 */
export async function openLake(root: string, layer: Layer = 'json') {
  return DuckDbLake.open(root, { layer, glueNames: false, analyticsViews: false });
}

/** The SQL blocks of a Markdown document that start with a `-- title` comment line. */
export function sqlBlocks(markdown: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const match of markdown.matchAll(/```sql\n-- (.+)\n([\s\S]*?)```/g)) {
    blocks.set((match[1] as string).trim(), (match[2] as string).trim().replace(/;$/, ''));
  }
  return blocks;
}
