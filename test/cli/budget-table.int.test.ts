import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DynamoDbRequestBudget } from '../../functions/adapters/dynamodb-request-budget.js';
import { LocalyticsClient } from '../../functions/adapters/localytics-client.js';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { LocalyticsSimulator } from '../../functions/simulator/server.js';
import { runCli } from '../support/cli.js';
import { createDynamoDbClient, createTestTable, dynamoDbEndpoint } from '../support/dynamodb.js';
import { closeServer, listenOnLoopback } from '../support/loopback-server.js';
import { credentialEnv, credentials } from '../support/simulator.js';

const RATE_PER_MINUTE = 120;
const simulator = new LocalyticsSimulator({ ratePerMinute: RATE_PER_MINUTE });
let dest: string;
const dynamoEnv = () => ({
  AWS_ENDPOINT_URL_DYNAMODB: dynamoDbEndpoint(),
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
});

beforeAll(async () => {
  await simulator.start();
  dest = await mkdtemp(path.join(os.tmpdir(), 'lsync-budget-cli-'));
  // The DynamoDB client takes the standard AWS SDK environment of the process.
  Object.assign(process.env, dynamoEnv());
});
afterAll(async () => {
  await simulator.stop();
  await rm(dest, { recursive: true, force: true });
});

const to = floorHour(Date.now()) - 3 * HOUR_MS;
const syncArgs = (hours: number, budgetTable: string) => [
  'sync',
  '--dest',
  dest,
  '--api-url',
  simulator.url,
  '--datasets',
  'logs',
  '--apps',
  simulator.dataset.apps[0] as string,
  '--from',
  formatHour(to - hours * HOUR_MS),
  '--to',
  formatHour(to),
  '--rate',
  String(RATE_PER_MINUTE),
  '--budget-table',
  budgetTable,
  '--json',
];

test('--budget-table naming a missing table stops with exit 2 before any API call, naming the table', async () => {
  const before = simulator.requests.length;
  const run = await runCli(syncArgs(2, 'no-such-budget'), { ...credentialEnv, ...dynamoEnv() });
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/^error: --budget-table: request budget table "no-such-budget" does not exist[^\n]*\n$/);
  expect(simulator.requests.length).toBe(before);
});

test('--budget-table on a table the CLI may read but not write stops with exit 2 before any API call', async () => {
  const table = await createTestTable(createDynamoDbClient());
  // A DynamoDB endpoint that forwards to dynalite but refuses writes, as IAM does for a read-only role.
  const upstream = new URL(dynamoDbEndpoint());
  const writes: string[] = [];
  const readOnly = http.createServer((request, response) => {
    const target = String(request.headers['x-amz-target'] ?? '');
    if (/\.(PutItem|UpdateItem|DeleteItem|BatchWriteItem|TransactWriteItems)$/.test(target)) {
      writes.push(target);
      request.resume();
      response.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(
        JSON.stringify({
          __type: 'com.amazonaws.dynamodb.v20120810#AccessDeniedException',
          message: `User: arn:aws:iam::123456789012:user/reader is not authorized to perform: ${target.split('.')[1]}`,
        }),
      );
      return;
    }
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers: request.headers,
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    request.pipe(forward);
  });
  const url = await listenOnLoopback(readOnly);
  try {
    const before = simulator.requests.length;
    // The SDK reads its endpoint from the process environment.
    process.env.AWS_ENDPOINT_URL_DYNAMODB = url;
    const run = await runCli(syncArgs(2, table), { ...credentialEnv, ...dynamoEnv(), AWS_ENDPOINT_URL_DYNAMODB: url });
    process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamoDbEndpoint();
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(`^error: --budget-table: no access to request budget table "${table}"[^\\n]*\\n$`),
    );
    expect(writes).toEqual(['DynamoDB_20120810.PutItem']);
    expect(simulator.requests.length).toBe(before);
  } finally {
    process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamoDbEndpoint();
    await closeServer(readOnly);
  }
});

test('a CLI run with --budget-table and a deployment share one budget: together at the key rate, no 429', async () => {
  const table = await createTestTable(createDynamoDbClient());
  // The "deployment": another process of the same key taking slots from the same table while the CLI runs.
  const deployment = new LocalyticsClient({
    apiUrl: simulator.url,
    credentials,
    budget: new DynamoDbRequestBudget({
      client: createDynamoDbClient(),
      tableName: table,
      apiKey: credentials.apiKey,
      ratePerMinute: RATE_PER_MINUTE,
    }),
  });
  const app = simulator.dataset.apps[1] as string;
  const mark = simulator.requests.length;
  const [run] = await Promise.all([
    runCli(syncArgs(6, table), { ...credentialEnv, ...dynamoEnv() }),
    (async () => {
      for (let i = 0; i < 6; i++) {
        await deployment.resolve({ kind: 'log_hour', appUuid: app, hour: to - (i + 1) * HOUR_MS });
      }
    })(),
  ]);
  deployment.close();

  expect(run.code).toBe(0);
  expect(JSON.parse(run.stdout)).toMatchObject({ copied: 6, apiRequests: 6, throttled: 0 });
  const api = simulator.requests.slice(mark).filter((r) => r.kind === 'api');
  expect(api).toHaveLength(12);
  expect(api.filter((r) => r.status === 429)).toEqual([]);
  // Two separate budgets would send the 12 requests in about 2.5 s; one shared budget takes 11 intervals (5.5 s).
  const times = api.map((r) => r.at).sort((a, b) => a - b);
  const interval = 60_000 / RATE_PER_MINUTE;
  expect((times.at(-1) as number) - (times[0] as number)).toBeGreaterThanOrEqual(11 * interval * 0.85);
});
