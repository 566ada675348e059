import { PARQUET_FOLDER, TABLES, type TableDefinition } from './tables.js';

/**
 * The Parquet layer: one typed Parquet file per JSON data object, derived from it and rebuildable. The JSON layer stays
 * the record of truth (it keeps every field); this module knows how the two layers' keys relate.
 */

/** A JSON data object of one of the tables, and the key of its Parquet twin. */
export interface ParquetTarget {
  readonly table: TableDefinition;
  /** The JSON data object (`raw_logs/app_uuid=.../x.json.gz`), relative to the destination prefix. */
  readonly jsonKey: string;
  /** `parquet/<table>/<the same partition folders>/<the same base name>.parquet`. */
  readonly parquetKey: string;
}

/** A key segment that cannot climb out of its folder or hide (no leading dot). */
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * The Parquet target of a JSON data key, or undefined when the key is not a data object of a table (state records,
 * temp files, anything unexpected): its folder is a table's, followed by exactly that table's partition folders
 * (`name=value`, in order) and a `.json.gz` file name.
 */
export function parquetTargetOf(jsonKey: string): ParquetTarget | undefined {
  const segments = jsonKey.split('/');
  const table = TABLES.find((candidate) => candidate.folder === segments[0]);
  if (!table || segments.length !== table.partitions.length + 2) return undefined;
  for (const [index, partition] of table.partitions.entries()) {
    const segment = segments[index + 1] as string;
    const prefix = `${partition.name}=`;
    if (!segment.startsWith(prefix) || !SEGMENT.test(segment.slice(prefix.length))) return undefined;
  }
  const file = segments.at(-1) as string;
  if (!file.endsWith('.json.gz') || !SEGMENT.test(file)) return undefined;
  const base = file.slice(0, -'.json.gz'.length);
  if (base.length === 0) return undefined;
  const parquetKey = [PARQUET_FOLDER, ...segments.slice(0, -1), `${base}.parquet`].join('/');
  return { table, jsonKey, parquetKey };
}

/** The folder of a table's Parquet files (`parquet/raw_logs/`). */
export function parquetTableFolder(table: TableDefinition): string {
  return `${PARQUET_FOLDER}/${table.folder}/`;
}
