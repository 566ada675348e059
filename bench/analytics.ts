/**
 * Group 7: what the saved queries cost in Athena, which bills the bytes it reads. Over a day of the convert group's
 * logs (one app, 24 hours) and a profile snapshot of the same devices, each saved query runs in DuckDB on both
 * layers (same answer required), and the bytes a query reads are counted per table scan of its plan: from the JSON
 * layer every byte of every gzip file of the table (Athena reads a JSON file whole), from the Parquet layer the
 * footer of each file and the column chunks of the columns the scan reads (its projections and filters).
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { asOf, DuckDbLake, type Layer } from '../functions/adapters/duckdb-lake.js';
import { quoteLiteral } from '../functions/adapters/duckdb-parquet-encoder.js';
import { ANALYTICS_VIEWS, SAVED_QUERIES, type SavedQuery } from '../functions/core/analytics.js';
import { formatDate } from '../functions/core/hours.js';
import { dataKey } from '../functions/core/jobs.js';
import { PARQUET_FOLDER, TABLES, type TableDefinition } from '../functions/core/tables.js';
import { DEFAULT_DATASET, GENERATION_HOUR_UTC, profileRows, serializeRows } from '../functions/simulator/dataset.js';
import { APP, DAY, filesUnder, footerBytes, generatedDay, lakeWith } from './convert.js';
import { fixed, type GroupResult, infoRow, newGroup, table, targetRow } from './report.js';
import { CLI } from './services.js';
import { MiB, progress, timedOk } from './support.js';

export interface AnalyticsBenchOptions {
  /** Rows of each of the 24 hours of the day (the convert group's day). */
  readonly dayRowsPerHour: number;
  readonly tmpRoot: string;
}

const DAY_TEXT = formatDate(DAY);
const PROFILE_DB = '6012';
/** The value of each parameter: the day's app, the day itself, an event and an attribute the data has. */
const PARAMETERS = {
  app: APP,
  from: DAY_TEXT,
  to: DAY_TEXT,
  event: 'viewForecast',
  profiledb: PROFILE_DB,
  day: DAY_TEXT,
  attribute: 'favorite_place',
} as const;

interface Scan {
  readonly table: TableDefinition;
  /** Columns of the file the scan reads (partition columns are not in the files). */
  readonly columns: readonly string[];
}

interface QueryCost {
  readonly query: SavedQuery;
  readonly scans: readonly Scan[];
  readonly jsonBytes: number;
  readonly parquetBytes: number;
  readonly rows: number;
  readonly sameAnswer: boolean;
}

export async function benchAnalytics(options: AnalyticsBenchOptions): Promise<GroupResult> {
  const group = newGroup('7. Saved queries: bytes read');
  progress(`analytics: a day of logs (${options.dayRowsPerHour} rows per hour) and a profile snapshot`);
  const lake = path.join(options.tmpRoot, 'analytics-day');
  await lakeWith(lake, await generatedDay(options.dayRowsPerHour));
  const devicesPerApp = 5000;
  const profiles = profileRows(
    { ...DEFAULT_DATASET, devicesPerApp },
    PROFILE_DB,
    DAY + GENERATION_HOUR_UTC * 3_600_000,
  );
  const profileKey = dataKey({
    kind: 'profile',
    profileDbId: PROFILE_DB,
    generatedAt: DAY + GENERATION_HOUR_UTC * 3_600_000,
  });
  await mkdir(path.dirname(path.join(lake, profileKey)), { recursive: true });
  await writeFile(path.join(lake, profileKey), gzipSync(serializeRows(profiles), { level: 6 }));
  const converted = await timedOk(process.execPath, [CLI, 'convert', '--dest', lake, '--json']);
  const summary = JSON.parse(converted.stdout) as { converted: number; failed: unknown[] };
  if (summary.converted !== 25 || summary.failed.length > 0) {
    throw new Error(`convert: ${summary.converted} of 25 files converted, ${summary.failed.length} failed`);
  }
  const costs = await queryCosts(lake);
  const logBytes = await tableBytes(lake, 'raw_logs');
  const profileBytes = await tableBytes(lake, 'profiles');
  for (const cost of costs) {
    group.rows.push(
      infoRow(
        `${cost.query.title} (${cost.query.name}): bytes read, Parquet ÷ gzip JSON`,
        `${fixed(cost.parquetBytes / MiB, 2)} ÷ ${fixed(cost.jsonBytes / MiB, 2)} MiB = ${fixed((100 * cost.parquetBytes) / cost.jsonBytes)} %`,
      ),
    );
  }
  const same = costs.every((cost) => cost.sameAnswer && cost.rows > 0);
  group.rows.push(
    targetRow(
      'each saved query answers the same on both layers (and with rows)',
      same ? 'identical' : 'DIFFERENT',
      same ? 1 : 0,
      '==',
      1,
      'identical',
    ),
  );
  group.details.push(
    table(
      ['Saved query', 'Table scans: columns read from Parquet', 'JSON MiB', 'Parquet MiB', 'Parquet ÷ JSON', 'Rows'],
      costs.map((cost) => [
        cost.query.name,
        cost.scans.map((scan) => `${scan.table.name}: ${scan.columns.join(', ')}`).join('; '),
        fixed(cost.jsonBytes / MiB, 2),
        fixed(cost.parquetBytes / MiB, 3),
        `${fixed((100 * cost.parquetBytes) / cost.jsonBytes)} %`,
        String(cost.rows),
      ]),
    ),
  );
  group.notes.push(
    `The day: ${APP}, ${DAY_TEXT}, 24 log files of ${options.dayRowsPerHour.toLocaleString('en-US')} rows (the convert group's day, 5,000 devices): ${fixed(logBytes.json / MiB, 2)} MiB of gzip JSON, ${fixed(logBytes.parquet / MiB, 2)} MiB of Parquet. The profile snapshot: ${profiles.length.toLocaleString('en-US')} customers (2 apps × 5,000 devices, the known ones), ${fixed(profileBytes.json / MiB, 2)} MiB of gzip JSON, ${fixed(profileBytes.parquet / MiB, 2)} MiB of Parquet.`,
    `Parameters: app ${APP}, days ${DAY_TEXT} to ${DAY_TEXT} (the 30-day query: the 30 days up to ${DAY_TEXT}), event ${PARAMETERS.event}, profile database ${PROFILE_DB}, snapshot ${DAY_TEXT}, attribute ${PARAMETERS.attribute}. The lake holds only what the filters select, so every file of a scanned table is in its partitions.`,
    "Bytes read: DuckDB plans each query over the views (EXPLAIN); every READ_JSON or READ_PARQUET node is a table scan. A JSON scan reads the table's gzip files whole; a Parquet scan reads each file's footer (length from the last 8 bytes) and the column chunks (total_compressed_size, dictionary pages included) of its projected and filtered columns. A query that reads a view twice (sessions-per-day joins starts and closes) scans the table twice in Athena too. Athena may read less from Parquet (row groups skipped by statistics); this counts whole column chunks.",
  );
  return group;
}

async function queryCosts(root: string): Promise<QueryCost[]> {
  const lakes = {
    json: await DuckDbLake.open(root, { layer: 'json' }),
    parquet: await DuckDbLake.open(root, { layer: 'parquet' }),
  } satisfies Record<Layer, DuckDbLake>;
  const files = await parquetColumnBytes(root);
  try {
    const costs: QueryCost[] = [];
    for (const query of SAVED_QUERIES) {
      const parameters = query.parameters.map((name) => PARAMETERS[name]);
      const json = await lakes.json.runSavedQuery(query.sql, parameters, DAY_TEXT);
      const parquet = await lakes.parquet.runSavedQuery(query.sql, parameters, DAY_TEXT);
      const jsonScans = await scansOf(lakes.json, query, parameters, 'json');
      const parquetScans = await scansOf(lakes.parquet, query, parameters, 'parquet');
      let jsonBytes = 0;
      for (const scan of jsonScans) jsonBytes += (await tableBytes(root, scan.table.name)).json;
      let parquetBytes = 0;
      for (const scan of parquetScans) {
        for (const file of files.get(scan.table.name) ?? []) {
          parquetBytes += file.footer;
          for (const column of scan.columns) parquetBytes += file.columns.get(column) ?? 0;
        }
      }
      costs.push({
        query,
        scans: parquetScans,
        jsonBytes,
        parquetBytes,
        rows: json.length,
        sameAnswer: JSON.stringify(json) === JSON.stringify(parquet) && jsonScans.length === parquetScans.length,
      });
    }
    return costs;
  } finally {
    lakes.json.close();
    lakes.parquet.close();
  }
}

interface PlanNode {
  readonly name: string;
  readonly extra_info?: Record<string, string | string[]>;
  readonly children?: readonly PlanNode[];
}

/** The table scans of a query's plan, with the file columns each reads. */
async function scansOf(
  lake: DuckDbLake,
  query: SavedQuery,
  parameters: readonly string[],
  layer: Layer,
): Promise<Scan[]> {
  const [plan] = await lake.query(`EXPLAIN (FORMAT JSON) ${asOf(query.sql, DAY_TEXT)}`, parameters);
  const nodes: PlanNode[] = JSON.parse(plan?.explain_value as string);
  const scans: Scan[] = [];
  const visit = (node: PlanNode) => {
    if (node.name === (layer === 'json' ? 'READ_JSON' : 'READ_PARQUET')) {
      const text = [node.extra_info?.Projections, node.extra_info?.Filters].flat().filter(Boolean).join(' ');
      const words = new Set(text.match(/[A-Za-z_.][A-Za-z0-9_.]*/g) ?? []);
      const tables = TABLES.filter((table) =>
        ANALYTICS_VIEWS.some((view) => view.table === table && query.views.includes(view.name)),
      );
      const table = tables.find((candidate) =>
        candidate.columns.some((column) => words.has(column.name) || words.has(column.jsonKey ?? '')),
      );
      if (!table) throw new Error(`${query.name}: a scan of no known table (${text})`);
      const columns = table.columns
        .filter((column) => words.has(column.name) || words.has(column.jsonKey ?? ''))
        .map((column) => column.name);
      scans.push({ table, columns });
    }
    for (const child of node.children ?? []) visit(child);
  };
  for (const node of nodes) visit(node);
  return scans;
}

/** Gzip JSON and Parquet bytes of a table's files. */
async function tableBytes(root: string, name: string): Promise<{ json: number; parquet: number }> {
  const table = TABLES.find((candidate) => candidate.name === name) as TableDefinition;
  const sum = async (files: string[]) => {
    let bytes = 0;
    for (const file of files) bytes += (await stat(file)).size;
    return bytes;
  };
  return {
    json: await sum(await filesUnder(path.join(root, table.folder), '.json.gz')),
    parquet: await sum(await filesUnder(path.join(root, PARQUET_FOLDER, table.folder), '.parquet')),
  };
}

/** For each table, each Parquet file's footer bytes and compressed bytes per top-level column. */
async function parquetColumnBytes(
  root: string,
): Promise<Map<string, { footer: number; columns: Map<string, number> }[]>> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const byTable = new Map<string, { footer: number; columns: Map<string, number> }[]>();
    for (const table of TABLES.filter((candidate) => candidate.name === 'raw_logs' || candidate.name === 'profiles')) {
      const files = await filesUnder(path.join(root, PARQUET_FOLDER, table.folder), '.parquet');
      const entries = [];
      for (const file of files) {
        const chunks = await connection.runAndReadAll(
          `SELECT path_in_schema, sum(total_compressed_size)::BIGINT FROM parquet_metadata(${quoteLiteral(file)}) GROUP BY ALL`,
        );
        const columns = new Map<string, number>();
        for (const [pathInSchema, bytes] of chunks.getRows()) {
          // A nested column's chunks (customer_ids.customer_id) count for its top-level column.
          const top = String(pathInSchema).split(/[.,]/)[0]?.trim() as string;
          columns.set(top, (columns.get(top) ?? 0) + Number(bytes));
        }
        entries.push({ footer: await footerBytes(file), columns });
      }
      byTable.set(table.name, entries);
    }
    return byTable;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
