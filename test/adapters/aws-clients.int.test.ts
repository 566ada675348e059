import http from 'node:http';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createDynamoDbClient } from '../../functions/adapters/aws-clients.js';
import { closeServer, listenOnLoopback } from '../support/loopback-server.js';

/** A DynamoDB endpoint that takes every request and never answers: a hung table, a broken network path. */
const hung = http.createServer(() => {});
let endpoint: string;
const saved = { ...process.env };

beforeAll(async () => {
  endpoint = await listenOnLoopback(hung);
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });
});
afterAll(async () => {
  for (const key of ['AWS_ENDPOINT_URL_DYNAMODB', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
  await closeServer(hung);
});

test("a DynamoDB call that gets no answer fails after the client's request timeout, whoever called it", async () => {
  // The request budget and the job ledger call without a deadline at times (the CLI's budget probe, a planner's
  // ledger scan): the SDK's requestTimeout alone only warns unless throwOnRequestTimeout is set.
  const started = Date.now();
  const call = createDynamoDbClient().send(
    new GetItemCommand({ TableName: 'budget', Key: { pk: { S: 'apikey#x' } }, ConsistentRead: true }),
  );
  await expect(call).rejects.toThrow(/timeout|timed out/i);
  // Three attempts of 5 s each, with the SDK's backoff between them.
  expect(Date.now() - started).toBeLessThan(25_000);
}, 40_000);
