import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ConvertSummary } from '../../functions/core/convert-layer.js';
import { audienceRows, type LogRow, latestGeneration, profileRows } from '../../functions/simulator/dataset.js';
import { LocalyticsSimulator } from '../../functions/simulator/server.js';
import { runCli } from '../support/cli.js';
import { type Layer, openLake, sqlBlocks } from '../support/duckdb-lake.js';
import { servedRowsOfDay, syncSimulated } from '../support/simulated-lake.js';

/**
 * The README's queries over data the real sync landed, against what the simulator served, on both layers: the JSON
 * tables and the Parquet tables (`sync --parquet`, then `convert` for files put there by hand) give the same answers.
 * Bad input is part of the lake: the documentation's malformed profile line (in every profile file), fields not in
 * the schema (`profiledb_id`, `change_sequence`, and a made-up one), an empty audience file, and a log hour with
 * wrong-typed values and a malformed line (on a day outside the README's window, so that only the table-wide
 * comparison sees it).
 */

/** A fixed clock, so the README's literal dates are the days the simulator served. */
let now = Date.parse('2026-11-19T14:00:00Z');
const simulator = new LocalyticsSimulator({ ratePerMinute: 6000, now: () => now, malformedProfileLine: true });
const DAYS = ['2026-11-18', '2026-11-19'];
const lakes = {} as Record<Layer, Awaited<ReturnType<typeof openLake>>>;
let queries: Map<string, string>;
let dir: string;
const syncs: ConvertSummary[] = [];
let converted: ConvertSummary;
const BAD_APP = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';
const BAD_KEY = `raw_logs/app_uuid=${BAD_APP}/dt=2026-11-17/hour=05/${BAD_APP}_2026-11-17_05.json.gz`;
const BAD_LINES = [
  { type: 'e', name: 'fine', at_millis: 1_795_410_000_000, uuid: 'u-1', session_uuid: 's-1', nth: 1 },
  // wrong types: a word for a number, a number for a struct, a string of digits (which reads as a number)
  { type: 'e', name: 'odd', at_millis: 'soon', uuid: 'u-2', session_uuid: 's-1', nth: 'many', customer_ids: 7 },
  { type: 's', at_millis: '1795410000500', uuid: 'u-3', session_uuid: 's-2', surprise_field: { a: 1 } },
]
  .map((row) => JSON.stringify(row))
  .concat('{"type":"e", "uuid":"u-4"}}', '')
  .join('\n');

beforeAll(async () => {
  await simulator.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'lsync-lake-'));
  const synced = async (from: string, to: string) => {
    syncs.push(await syncSimulated(dir, simulator, { from, to }, () => now));
  };
  // Day one: audiences and profiles of 2026-11-19; day two: the next generation and both days of logs.
  await synced('2026-11-19T00', '2026-11-19T01');
  now = Date.parse('2026-11-20T14:00:00Z');
  simulator.faults.add({ kind: 'empty', match: 'audience/4478/customer_id' });
  await synced('2026-11-18T00', '2026-11-20T00');
  await mkdir(path.join(dir, path.dirname(BAD_KEY)), { recursive: true });
  await writeFile(path.join(dir, BAD_KEY), gzipSync(BAD_LINES));
  const convert = await runCli(['convert', '--dest', dir, '--json'], {});
  expect(convert.code, convert.stdout + convert.stderr).toBe(0);
  converted = JSON.parse(convert.stdout) as ConvertSummary;
  lakes.json = await openLake(dir, 'json');
  lakes.parquet = await openLake(dir, 'parquet');
  queries = sqlBlocks(await readFile('README.md', 'utf8'));
}, 120_000);
afterAll(async () => {
  lakes.json?.close();
  lakes.parquet?.close();
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The query's answer on the JSON tables, after checking that the Parquet tables give exactly the same. */
async function answer(sql: string): Promise<Record<string, unknown>[]> {
  const json = await lakes.json.query(sql);
  expect(await lakes.parquet.query(sql)).toEqual(json);
  return json;
}

function rowsOfDay(app: string, day: string): LogRow[] {
  return servedRowsOfDay(simulator.dataset, app, day);
}

function query(title: string): string {
  const sql = queries.get(title);
  if (!sql) throw new Error(`README has no query titled "${title}"`);
  return sql;
}

test('the README has the four example queries', () => {
  expect([...queries.keys()]).toEqual([
    'Events per app per day',
    'Sessions per app per day',
    "Events of an audience's members, joined by advertising id",
    'Latest profile of each customer',
  ]);
});

test('events per app per day match the rows the simulator served', async () => {
  const expected = [...simulator.dataset.apps].sort().flatMap((app) =>
    DAYS.map((dt) => ({
      app_uuid: app,
      dt,
      events: String(rowsOfDay(app, dt).filter((row) => row.type === 'e').length),
    })),
  );
  expect(await answer(query('Events per app per day'))).toEqual(expected);
});

test('sessions per app per day match the sessions the simulator served', async () => {
  const expected = [...simulator.dataset.apps].sort().flatMap((app) =>
    DAYS.map((dt) => {
      const starts = rowsOfDay(app, dt).filter((row) => row.type === 's');
      return {
        app_uuid: app,
        dt,
        sessions: String(new Set(starts.map((row) => row.session_uuid)).size),
        devices: String(new Set(starts.map((row) => row.device_uuid)).size),
      };
    }),
  );
  expect(await answer(query('Sessions per app per day'))).toEqual(expected);
});

test("an audience joins to the logs by advertising id: its members' events", async () => {
  const members = new Set(
    audienceRows(simulator.dataset, '153829', 'idfa', latestGeneration(Date.parse('2026-11-19T14:00:00Z'))).map(
      (row) => row.IDFA,
    ),
  );
  const expected = [...simulator.dataset.apps].sort().flatMap((app) => {
    const events = DAYS.flatMap((day) => rowsOfDay(app, day)).filter(
      (row) => row.type === 'e' && members.has(row.advertising_id as string),
    );
    if (events.length === 0) return [];
    return [
      {
        app_uuid: app,
        events: String(events.length),
        members_seen: String(new Set(events.map((row) => row.advertising_id)).size),
      },
    ];
  });
  expect(expected.length).toBeGreaterThan(0);
  expect(await answer(query("Events of an audience's members, joined by advertising id"))).toEqual(expected);
});

test('the latest profile of each customer comes from the newest generation', async () => {
  const newest = profileRows(simulator.dataset, '6012', latestGeneration(Date.parse('2026-11-20T14:00:00Z')));
  const expected: Record<string, unknown>[] = newest
    .map((row) => ({
      ll_raw_customer_id: row['_ll.raw_customer_id'],
      ll_country: row['_ll.country'],
      favorite_place: row.favorite_place,
      dt: '2026-11-20',
    }))
    .sort((a, b) => String(a.ll_raw_customer_id).localeCompare(String(b.ll_raw_customer_id)));
  // The documentation's malformed line, in both generations, reads as a row of nulls: the newest one is kept.
  expected.push({ ll_raw_customer_id: null, ll_country: null, favorite_place: null, dt: '2026-11-20' });
  const older = profileRows(simulator.dataset, '6012', latestGeneration(Date.parse('2026-11-19T14:00:00Z')));
  expect(older.map((row) => row.favorite_place)).not.toEqual(newest.map((row) => row.favorite_place));
  expect(await answer(query('Latest profile of each customer'))).toEqual(expected);
});

describe('the Parquet layer', () => {
  test('every table reads the same rows from both layers, bad input included', async () => {
    for (const table of ['raw_logs', 'audiences', 'profiles', 'profile_changes']) {
      const sql = `SELECT * FROM ${table} ORDER BY ALL`;
      const json = await lakes.json.query(sql);
      expect(json.length, table).toBeGreaterThan(0);
      expect(await lakes.parquet.query(sql), table).toEqual(json);
    }
  });

  test('values that do not fit their column are null, a malformed line is a row of nulls, digits read as numbers', async () => {
    const rows = await lakes.parquet.query(
      "SELECT uuid, at_millis, nth, customer_ids FROM raw_logs WHERE dt = '2026-11-17' ORDER BY at_millis NULLS LAST, uuid",
    );
    expect(rows).toEqual([
      { uuid: 'u-1', at_millis: '1795410000000', nth: 1, customer_ids: null },
      { uuid: 'u-3', at_millis: '1795410000500', nth: null, customer_ids: null },
      { uuid: 'u-2', at_millis: null, nth: null, customer_ids: { customer_id: null } },
      { uuid: null, at_millis: null, nth: null, customer_ids: null },
    ]);
  });

  test('the Parquet rows of a log hour are sorted by at_millis', async () => {
    const rows = await lakes.parquet.query(
      `SELECT at_millis FROM read_parquet('${dir}/parquet/raw_logs/app_uuid=${BAD_APP}/dt=2026-11-18/hour=07/*.parquet')`,
    );
    const times = rows.map((row) => Number(row.at_millis));
    expect(times.length).toBeGreaterThan(1);
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  test('sync --parquet converts every file it copies, and names each kind of bad input', async () => {
    for (const summary of syncs) {
      expect(summary.failed).toEqual([]);
      expect(summary.converted).toBe(summary.files);
    }
    const warnings = syncs.flatMap((summary) => summary.warnings);
    expect(warnings).toContainEqual(
      expect.stringMatching(
        /^profiles\/profiledb_id=6012\/.*: 1 row\(s\) have no value in any column \(malformed JSON/,
      ),
    );
    expect(warnings).toContainEqual(expect.stringMatching(/^profiles\/.*not in Parquet: profiledb_id /));
    expect(warnings).toContainEqual(expect.stringMatching(/^profile_changes\/.*not in Parquet: change_sequence /));
    expect(warnings).toContainEqual(
      expect.stringMatching(/^audiences\/audience_id=4478\/identifier_type=customer_id\/.*: the JSON file has no rows/),
    );
  });

  test('convert converts what has no Parquet twin yet, with a warning per kind of problem', () => {
    const copied = syncs.reduce((sum, summary) => sum + summary.converted, 0);
    expect(converted).toMatchObject({ converted: 1, present: copied, failed: [] });
    expect(converted.warnings).toEqual([
      `${BAD_KEY}: 3 value(s) did not fit their column type and were written as null: at_millis 1, nth 1, customer_ids 1`,
      expect.stringContaining(`${BAD_KEY}: 1 row(s) have no value in any column`),
      expect.stringContaining(
        `${BAD_KEY}: field(s) not in the table's schema, kept in the JSON layer but not in Parquet: surprise_field`,
      ),
    ]);
  });

  test('a rerun converts nothing; --rebuild writes the files again, byte for byte the same', async () => {
    const again = await runCli(['convert', '--dest', dir, '--json'], {});
    expect(JSON.parse(again.stdout)).toMatchObject({ converted: 0, present: converted.files, failed: [] });
    // A small copy of the lake (the bad log hour and a simulated one) for the rebuild: it converts everything.
    const small = await mkdtemp(path.join(os.tmpdir(), 'lsync-rebuild-'));
    try {
      const keys = [BAD_KEY, `raw_logs/app_uuid=${BAD_APP}/dt=2026-11-18/hour=07/${BAD_APP}_2026-11-18_07.json.gz`];
      for (const key of [...keys, ...keys.map((key) => `parquet/${key.replace(/\.json\.gz$/, '.parquet')}`)]) {
        await mkdir(path.dirname(path.join(small, key)), { recursive: true });
        await copyFile(path.join(dir, key), path.join(small, key));
      }
      const before = await Promise.all(
        keys.map((key) => readFile(path.join(small, 'parquet', key.replace(/\.json\.gz$/, '.parquet')))),
      );
      const untouched = await runCli(['convert', '--dest', small, '--json'], {});
      expect(JSON.parse(untouched.stdout)).toMatchObject({ converted: 0, present: 2 });
      await writeFile(path.join(small, 'parquet', keys[1]?.replace(/\.json\.gz$/, '.parquet') as string), 'stale');
      const rebuilt = await runCli(['convert', '--dest', small, '--rebuild', '--json'], {});
      expect(rebuilt.code).toBe(0);
      expect(JSON.parse(rebuilt.stdout)).toMatchObject({ converted: 2, present: 0, failed: [] });
      const after = await Promise.all(
        keys.map((key) => readFile(path.join(small, 'parquet', key.replace(/\.json\.gz$/, '.parquet')))),
      );
      expect(after.map((bytes, index) => bytes.equals(before[index] as Buffer))).toEqual([true, true]);
    } finally {
      await rm(small, { recursive: true, force: true });
    }
  });
});
