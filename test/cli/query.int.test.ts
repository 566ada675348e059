import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DuckDbLake } from '../../functions/adapters/duckdb-lake.js';
import { SAVED_QUERIES } from '../../functions/core/analytics.js';
import { LocalyticsSimulator } from '../../functions/simulator/server.js';
import { runCli } from '../support/cli.js';
import { servedRowsOfDay, syncSimulated } from '../support/simulated-lake.js';

/** `localytics-sync query`: the saved queries over a local destination, with defaults the destination makes obvious. */

const now = Date.parse('2026-11-20T14:00:00Z');
const simulator = new LocalyticsSimulator({ ratePerMinute: 6000, now: () => now });
const [APP, OTHER_APP] = simulator.dataset.apps as [string, string];
let dir: string;

beforeAll(async () => {
  await simulator.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'lsync-query-'));
  await syncSimulated(dir, simulator, { from: '2026-11-19T00', to: '2026-11-20T00' }, () => now);
}, 120_000);
afterAll(async () => {
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

const query = (args: string[]) => runCli(['query', ...args], {}, () => now);

test('without a name it lists the saved queries and the options each needs', async () => {
  const run = await query([]);
  expect(run.code).toBe(0);
  for (const saved of SAVED_QUERIES) expect(run.stdout).toContain(`${saved.name.padEnd(18)} ${saved.title}`);
  expect(run.stdout).toContain('options: --app --event --from --to');
});

test('events-by-name prints a table of the events of the last 30 days, as the saved query answers', async () => {
  const run = await query(['events-by-name', '--dest', dir, '--app', OTHER_APP]);
  expect(run.code, run.stderr).toBe(0);
  const events = servedRowsOfDay(simulator.dataset, OTHER_APP, '2026-11-19').filter((row) => row.type === 'e');
  const lines = run.stdout.trim().split('\n');
  expect(lines[0]).toBe(`Events by name over 30 days (app ${OTHER_APP}; JSON layer of ${dir})`);
  expect(lines[2]?.split(/\s+/)).toEqual(['event_name', 'occurrences', 'devices']);
  expect(lines[3]).toMatch(/^-+ +-+ +-+$/);
  const rows = lines.slice(4).map((line) => line.split(/\s+/));
  expect(rows.map((row) => Number(row[1])).reduce((a, b) => a + b, 0)).toBe(events.length);
  expect(new Set(rows.map((row) => row[0]))).toEqual(new Set(events.map((row) => row.name)));
});

test('--json gives the rows, the same on the Parquet layer; --from and --to default to the 30 days up to today', async () => {
  const json = await query(['devices-per-day', '--dest', dir, '--app', APP, '--json']);
  expect(json.code, json.stderr).toBe(0);
  const answer = JSON.parse(json.stdout) as { parameters: Record<string, string>; rows: unknown[]; layer: string };
  expect(answer.parameters).toEqual({ app: APP, from: '2026-10-22', to: '2026-11-20' });
  const lake = await DuckDbLake.open(dir, { layer: 'json' });
  try {
    const expected = await lake.query(
      'SELECT client_date, count(DISTINCT device_uuid) AS devices FROM fact_sessions WHERE app_id = ? GROUP BY ALL ORDER BY ALL',
      [APP],
    );
    expect(answer.rows).toEqual(expected);
  } finally {
    lake.close();
  }
  const parquet = await query(['devices-per-day', '--dest', dir, '--app', APP, '--json', '--parquet']);
  expect(JSON.parse(parquet.stdout)).toEqual({ ...answer, layer: 'parquet' });
});

test('profile-attribute finds the only profile database and its newest snapshot', async () => {
  const run = await query(['profile-attribute', '--dest', dir, '--attribute', 'favorite_place', '--json']);
  expect(run.code, run.stderr).toBe(0);
  const answer = JSON.parse(run.stdout) as { parameters: Record<string, string>; rows: { customers: string }[] };
  expect(answer.parameters).toEqual({ profiledb: '6012', day: '2026-11-20', attribute: 'favorite_place' });
  expect(answer.rows.length).toBeGreaterThan(1);
});

test('event-trend and sessions-per-day run with their options', async () => {
  const trend = await query([
    'event-trend',
    '--dest',
    dir,
    '--app',
    APP,
    '--event',
    'viewForecast',
    '--from',
    '2026-11-19',
  ]);
  expect(trend.code, trend.stderr).toBe(0);
  expect(trend.stdout).toMatch(/\n2026-11-19\s+\d+\s+\d+\n$/);
  const sessions = await query(['sessions-per-day', '--dest', dir, '--app', APP, '--to', '2026-11-19']);
  expect(sessions.code, sessions.stderr).toBe(0);
  expect(sessions.stdout).toMatch(
    /client_date\s+sessions\s+closed_sessions\s+median_length_seconds\n[- ]+\n2026-11-19\s+\d+\s+\d+\s+[\d.]+\n$/,
  );
});

test('bad input exits 2 with a one-line error naming what was wrong', async () => {
  const cases: [string[], RegExp][] = [
    [['events-by-name', '--dest', dir], /^error: --app is required: .* holds 2 \(.*\)$/],
    [['no-such-query', '--dest', dir], /^error: unknown query "no-such-query"; use one of events-by-name, /],
    [['events-by-name', '--dest', 's3://bucket/prefix', '--app', APP], /^error: query reads a local directory/],
    [
      ['events-by-name', '--dest', path.join(dir, 'missing'), '--app', APP],
      /^error: --dest .*missing: no such directory$/,
    ],
    [['event-trend', '--dest', dir, '--app', APP], /^error: --event is required for event-trend/],
    [
      ['devices-per-day', '--dest', dir, '--app', APP, '--from', '2026-13-01'],
      /^error: --from "2026-13-01" is not a UTC day/,
    ],
    [
      ['devices-per-day', '--dest', dir, '--app', APP, '--from', '2026-11-20', '--to', '2026-11-19'],
      /^error: --from 2026-11-20 is after --to 2026-11-19$/,
    ],
    [['events-by-name', '--dest', dir, '--app', 'zz'], /^error: --app "zz" is not a Localytics app ID/],
    [['events-by-name'], /^error: --dest is required/],
  ];
  for (const [args, message] of cases) {
    const run = await query(args);
    expect(run.code, args.join(' ')).toBe(2);
    expect(run.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    expect(run.stderr.trim(), args.join(' ')).toMatch(message);
  }
});

test('a destination without the Parquet layer says how to build it', async () => {
  const bare = await mkdtemp(path.join(os.tmpdir(), 'lsync-query-bare-'));
  try {
    await syncSimulated(bare, simulator, { from: '2026-11-19T10', to: '2026-11-19T11' }, () => now);
    await rm(path.join(bare, 'parquet'), { recursive: true });
    const run = await query(['events-by-name', '--dest', bare, '--app', APP, '--parquet']);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toMatch(
      /has no Parquet data for fact_events \(build the Parquet layer with `convert`\)$/,
    );
  } finally {
    await rm(bare, { recursive: true, force: true });
  }
});
