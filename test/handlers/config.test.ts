import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { APP_LIST_FILE, formatAppList, readHandlerConfig } from '../../functions/handlers/config.js';

// The planner's code directory (LAMBDA_TASK_ROOT), with the app list the stack bundles there.
const taskRoot = mkdtempSync(path.join(os.tmpdir(), 'lsync-task-'));
afterAll(() => rmSync(taskRoot, { recursive: true, force: true }));
const APPS = [
  '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8',
  '91e6f7bf1c6004b029c3082-602f5774-ae2b-11e2-0c2c-004a77f8b47f',
];
writeFileSync(path.join(taskRoot, APP_LIST_FILE), formatAppList(APPS));
writeFileSync(path.join(taskRoot, 'not-json.json'), '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8\n');
writeFileSync(path.join(taskRoot, 'bad-app.json'), JSON.stringify([APPS[0], 'not-an-app']));

const base = {
  DEST_BUCKET: 'lake',
  SECRET_ID: 'arn:aws:secretsmanager:us-east-1:1:secret:x',
  LAMBDA_TASK_ROOT: taskRoot,
  APPS_FILE: APP_LIST_FILE,
  DATASETS: 'logs,audiences',
  RATE_PER_MINUTE: '50',
  BUDGET_TABLE: 'lsync-budget',
  QUEUE_URL: 'https://sqs/q',
  DLQ_URL: 'https://sqs/dlq',
  LEDGER_TABLE: 'sync-ledger',
};

test('reads the environment once into typed settings, with documented defaults', () => {
  const config = readHandlerConfig(base);
  expect(config).toMatchObject({
    bucket: 'lake',
    prefix: '',
    apiUrl: 'https://api.localytics.com',
    apps: APPS,
    maxReceiveCount: 5,
    logLagHours: 1,
    lookbackHours: 6,
    backfillDays: 30,
    requestsPerMinute: 50,
    ledgerTable: 'sync-ledger',
    queueAheadMinutes: 30,
    notReadyDeadlineHours: 24,
    allowedFileHosts: [],
    retryBaseSeconds: 30,
    notReadyDelaySeconds: 900,
    lagAlarmHours: 6,
  });
  expect(config).toMatchObject({ ratePerMinute: 50, budgetTable: 'lsync-budget' });
  expect([...config.datasets]).toEqual(['logs', 'audiences']);
});

describe('a bad environment fails at cold start with a message naming the variable', () => {
  test.each([
    [{ DEST_BUCKET: undefined }, /DEST_BUCKET/],
    [{ APPS_FILE: 'missing.json' }, /APPS_FILE \/.*\/missing\.json cannot be read/],
    [{ APPS_FILE: 'not-json.json' }, /APPS_FILE \/.*\/not-json\.json is not JSON/],
    [{ APPS_FILE: 'bad-app.json' }, /APPS_FILE \/.*\/bad-app\.json: 1: is not a Localytics app ID/],
    [{ DATASETS: 'logs,events' }, /DATASETS\.1/],
    [{ RATE_PER_MINUTE: 'fifty' }, /RATE_PER_MINUTE: must be a whole number/],
    [{ RATE_PER_MINUTE: '12.5' }, /RATE_PER_MINUTE: must be a whole number/],
    [{ BUDGET_TABLE: undefined }, /BUDGET_TABLE/],
    [{ BACKFILL_DAYS: '31' }, /BACKFILL_DAYS: Too big/],
    [{ LEDGER_TABLE: undefined }, /LEDGER_TABLE/],
    [{ QUEUE_AHEAD_MINUTES: '0' }, /QUEUE_AHEAD_MINUTES: Too small/],
    [{ API_URL: 'not a url' }, /API_URL/],
    // The Basic credentials would travel in clear (issue 21, item 2).
    [{ API_URL: 'http://api.example.com' }, /API_URL must use https \(plain http is allowed only on loopback/],
  ])('%j', (override, message) => {
    expect(() => readHandlerConfig({ ...base, ...override })).toThrow(message);
  });
});

test("the app list is read from the function's code directory; without APPS_FILE (the copier) there is none", () => {
  expect(
    readHandlerConfig({ ...base, APPS_FILE: path.join(taskRoot, APP_LIST_FILE), LAMBDA_TASK_ROOT: '/elsewhere' }).apps,
  ).toEqual(APPS);
  expect(readHandlerConfig({ ...base, APPS_FILE: undefined }).apps).toEqual([]);
});
