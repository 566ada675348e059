import { type HiveType, PROFILES, RAW_LOGS, sourceKey, type TableDefinition } from './tables.js';

/**
 * The analytics layer over the catalog's tables: views in the spirit of Localytics Direct Access (`fact_events`,
 * `fact_sessions`, `fact_session_closes`, `app_profiles`) and the everyday queries written against them. This is the
 * one definition: the stack turns it into Athena views and saved queries, the CLI's `query` runs it with DuckDB, and
 * the tests run the stack's copy over data the sync landed.
 *
 * The SQL keeps to what Athena (Trino) and DuckDB both read alike, with two exceptions on the DuckDB side: Athena's
 * `approx_percentile` is a macro there (`DUCKDB_PRESTO_FUNCTIONS`), and `current_date` becomes the caller's UTC day
 * (functions/adapters/duckdb-lake.ts, `asOf`).
 */

export type ViewColumnType = HiveType | 'date';

/** The JSON layer (the files as served) or the Parquet layer (their typed copy). */
export type Layer = 'json' | 'parquet';

/** The Glue table of a dataset on a layer: `raw_logs`, or its twin `raw_logs_parquet`. */
export function layerTableName(table: TableDefinition, layer: Layer): string {
  return layer === 'parquet' ? `${table.name}_parquet` : table.name;
}

export interface ViewColumn {
  readonly name: string;
  /** The Hive type of the value (the Glue column type; Athena's view type follows from it). */
  readonly type: ViewColumnType;
  /** Where the value comes from, for the documentation. */
  readonly source: string;
  /** Where its meaning may differ from Direct Access's column of the same name. */
  readonly note?: string;
}

export type ViewName = 'fact_events' | 'fact_sessions' | 'fact_session_closes' | 'app_profiles';

export interface AnalyticsView {
  readonly name: ViewName;
  readonly description: string;
  /** The table the view reads (its JSON table, or `<table>_parquet` on the Parquet layer). */
  readonly table: TableDefinition;
  readonly columns: readonly ViewColumn[];
  /** The view's SELECT over the table of that name. */
  readonly sql: (tableName: string) => string;
}

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** The raw-log row type each fact view keeps. */
const ROW_TYPES = { fact_events: 'e', fact_sessions: 's', fact_session_closes: 'c' } as const;

/** Raw-log fields renamed to their Direct Access names (the meaning is the same). */
const DIRECT_ACCESS_NAMES: Record<string, string> = { name: 'event_name', app_ver: 'app_version' };

/**
 * The UTC date of the row's time. `at` (UTC, `yyyy-MM-dd HH:mm:ss`) is in every row since v1, where `at_millis`
 * (the same instant) came with v1.1; TRY_CAST reads a malformed value as null instead of failing the query.
 */
const CLIENT_DATE = 'TRY_CAST(substr("at", 1, 10) AS date)';

function factView(name: keyof typeof ROW_TYPES, description: string): AnalyticsView {
  const type = ROW_TYPES[name];
  // Columns that only one kind of row carries stay in that row's view.
  const leftOut = new Set(['type', 'app', 'customer_ids']);
  if (type !== 'e') leftOut.add('name');
  if (type !== 's') leftOut.add('sec_since_last_session');
  const items: { readonly column: ViewColumn; readonly expression: string }[] = [
    {
      column: {
        name: 'app_id',
        type: 'string',
        source: 'partition `app_uuid` (the app of the export file)',
        note: "the export's app ID (`1bea53c5…-…`, a string), where Direct Access's tutorials use a number (`app_id=12345`)",
      },
      expression: quote('app_uuid'),
    },
    {
      column: {
        name: 'client_date',
        type: 'date',
        source: 'the date part of `at`',
        note: "the UTC date of the row's time, not the device's local date (`device_timezone` has the device's offset)",
      },
      expression: CLIENT_DATE,
    },
    ...RAW_LOGS.columns
      .filter((column) => !leftOut.has(column.name))
      .map((column) => ({
        column: {
          name: DIRECT_ACCESS_NAMES[column.name] ?? column.name,
          type: column.type,
          source: `\`${column.name}\``,
        },
        expression: quote(column.name),
      })),
    {
      column: { name: 'customer_id', type: 'string', source: '`customer_ids.customer_id`' },
      expression: 'customer_ids.customer_id',
    },
    {
      column: {
        name: 'dt',
        type: 'string',
        source: 'partition `dt` (the UTC day of the export hour)',
        note: 'not in Direct Access: filter on it (and `app_id`) so that Athena reads only those days; `client_date` is computed and prunes nothing',
      },
      expression: quote('dt'),
    },
    {
      column: { name: 'hour', type: 'int', source: 'partition `hour` (the UTC hour of the export file)' },
      expression: quote('hour'),
    },
  ];
  const select = items.map(({ column, expression }) =>
    expression === quote(column.name) ? expression : `${expression} AS ${quote(column.name)}`,
  );
  return {
    name,
    description,
    table: RAW_LOGS,
    columns: items.map((item) => item.column),
    sql: (tableName) => `SELECT ${select.join(', ')} FROM ${quote(tableName)} WHERE "type" = ${literal(type)}`,
  };
}

/** Direct Access's attribute types: `s` string, `i` integer, `d` date. */
const ATTRIBUTE_TYPES: Partial<Record<HiveType, string>> = { string: 's', int: 'i', bigint: 'i' };

/**
 * Profiles as entity-attribute-value rows, like Direct Access's `app_profiles`: one row per customer, attribute and
 * snapshot day, for every profile column that has a value. One SELECT per attribute, so that a filter on
 * `attribute_key` leaves Athena a single scan.
 */
function profilesView(): AnalyticsView {
  const customer = PROFILES.columns.find((column) => column.name === 'll_raw_customer_id');
  if (!customer) throw new Error('the profiles table has no ll_raw_customer_id column');
  const attributes = PROFILES.columns.filter(
    (column) => column !== customer && ATTRIBUTE_TYPES[column.type] !== undefined,
  );
  const columns: ViewColumn[] = [
    { name: 'profiledb_id', type: 'string', source: 'partition `profiledb_id`' },
    {
      name: 'customer_id',
      type: 'string',
      source: `\`${sourceKey(PROFILES, customer)}\``,
      note: 'the customer ID itself: Direct Access has a hashed one (and the raw one as the `_ll.raw_customer_id` attribute)',
    },
    {
      name: 'attribute_key',
      type: 'string',
      source: `the profile field's key: ${attributes.map((column) => `\`${sourceKey(PROFILES, column)}\``).join(', ')}`,
      note: 'only the fields that are columns of the profiles table (functions/core/tables.ts): add a column to add an attribute',
    },
    {
      name: 'attribute_type',
      type: 'string',
      source: 'the column type: `s` string, `i` integer',
    },
    { name: 'attribute_value', type: 'string', source: "the field's value, as text" },
    {
      name: 'dt',
      type: 'string',
      source: 'partition `dt` (the day of the snapshot)',
      note: 'Direct Access keeps the current profile; here every daily snapshot is kept: filter on one `dt`',
    },
  ];
  return {
    name: 'app_profiles',
    description: 'Profile attributes as rows (entity-attribute-value), one per customer, attribute and snapshot day',
    table: PROFILES,
    columns,
    sql: (tableName) =>
      attributes
        .map((column) => {
          const value = column.type === 'string' ? quote(column.name) : `CAST(${quote(column.name)} AS varchar)`;
          return (
            `SELECT "profiledb_id", ${quote(customer.name)} AS "customer_id", ` +
            `CAST(${literal(sourceKey(PROFILES, column))} AS varchar) AS "attribute_key", ` +
            `CAST(${literal(ATTRIBUTE_TYPES[column.type] as string)} AS varchar) AS "attribute_type", ` +
            `${value} AS "attribute_value", "dt" FROM ${quote(tableName)} WHERE ${quote(column.name)} IS NOT NULL`
          );
        })
        .join(' UNION ALL '),
  };
}

export const ANALYTICS_VIEWS: readonly AnalyticsView[] = [
  factView('fact_events', 'Localytics events (raw log rows of type e), Direct Access style'),
  factView('fact_sessions', 'Localytics session starts (raw log rows of type s), Direct Access style'),
  factView('fact_session_closes', 'Localytics session closes (raw log rows of type c), Direct Access style'),
  profilesView(),
];

export type QueryParameterName = 'app' | 'from' | 'to' | 'event' | 'profiledb' | 'day' | 'attribute';

export interface SavedQuery {
  /** Short name, for the CLI (`localytics-sync query events-by-name`). */
  readonly name: string;
  /** The saved query's name in Athena, and the SQL's first line. */
  readonly title: string;
  readonly description: string;
  /** The value of each `?` of the SQL, in order. */
  readonly parameters: readonly QueryParameterName[];
  readonly views: readonly ViewName[];
  readonly sql: string;
}

/** What each parameter is, as Athena's console asks for it (a quoted literal). */
export const QUERY_PARAMETERS: Record<QueryParameterName, string> = {
  app: "app ID, e.g. '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8'",
  from: "first day (UTC), e.g. '2026-11-01'",
  to: "last day (UTC), e.g. '2026-11-30'",
  event: "event name, e.g. 'viewForecast'",
  profiledb: "profile database ID, e.g. '6012'",
  day: "snapshot day, e.g. '2026-11-30'",
  attribute: "attribute key, e.g. 'favorite_place'",
};

function savedQuery(query: Omit<SavedQuery, 'sql'> & { readonly body: string }): SavedQuery {
  const { body, ...rest } = query;
  const marks = body.split('?').length - 1;
  if (marks !== query.parameters.length) {
    throw new Error(`saved query ${query.name}: ${marks} ? marks for ${query.parameters.length} parameters`);
  }
  return { ...rest, sql: `-- ${query.title}\n${body.trim()}` };
}

/** Direct Access's tutorials, against the views. Filters on `app_id` and `dt` prune partitions. */
export const SAVED_QUERIES: readonly SavedQuery[] = [
  savedQuery({
    name: 'events-by-name',
    title: 'Events by name over 30 days',
    description: 'How often each event fired in the last 30 days (UTC), and on how many devices.',
    parameters: ['app'],
    views: ['fact_events'],
    body: `
SELECT event_name, COUNT(*) AS occurrences, COUNT(DISTINCT device_uuid) AS devices
FROM fact_events
WHERE app_id = ?
  AND dt >= CAST(CAST(current_date - INTERVAL '30' DAY AS date) AS varchar)
GROUP BY event_name
ORDER BY occurrences DESC, event_name`,
  }),
  savedQuery({
    name: 'event-trend',
    title: "An event's trend per day",
    description: 'Occurrences of one event per day, and the devices it fired on.',
    parameters: ['app', 'event', 'from', 'to'],
    views: ['fact_events'],
    body: `
SELECT client_date, COUNT(*) AS occurrences, COUNT(DISTINCT device_uuid) AS devices
FROM fact_events
WHERE app_id = ? AND event_name = ? AND dt BETWEEN ? AND ?
GROUP BY client_date
ORDER BY client_date`,
  }),
  savedQuery({
    name: 'devices-per-day',
    title: 'Unique devices per day',
    description: 'Devices that started at least one session, per day.',
    parameters: ['app', 'from', 'to'],
    views: ['fact_sessions'],
    body: `
SELECT client_date, COUNT(DISTINCT device_uuid) AS devices
FROM fact_sessions
WHERE app_id = ? AND dt BETWEEN ? AND ?
GROUP BY client_date
ORDER BY client_date`,
  }),
  savedQuery({
    name: 'sessions-per-day',
    title: 'Sessions per day and their median length',
    description:
      'Sessions started per day; of those with a close on the same day, how many and their median length (the time from start to close).',
    parameters: ['app', 'from', 'to'],
    views: ['fact_sessions', 'fact_session_closes'],
    body: `
SELECT s.client_date,
       COUNT(DISTINCT s.session_uuid) AS sessions,
       COUNT(DISTINCT c.session_uuid) AS closed_sessions,
       approx_percentile(CAST(c.closed_at - s.at_millis AS double) / 1000, 0.5) AS median_length_seconds
FROM fact_sessions s
LEFT JOIN (
  SELECT app_id, dt, session_uuid, max(at_millis) AS closed_at
  FROM fact_session_closes
  GROUP BY app_id, dt, session_uuid
) c ON c.app_id = s.app_id AND c.dt = s.dt AND c.session_uuid = s.session_uuid
WHERE s.app_id = ? AND s.dt BETWEEN ? AND ?
GROUP BY s.client_date
ORDER BY s.client_date`,
  }),
  savedQuery({
    name: 'profile-attribute',
    title: "A profile attribute's distribution",
    description: 'How many customers have each value of one profile attribute, in one daily snapshot.',
    parameters: ['profiledb', 'day', 'attribute'],
    views: ['app_profiles'],
    body: `
SELECT attribute_value, COUNT(DISTINCT customer_id) AS customers
FROM app_profiles
WHERE profiledb_id = ? AND dt = ? AND attribute_key = ?
GROUP BY attribute_value
ORDER BY customers DESC, attribute_value`,
  }),
];

/**
 * Athena functions the saved queries use that DuckDB spells differently, as DuckDB macros. Athena's
 * `approx_percentile` is approximate; DuckDB's `quantile_disc` is the exact value at that rank of the sorted values.
 */
export const DUCKDB_PRESTO_FUNCTIONS = ['CREATE MACRO approx_percentile(x, p) AS quantile_disc(x, p)'];
