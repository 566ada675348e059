import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { SAVED_QUERIES } from '../../functions/core/analytics.js';
import { documentedViewGroups, viewColumnsTable } from '../support/analytics-docs.js';
import { runCli } from '../support/cli.js';
import { sqlBlocks } from '../support/duckdb-lake.js';

/**
 * docs/analytics.md is true: its column tables are the views' definitions, its SQL the saved queries', and every
 * `localytics-sync query` it shows prints what it shows, over the demo run at the time the page names.
 */

const DEMO_TIME = Date.parse('2026-11-20T06:30:00Z');
let page: string;
let dir: string;

beforeAll(async () => {
  page = await readFile('docs/analytics.md', 'utf8');
  dir = await mkdtemp(path.join(os.tmpdir(), 'lsync-docs-demo-'));
  // `npm start` is `demo` into ./localytics-demo; here into a temporary folder, at the page's time.
  const demo = await runCli(['demo', '--dest', dir], {}, () => DEMO_TIME);
  expect(demo.code, demo.stdout + demo.stderr).toBe(0);
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the page names the time of the demo run its results come from', () => {
  expect(page).toContain("That is the demo's data (`npm start`) as of 2026-11-20 06:30 UTC");
});

test("the column tables are the views' definitions", () => {
  for (const views of documentedViewGroups()) expect(page).toContain(viewColumnsTable(views));
});

test("the SQL shown is each saved query's, in order", () => {
  const blocks = sqlBlocks(page);
  expect([...blocks.keys()]).toEqual(SAVED_QUERIES.map((query) => query.title));
  for (const query of SAVED_QUERIES) expect(`-- ${query.title}\n${blocks.get(query.title)}`).toBe(query.sql);
});

test('every query command shown prints what the page shows, over the demo data', async () => {
  const sessions = [...page.matchAll(/```console\n\$ node dist\/localytics-sync\.mjs (query .*)\n([\s\S]*?)```/g)];
  expect(sessions.length).toBe(SAVED_QUERIES.length + 1);
  const shownQueries = new Set<string>();
  for (const [, command, shown] of sessions) {
    const args = (command as string).split(' ').map((arg) => (arg === 'localytics-demo' ? dir : arg));
    shownQueries.add(args[1] as string);
    const run = await runCli(args, {}, () => DEMO_TIME);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.replaceAll(dir, 'localytics-demo'), command).toBe(shown);
  }
  expect([...shownQueries].sort()).toEqual(SAVED_QUERIES.map((query) => query.name).sort());
});
