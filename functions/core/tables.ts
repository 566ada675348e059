/**
 * The one schema definition of the data lake's tables. The Glue catalog (Athena) is generated from it, and the tests
 * build DuckDB views from it to run the README's queries over data landed by the real sync.
 */

/** Hive types used by the tables (Athena DDL spelling). */
export type HiveType =
  | 'string'
  | 'int'
  | 'bigint'
  | 'double'
  | 'boolean'
  | 'map<string,string>'
  | 'array<string>'
  | 'struct<customer_id:string>'
  | 'struct<attributes:array<string>>';

export interface ColumnDefinition {
  readonly name: string;
  readonly type: HiveType;
  /** The JSON key when it is not the column name (dotted keys such as `_ll.language`). */
  readonly jsonKey?: string;
  readonly comment?: string;
}

export type PartitionProjection =
  /** The values are the configured app IDs. */
  | { readonly type: 'apps' }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  | { readonly type: 'date' }
  | { readonly type: 'hour' }
  /** Queries must name the value (ids unknown at deploy time, e.g. audience_id = '153829'). */
  | { readonly type: 'injected' };

export interface PartitionDefinition {
  readonly name: string;
  readonly type: 'string' | 'int';
  readonly projection: PartitionProjection;
}

export interface TableDefinition {
  readonly name: 'raw_logs' | 'audiences' | 'profiles' | 'profile_changes';
  readonly description: string;
  /** Folder under the key prefix; partitions follow as `name=value/` segments. */
  readonly folder: string;
  readonly columns: readonly ColumnDefinition[];
  readonly partitions: readonly PartitionDefinition[];
  /** The files' keys are the upper-case column names (`{"IDFA": ...}`): Athena's JSON SerDe matches them case-insensitively. */
  readonly upperCaseKeys?: boolean;
  /** Parquet layer: rows of each file are sorted by these columns (nulls last), so readers can skip row groups. */
  readonly sortBy?: readonly string[];
}

/** The Parquet layer lives under this folder of the key prefix, one table folder per table (`parquet/raw_logs/...`). */
export const PARQUET_FOLDER = 'parquet';

/** The JSON key of a column in the exported files: its `jsonKey`, or its name (upper case in audience files). */
export function sourceKey(table: TableDefinition, column: ColumnDefinition): string {
  return column.jsonKey ?? (table.upperCaseKeys ? column.name.toUpperCase() : column.name);
}

const dt: PartitionDefinition = { name: 'dt', type: 'string', projection: { type: 'date' } };

/**
 * Raw log rows: the fields of the documentation's sample row, plus `at_millis` (v1.1) and `push_status` (v1.2).
 * The JSON SerDe ignores keys that are not columns, so fields Localytics adds later do not break queries; add a
 * column here to query one.
 */
export const RAW_LOGS: TableDefinition = {
  name: 'raw_logs',
  description: 'Localytics raw log rows (events, sessions, closes), one file per app and UTC hour',
  folder: 'raw_logs',
  columns: [
    { name: 'type', type: 'string', comment: 'e = event, s = session start, c = close' },
    { name: 'name', type: 'string', comment: 'event name (type e)' },
    { name: 'at', type: 'string', comment: 'UTC time, yyyy-MM-dd HH:mm:ss' },
    { name: 'at_millis', type: 'bigint', comment: 'UTC epoch milliseconds (v1.1)' },
    { name: 'uuid', type: 'string' },
    { name: 'session_uuid', type: 'string' },
    { name: 'sec_since_last_session', type: 'bigint' },
    { name: 'nth', type: 'int' },
    { name: 'app', type: 'string' },
    { name: 'device_uuid', type: 'string' },
    { name: 'install_uuid', type: 'string' },
    { name: 'advertising_id', type: 'string' },
    { name: 'limit_advertising', type: 'boolean' },
    { name: 'customer_ids', type: 'struct<customer_id:string>' },
    { name: 'user_type', type: 'string' },
    { name: 'birth_date', type: 'bigint' },
    { name: 'os_ver', type: 'string' },
    { name: 'model', type: 'string' },
    { name: 'platform', type: 'string' },
    { name: 'browser', type: 'string' },
    { name: 'carrier', type: 'string' },
    { name: 'jailbroken', type: 'boolean' },
    { name: 'device_new', type: 'boolean' },
    { name: 'device_timezone', type: 'int' },
    { name: 'country', type: 'string' },
    { name: 'language', type: 'string' },
    { name: 'lat', type: 'double' },
    { name: 'lng', type: 'double' },
    { name: 'app_ver', type: 'string' },
    { name: 'bundle_id', type: 'string' },
    { name: 'library_ver', type: 'string' },
    { name: 'push_status', type: 'string', comment: 'v1.2' },
  ],
  partitions: [
    { name: 'app_uuid', type: 'string', projection: { type: 'apps' } },
    dt,
    { name: 'hour', type: 'int', projection: { type: 'hour' } },
  ],
  // uuid breaks ties, so that a file always converts to the same bytes.
  sortBy: ['at_millis', 'uuid'],
};

/** Audience members: one identifier per row; the file's key is upper case (`{"IDFA": ...}`), matched case-insensitively. */
export const AUDIENCES: TableDefinition = {
  name: 'audiences',
  description: 'Localytics audience exports: one identifier per row, one file per audience, identifier type and day',
  folder: 'audiences',
  upperCaseKeys: true,
  columns: [
    { name: 'idfa', type: 'string' },
    { name: 'gaid', type: 'string' },
    { name: 'email', type: 'string' },
    { name: 'customer_id', type: 'string' },
  ],
  partitions: [
    { name: 'audience_id', type: 'string', projection: { type: 'injected' } },
    {
      name: 'identifier_type',
      type: 'string',
      projection: { type: 'enum', values: ['idfa', 'gaid', 'email', 'customer_id'] },
    },
    dt,
  ],
};

/** Full profile snapshots. Profile attributes are the customer's own: add columns for the ones you use. */
export const PROFILES: TableDefinition = {
  name: 'profiles',
  description: 'Localytics profile exports: one full snapshot per profile database and day',
  folder: 'profiles',
  columns: [
    { name: 'll_raw_customer_id', type: 'string', jsonKey: '_ll.raw_customer_id' },
    { name: 'll_email', type: 'string', jsonKey: '_ll.email' },
    { name: 'll_language', type: 'string', jsonKey: '_ll.language' },
    { name: 'll_country', type: 'string', jsonKey: '_ll.country' },
    { name: 'favorite_place', type: 'string' },
  ],
  partitions: [{ name: 'profiledb_id', type: 'string', projection: { type: 'injected' } }, dt],
};

/** Profile change sets: `profile` identifies the customer, `updates` and `deletes` are what changed. */
export const PROFILE_CHANGES: TableDefinition = {
  name: 'profile_changes',
  description: 'Localytics profile change sets (profile_changes), one file per change set pulled',
  folder: 'profile_changes',
  columns: [
    { name: 'profile', type: 'map<string,string>', comment: "e.g. profile['_ll.raw_customer_id']" },
    { name: 'updates', type: 'map<string,string>' },
    { name: 'deletes', type: 'struct<attributes:array<string>>' },
  ],
  partitions: [{ name: 'profiledb_id', type: 'string', projection: { type: 'injected' } }, dt],
};

export const TABLES: readonly TableDefinition[] = [RAW_LOGS, AUDIENCES, PROFILES, PROFILE_CHANGES];
