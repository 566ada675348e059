import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { DuckDbLake } from '../adapters/duckdb-lake.js';
import { type Layer, type QueryParameterName, SAVED_QUERIES, type SavedQuery } from '../core/analytics.js';
import { DAY_MS, formatDate } from '../core/hours.js';
import { isPositiveIntegerId, parseAppUuid } from '../core/identifiers.js';
import { type CliIo, EXIT_OK } from './io.js';
import { parseDestination, UsageError } from './options.js';

export interface QueryCommandOptions {
  dest?: string;
  app?: string;
  from?: string;
  to?: string;
  event?: string;
  profiledb?: string;
  day?: string;
  attribute?: string;
  parquet?: boolean;
  json?: boolean;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * `localytics-sync query <name>`: one of the stack's saved queries, run with DuckDB over a local destination (the
 * demo folder, a backfill on a laptop) through the same views as in Athena. Without a name: the list of queries.
 */
export async function queryCommand(name: string | undefined, options: QueryCommandOptions, io: CliIo): Promise<number> {
  if (name === undefined) {
    io.stdout(listQueries());
    return EXIT_OK;
  }
  const query = SAVED_QUERIES.find((candidate) => candidate.name === name);
  if (!query) {
    throw new UsageError(`unknown query "${name}"; use one of ${SAVED_QUERIES.map((q) => q.name).join(', ')}`);
  }
  const destination = parseDestination(options.dest);
  if (destination.type !== 'local') {
    throw new UsageError(
      'query reads a local directory; in S3, run the saved queries in Athena (see docs/analytics.md)',
    );
  }
  const root = destination.dir;
  if (!(await isDirectory(root))) throw new UsageError(`--dest ${root}: no such directory`);
  const values = await parameterValues(query, options, root, io.now());
  const layer: Layer = options.parquet ? 'parquet' : 'json';
  const lake = await DuckDbLake.open(root, { layer });
  try {
    const missing = query.views.filter((view) => !lake.relations.has(view));
    if (missing.length > 0) {
      throw new UsageError(
        `${root} has no ${layer === 'parquet' ? 'Parquet ' : ''}data for ${missing.join(', ')}` +
          `${layer === 'parquet' ? ' (build the Parquet layer with `convert`)' : ''}`,
      );
    }
    const rows = await lake.runSavedQuery(
      query.sql,
      query.parameters.map((parameter) => values[parameter] as string),
      formatDate(io.now()),
    );
    const shown = Object.fromEntries(query.parameters.map((parameter) => [parameter, values[parameter]]));
    io.stdout(
      options.json
        ? `${JSON.stringify({ query: query.name, title: query.title, layer, parameters: shown, rows }, null, 2)}\n`
        : `${query.title} (${Object.entries(shown)
            .map(([key, value]) => `${key} ${value}`)
            .join(', ')}; ${layer === 'parquet' ? 'Parquet' : 'JSON'} layer of ${root})\n\n${formatTable(rows)}`,
    );
    return EXIT_OK;
  } finally {
    lake.close();
  }
}

function listQueries(): string {
  const lines = ['Saved queries (the stack saves them in Athena too; see docs/analytics.md):', ''];
  for (const query of SAVED_QUERIES) {
    lines.push(`  ${query.name.padEnd(18)} ${query.title}`);
    lines.push(
      `  ${''.padEnd(18)} options: ${[...new Set(query.parameters)].map((parameter) => `--${parameter}`).join(' ')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The value of each parameter the query needs: from the options, else what the destination makes obvious (its only
 * app or profile database, the newest snapshot) or the 30 days up to today (UTC).
 */
async function parameterValues(
  query: SavedQuery,
  options: QueryCommandOptions,
  root: string,
  now: number,
): Promise<Partial<Record<QueryParameterName, string>>> {
  const needs = new Set(query.parameters);
  const values: Partial<Record<QueryParameterName, string>> = {};
  if (needs.has('app')) {
    if (options.app !== undefined) {
      const app = parseAppUuid(options.app);
      if (!app)
        throw new UsageError(`--app "${options.app}" is not a Localytics app ID (hex groups separated by dashes)`);
      values.app = app;
    } else {
      values.app = await onlyPartition(root, 'raw_logs', 'app_uuid', '--app');
    }
  }
  if (needs.has('to') || needs.has('from')) {
    values.to = day('--to', options.to) ?? formatDate(now);
    values.from = day('--from', options.from) ?? formatDate(Date.parse(`${values.to}T00:00:00Z`) - 29 * DAY_MS);
    if (values.from > values.to) throw new UsageError(`--from ${values.from} is after --to ${values.to}`);
  }
  if (needs.has('event')) {
    if (!options.event) throw new UsageError(`--event is required for ${query.name} (e.g. --event viewForecast)`);
    values.event = options.event;
  }
  if (needs.has('profiledb')) {
    if (options.profiledb !== undefined && !isPositiveIntegerId(options.profiledb)) {
      throw new UsageError(`--profiledb "${options.profiledb}" is not a profile database ID (a positive integer)`);
    }
    values.profiledb = options.profiledb ?? (await onlyPartition(root, 'profiles', 'profiledb_id', '--profiledb'));
  }
  if (needs.has('day')) {
    values.day =
      day('--day', options.day) ??
      (await newestPartition(path.join(root, 'profiles', `profiledb_id=${values.profiledb}`), 'dt', '--day'));
  }
  if (needs.has('attribute')) {
    if (!options.attribute) {
      throw new UsageError(`--attribute is required for ${query.name} (e.g. --attribute favorite_place)`);
    }
    values.attribute = options.attribute;
  }
  return values;
}

function day(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!DAY.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
    throw new UsageError(`${flag} "${value}" is not a UTC day written YYYY-MM-DD`);
  }
  return value;
}

/** The values of a partition folder (`<name>=<value>`) under `dir`, sorted. */
async function partitionValues(dir: string, name: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isDirectory() && entry.name.startsWith(`${name}=`))
    .map((entry) => entry.name.slice(name.length + 1))
    .sort();
}

async function onlyPartition(root: string, folder: string, name: string, flag: string): Promise<string> {
  const found = await partitionValues(path.join(root, folder), name);
  if (found.length === 1) return found[0] as string;
  if (found.length === 0) throw new UsageError(`${root} has no ${folder} (no ${name}=... folder): nothing to query`);
  throw new UsageError(`${flag} is required: ${root} holds ${found.length} (${found.join(', ')})`);
}

async function newestPartition(dir: string, name: string, flag: string): Promise<string> {
  const found = await partitionValues(dir, name);
  if (found.length === 0) throw new UsageError(`${dir} has no ${name}=... folder: give ${flag}`);
  return found.at(-1) as string;
}

async function isDirectory(dir: string): Promise<boolean> {
  return (await stat(dir).catch(() => undefined))?.isDirectory() ?? false;
}

/** Rows as an aligned text table; numbers to the right. */
export function formatTable(rows: readonly Record<string, unknown>[]): string {
  if (rows.length === 0) return '(no rows)\n';
  const columns = Object.keys(rows[0] as Record<string, unknown>);
  const cells = rows.map((row) => columns.map((column) => (row[column] === null ? '' : String(row[column]))));
  const numeric = columns.map((_, index) =>
    cells.every((cell) => cell[index] === '' || /^-?\d+(\.\d+)?$/.test(cell[index] as string)),
  );
  const widths = columns.map((column, index) =>
    Math.max(column.length, ...cells.map((cell) => (cell[index] as string).length)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, index) =>
        numeric[index] ? value.padStart(widths[index] as number) : value.padEnd(widths[index] as number),
      )
      .join('  ')
      .trimEnd();
  return `${[line(columns), line(widths.map((width) => '-'.repeat(width))), ...cells.map(line)].join('\n')}\n`;
}
