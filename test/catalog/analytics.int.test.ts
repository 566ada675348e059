import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DuckDbLake, type Layer } from '../../functions/adapters/duckdb-lake.js';
import { type LogRow, latestGeneration, profileRows } from '../../functions/simulator/dataset.js';
import { LocalyticsSimulator } from '../../functions/simulator/server.js';
import { prestoType } from '../../lib/analytics-views.js';
import {
  type DecodedView,
  decodedViews,
  type SavedQueryProperties,
  savedQueries,
  synthCatalogViews,
} from '../support/analytics-template.js';
import { runCli } from '../support/cli.js';
import { servedRowsOfDay, syncSimulated } from '../support/simulated-lake.js';

/**
 * The analytics views and saved queries exactly as the stack's template carries them (decoded from the synthesized
 * Glue tables and Athena named queries), run in DuckDB over data the real sync landed from the simulator: the
 * JSON-layer template's views over the JSON tables, the Parquet-layer template's over the Parquet tables. Every
 * answer is checked against the rows the simulator served and against the other layer's answer. A hand-written log
 * hour (2026-11-17) adds wrong-typed values, a missing time and a malformed line.
 */

const LAYERS: readonly Layer[] = ['json', 'parquet'];
let now = Date.parse('2026-11-19T14:00:00Z');
const TODAY = '2026-11-20';
const simulator = new LocalyticsSimulator({ ratePerMinute: 6000, now: () => now, malformedProfileLine: true });
const [APP, OTHER_APP] = simulator.dataset.apps as [string, string];
const DAYS = ['2026-11-18', '2026-11-19'];
const at = (time: string) => Date.parse(`${time.replace(' ', 'T')}Z`);
const BAD_KEY = `raw_logs/app_uuid=${APP}/dt=2026-11-17/hour=05/${APP}_2026-11-17_05.json.gz`;
const BAD_LINES = [
  // at_millis as a string of digits (read as the number); a session of 180 s with one event
  { type: 's', at: '2026-11-17 05:00:00', at_millis: String(at('2026-11-17 05:00:00')), device_uuid: 'bad-d' },
  { type: 'e', name: 'fine', at: '2026-11-17 05:01:00', at_millis: at('2026-11-17 05:01:00'), device_uuid: 'bad-d' },
  { type: 'c', at: '2026-11-17 05:03:00', at_millis: at('2026-11-17 05:03:00'), device_uuid: 'bad-d' },
  // no usable time, a word for a number, a number for a struct, and no device
  { type: 'e', name: 'odd', at: 'soon', at_millis: 'soon', nth: 'many', customer_ids: 7 },
]
  .map((row, index) => JSON.stringify({ ...row, uuid: `bad-${index}`, session_uuid: 'bad-s' }))
  .concat('{"type":"e", "uuid":"bad-5"}}', '')
  .join('\n');

const templates = {} as Record<Layer, Template>;
const views = {} as Record<Layer, DecodedView[]>;
const lakes = {} as Record<Layer, DuckDbLake>;
let dir: string;

beforeAll(async () => {
  templates.json = synthCatalogViews({ parquet: false });
  templates.parquet = synthCatalogViews({ parquet: true });
  await simulator.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'lsync-analytics-'));
  // Day one: the profile snapshot of 2026-11-19; day two: the next snapshot and both days of logs.
  await syncSimulated(dir, simulator, { from: '2026-11-19T00', to: '2026-11-19T01' }, () => now);
  now = Date.parse('2026-11-20T14:00:00Z');
  await syncSimulated(dir, simulator, { from: '2026-11-18T00', to: '2026-11-20T00' }, () => now);
  await mkdir(path.join(dir, path.dirname(BAD_KEY)), { recursive: true });
  await writeFile(path.join(dir, BAD_KEY), gzipSync(BAD_LINES));
  const convert = await runCli(['convert', '--dest', dir, '--json'], {});
  expect(convert.code, convert.stdout + convert.stderr).toBe(0);
  for (const layer of LAYERS) {
    // The catalog's tables under their Glue names, then the template's views, created from their decoded SQL as is.
    lakes[layer] = await DuckDbLake.open(dir, { layer, glueNames: true, analyticsViews: false });
    views[layer] = decodedViews(templates[layer]);
    for (const view of views[layer]) {
      await lakes[layer].run(`CREATE VIEW "${view.name}" AS ${view.definition.originalSql}`);
    }
  }
}, 180_000);

afterAll(async () => {
  for (const layer of LAYERS) lakes[layer]?.close();
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

/** DuckDB's names of the types the views return, in Athena's spelling. */
const ATHENA_TYPE_OF_DUCKDB: Record<string, string> = {
  VARCHAR: 'varchar',
  BIGINT: 'bigint',
  INTEGER: 'integer',
  DOUBLE: 'double',
  BOOLEAN: 'boolean',
  DATE: 'date',
};

/** A query's answer on the JSON layer, after checking that the Parquet layer gives exactly the same. */
async function answer(sql: string, parameters: readonly string[] = [], today = TODAY) {
  const json = await lakes.json.runSavedQuery(sql, parameters, today);
  expect(await lakes.parquet.runSavedQuery(sql, parameters, today)).toEqual(json);
  return json;
}

function savedQuery(name: string): SavedQueryProperties {
  const query = savedQueries(templates.parquet).find((candidate) => candidate.Name === name);
  if (!query) throw new Error(`no saved query named "${name}" in the template`);
  return query;
}

const rowsOf = (app: string, days: readonly string[]) =>
  days.flatMap((day) => servedRowsOfDay(simulator.dataset, app, day));
/** Groups in order of first appearance (Map.groupBy needs Node.js 21). */
function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}
const byDay = (rows: readonly LogRow[]) => groupBy(rows, (row) => (row.at as string).slice(0, 10));
const count = (n: number) => String(n);
const distinct = (rows: readonly LogRow[], field: string) => new Set(rows.map((row) => row[field])).size;

describe('the views the template carries', () => {
  test('every view decodes, reads only tables of its own template, and runs with the columns and types it declares', async () => {
    for (const layer of LAYERS) {
      const dataTables = Object.values(templates[layer].findResources('AWS::Glue::Table'))
        .map((resource) => (resource as { Properties: { TableInput: { Name: string; TableType: string } } }).Properties)
        .filter((properties) => properties.TableInput.TableType === 'EXTERNAL_TABLE')
        .map((properties) => properties.TableInput.Name);
      expect(views[layer]).toHaveLength(4);
      for (const view of views[layer]) {
        const read = [...view.definition.originalSql.matchAll(/\bFROM\s+"(\w+)"/g)].map((match) => match[1]);
        expect(read.length, view.name).toBeGreaterThan(0);
        for (const table of read) expect(dataTables, `${layer} ${view.name}`).toContain(table);
        const described = await lakes[layer].query(`DESCRIBE "${view.name}"`);
        const found = described.map((column) => ({
          name: column.column_name,
          type: ATHENA_TYPE_OF_DUCKDB[column.column_type as string] ?? `unmapped ${column.column_type}`,
        }));
        expect(found, `${layer} ${view.name}`).toEqual(view.definition.columns);
        // The Glue columns (Hive types) say the same.
        expect(
          view.input.StorageDescriptor.Columns.map((column) => ({
            name: column.Name,
            type: prestoType(column.Type as never),
          })),
        ).toEqual(view.definition.columns);
        const [{ n }] = (await lakes[layer].query(`SELECT count(*) AS n FROM "${view.name}"`)) as [{ n: string }];
        expect(Number(n), `${layer} ${view.name}`).toBeGreaterThan(0);
      }
    }
  });

  test('the fact views split the raw rows by type; client_date is the UTC day of at', async () => {
    for (const [view, type] of [
      ['fact_events', 'e'],
      ['fact_sessions', 's'],
      ['fact_session_closes', 'c'],
    ] as const) {
      const expected = [APP, OTHER_APP].sort().flatMap((app) =>
        DAYS.map((day) => ({
          app_id: app,
          dt: day,
          client_date: day,
          n: count(servedRowsOfDay(simulator.dataset, app, day).filter((row) => row.type === type).length),
        })),
      );
      const sql = `SELECT app_id, dt, client_date, count(*) AS n FROM ${view} WHERE dt BETWEEN '2026-11-18' AND '2026-11-19' GROUP BY ALL ORDER BY ALL`;
      expect(await answer(sql), view).toEqual(expected);
    }
  });

  test('a row keeps its fields under Direct Access names where they mean the same', async () => {
    const served = servedRowsOfDay(simulator.dataset, OTHER_APP, '2026-11-18').find(
      (row) => row.type === 'e' && row.customer_ids,
    ) as LogRow;
    const [row] = await answer(
      `SELECT app_id, event_name, app_version, customer_id, device_uuid, session_uuid, at_millis, "hour" FROM fact_events WHERE uuid = ?`,
      [served.uuid as string],
    );
    expect(row).toEqual({
      app_id: OTHER_APP,
      event_name: served.name,
      app_version: served.app_ver,
      customer_id: (served.customer_ids as { customer_id: string }).customer_id,
      device_uuid: served.device_uuid,
      session_uuid: served.session_uuid,
      at_millis: String(served.at_millis),
      hour: new Date(served.at_millis as number).getUTCHours(),
    });
  });

  test('app_profiles has a row per customer and attribute that has a value, for each snapshot', async () => {
    const expected = ['2026-11-19', '2026-11-20'].flatMap((day) => {
      const rows = profileRows(simulator.dataset, '6012', latestGeneration(Date.parse(`${day}T14:00:00Z`)));
      return ['_ll.country', '_ll.email', '_ll.language', 'favorite_place'].map((key) => ({
        dt: day,
        attribute_key: key,
        customers: count(rows.filter((row) => row[key] !== null && row[key] !== undefined).length),
      }));
    });
    expect(
      await answer(
        "SELECT dt, attribute_key, count(DISTINCT customer_id) AS customers FROM app_profiles WHERE profiledb_id = '6012' GROUP BY ALL ORDER BY ALL",
      ),
    ).toEqual(expected);
    // The documentation's malformed line (a row of nulls) has no attribute.
    expect(await answer('SELECT count(*) AS n FROM app_profiles WHERE customer_id IS NULL')).toEqual([{ n: '0' }]);
  });
});

describe('the saved queries the template carries', () => {
  test('the JSON and the Parquet templates save the same five queries', () => {
    expect(savedQueries(templates.json)).toEqual(savedQueries(templates.parquet));
    expect(savedQueries(templates.parquet)).toHaveLength(5);
  });

  test('events by name over 30 days: occurrences and devices per event name, most frequent first', async () => {
    const query = savedQuery('Events by name over 30 days').QueryString;
    const expectedFor = (rows: readonly LogRow[]) =>
      [
        ...groupBy(
          rows.filter((row) => row.type === 'e'),
          (row) => row.name as string,
        ),
      ]
        .map(([name, events]) => ({
          event_name: name,
          occurrences: events.length,
          devices: distinct(events, 'device_uuid'),
        }))
        .sort((a, b) => b.occurrences - a.occurrences || (a.event_name < b.event_name ? -1 : 1))
        .map((row) => ({ ...row, occurrences: count(row.occurrences), devices: count(row.devices) }));
    const other = expectedFor(rowsOf(OTHER_APP, DAYS));
    expect(other.length).toBeGreaterThan(3);
    expect(await answer(query, [OTHER_APP])).toEqual(other);
    // The 30 days end today: a month later only the last day is left.
    expect(await answer(query, [OTHER_APP], '2026-12-19')).toEqual(expectedFor(rowsOf(OTHER_APP, ['2026-11-19'])));
    // The hand-written hour's events count too: "odd" has no device.
    const withBad = expectedFor(rowsOf(APP, DAYS)).concat(
      { event_name: 'fine', occurrences: '1', devices: '1' },
      { event_name: 'odd', occurrences: '1', devices: '0' },
    );
    expect(await answer(query, [APP])).toEqual(
      withBad.sort((a, b) => Number(b.occurrences) - Number(a.occurrences) || (a.event_name < b.event_name ? -1 : 1)),
    );
  });

  test("an event's trend per day: occurrences and devices per client_date", async () => {
    const query = savedQuery("An event's trend per day").QueryString;
    const expected = [...byDay(rowsOf(APP, DAYS).filter((row) => row.type === 'e' && row.name === 'viewForecast'))].map(
      ([day, events]) => ({
        client_date: day,
        occurrences: count(events.length),
        devices: count(distinct(events, 'device_uuid')),
      }),
    );
    expect(expected).toHaveLength(2);
    expect(await answer(query, [APP, 'viewForecast', '2026-11-17', '2026-11-19'])).toEqual(expected);
    // A row without a usable time has no client_date.
    expect(await answer(query, [APP, 'odd', '2026-11-17', '2026-11-19'])).toEqual([
      { client_date: null, occurrences: '1', devices: '0' },
    ]);
  });

  test('unique devices per day: the devices that started a session', async () => {
    const query = savedQuery('Unique devices per day').QueryString;
    const expected = [...byDay(rowsOf(APP, DAYS).filter((row) => row.type === 's'))].map(([day, starts]) => ({
      client_date: day,
      devices: count(distinct(starts, 'device_uuid')),
    }));
    // Devices come back on some days and not on others.
    expect(new Set(expected.map((row) => row.devices)).size).toBeGreaterThan(1);
    expect(await answer(query, [APP, '2026-11-17', '2026-11-19'])).toEqual([
      { client_date: '2026-11-17', devices: '1' },
      ...expected,
    ]);
  });

  test('sessions per day and their median length: start to close of the sessions that closed', async () => {
    const query = savedQuery('Sessions per day and their median length').QueryString;
    const rows = rowsOf(APP, DAYS);
    const closes = new Map(
      rows.filter((row) => row.type === 'c').map((row) => [row.session_uuid, row.at_millis as number]),
    );
    const expected = [...byDay(rows.filter((row) => row.type === 's'))].map(([day, starts]) => {
      const lengths = starts
        .filter((start) => closes.has(start.session_uuid))
        .map((start) => ((closes.get(start.session_uuid) as number) - (start.at_millis as number)) / 1000)
        .sort((a, b) => a - b);
      return {
        client_date: day,
        sessions: count(distinct(starts, 'session_uuid')),
        closed_sessions: count(lengths.length),
        // DuckDB's quantile_disc: the value at rank floor((n - 1) / 2) (Athena's approx_percentile approximates it).
        median_length_seconds: lengths[Math.floor((lengths.length - 1) / 2)],
      };
    });
    expect(expected.every((day) => Number(day.closed_sessions) < Number(day.sessions))).toBe(true);
    expect(await answer(query, [APP, '2026-11-17', '2026-11-19'])).toEqual([
      { client_date: '2026-11-17', sessions: '1', closed_sessions: '1', median_length_seconds: 180 },
      ...expected,
    ]);
  });

  test("a profile attribute's distribution: customers per value in one snapshot", async () => {
    const query = savedQuery("A profile attribute's distribution").QueryString;
    const rows = profileRows(simulator.dataset, '6012', latestGeneration(Date.parse('2026-11-20T14:00:00Z')));
    const expected = [...groupBy(rows, (row) => row.favorite_place as string)]
      .map(([place, customers]) => ({ attribute_value: place, customers: customers.length }))
      .sort((a, b) => b.customers - a.customers || (a.attribute_value < b.attribute_value ? -1 : 1))
      .map((row) => ({ ...row, customers: count(row.customers) }));
    expect(expected.length).toBeGreaterThan(3);
    expect(await answer(query, ['6012', '2026-11-20', 'favorite_place'])).toEqual(expected);
  });
});
