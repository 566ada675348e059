import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { HOUR_MS } from '../../functions/core/hours.js';
import {
  audienceRows,
  type LogRow,
  latestGeneration,
  logRows,
  profileRows,
} from '../../functions/simulator/dataset.js';
import { LocalyticsSimulator } from '../../functions/simulator/server.js';
import { runCli } from '../support/cli.js';
import { openLake, sqlBlocks } from '../support/duckdb-lake.js';
import { credentialEnv } from '../support/simulator.js';

/** A fixed clock, so the README's literal dates are the days the simulator served. */
let now = Date.parse('2026-11-19T14:00:00Z');
const simulator = new LocalyticsSimulator({ ratePerMinute: 6000, now: () => now });
const DAYS = ['2026-11-18', '2026-11-19'];
let lake: Awaited<ReturnType<typeof openLake>>;
let queries: Map<string, string>;
let dir: string;

beforeAll(async () => {
  await simulator.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'lsync-lake-'));
  const sync = (from: string, to: string) =>
    runCli(
      [
        'sync',
        '--dest',
        dir,
        '--api-url',
        simulator.url,
        '--apps',
        simulator.dataset.apps.join(','),
        '--from',
        from,
        '--to',
        to,
        '--rate',
        '6000',
        '--json',
      ],
      credentialEnv,
      () => now,
    );
  // Day one: audiences and profiles of 2026-11-19; day two: the next generation and both days of logs.
  expect((await sync('2026-11-19T00', '2026-11-19T01')).code).toBe(0);
  now = Date.parse('2026-11-20T14:00:00Z');
  expect((await sync('2026-11-18T00', '2026-11-20T00')).code).toBe(0);
  lake = await openLake(dir);
  queries = sqlBlocks(await readFile('README.md', 'utf8'));
}, 120_000);
afterAll(async () => {
  lake?.close();
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

function rowsOfDay(app: string, day: string): LogRow[] {
  const start = Date.parse(`${day}T00:00:00Z`);
  return Array.from({ length: 24 }, (_, h) => logRows(simulator.dataset, app, start + h * HOUR_MS)).flat();
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
  expect(await lake.query(query('Events per app per day'))).toEqual(expected);
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
  expect(await lake.query(query('Sessions per app per day'))).toEqual(expected);
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
  expect(await lake.query(query("Events of an audience's members, joined by advertising id"))).toEqual(expected);
});

test('the latest profile of each customer comes from the newest generation', async () => {
  const newest = profileRows(simulator.dataset, '6012', latestGeneration(Date.parse('2026-11-20T14:00:00Z')));
  const expected = newest
    .map((row) => ({
      ll_raw_customer_id: row['_ll.raw_customer_id'],
      ll_country: row['_ll.country'],
      favorite_place: row.favorite_place,
      dt: '2026-11-20',
    }))
    .sort((a, b) => String(a.ll_raw_customer_id).localeCompare(String(b.ll_raw_customer_id)));
  const older = profileRows(simulator.dataset, '6012', latestGeneration(Date.parse('2026-11-19T14:00:00Z')));
  expect(older.map((row) => row.favorite_place)).not.toEqual(newest.map((row) => row.favorite_place));
  expect(await lake.query(query('Latest profile of each customer'))).toEqual(expected);
});
