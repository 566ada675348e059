import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, test } from 'vitest';
import { exportPath, LocalyticsClient, parseRetryAfter } from '../../functions/adapters/localytics-client.js';
import { ApiResponseError, AuthError, LocationExpiredError, PermanentJobError } from '../../functions/core/errors.js';
import { floorHour, HOUR_MS } from '../../functions/core/hours.js';
import type { SyncJob } from '../../functions/core/jobs.js';
import { InProcessRequestBudget } from '../../functions/core/request-budget.js';
import { logRows } from '../../functions/simulator/dataset.js';
import { clientFor, useSimulator } from '../support/simulator.js';

const simulator = useSimulator();
afterEach(() => simulator.faults.clear());

const app = () => simulator.dataset.apps[0] as string;
const readyHour = () => floorHour(Date.now()) - 3 * HOUR_MS;

async function readAll(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('lists', () => {
  test('reads and validates the audience list', async () => {
    const list = await clientFor(simulator).listAudiences();
    expect(list.length).toBe(4);
    expect(list[0]).toMatchObject({ sourceType: 'audiences', sourceId: '153829', jobType: 'idfa' });
    expect(typeof list[0]?.resultsGeneratedAt).toBe('number');
  });

  test('an HTML page instead of JSON is an error naming the endpoint', async () => {
    simulator.faults.add({ kind: 'html', match: '/v1/exports/profiles' });
    const error = await clientFor(simulator)
      .listProfiles()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiResponseError);
    expect((error as Error).message).toMatch(/^\/v1\/exports\/profiles did not answer JSON \(got an HTML page\)/);
  });

  test('a list of the wrong shape is an error naming the endpoint, never an empty list', async () => {
    simulator.faults.add({ kind: 'malformed_list' });
    await expect(clientFor(simulator).listAudiences()).rejects.toThrow(
      /\/v1\/exports\/audiences answered a malformed list/,
    );
  });

  test('retries a list after a 429 and a 500', async () => {
    simulator.faults.add({ kind: 'throttle', retryAfterSeconds: 0 });
    simulator.faults.add({ kind: 'server_error' });
    const client = clientFor(simulator);
    expect((await client.listAudiences()).length).toBe(4);
    expect(client.stats.throttled).toBe(1);
  });

  test('a timestamp without a zone is UTC, whatever the local time zone (issue 10, item 9)', async () => {
    // The documentation's samples end in Z; an entry without one must not shift by the CLI machine's offset.
    const server = http.createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify([
          {
            id: 1,
            name: 'a',
            source_type: 'audiences',
            source_id: '153829',
            job_type: 'idfa',
            results_generated_at: '2017-02-13T12:30:43',
            results_expire_at: '2017-03-30 12:30:43',
          },
        ]),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const zone = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      const [entry] = await new LocalyticsClient({
        apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        credentials: { apiKey: 'zone-test-key', apiSecret: 'zone-test-secret' },
        budget: new InProcessRequestBudget({ ratePerMinute: 6000 }),
      }).listAudiences();
      expect(entry?.resultsGeneratedAt).toBe(Date.UTC(2017, 1, 13, 12, 30, 43));
      expect(entry?.resultsExpireAt).toBe(Date.UTC(2017, 2, 30, 12, 30, 43));
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('wrong credentials are an AuthError', async () => {
    const client = new LocalyticsClient({
      apiUrl: simulator.url,
      credentials: { apiKey: 'wrong-key', apiSecret: 'wrong-secret' },
      budget: new InProcessRequestBudget({ ratePerMinute: 6000 }),
    });
    await expect(client.listAudiences()).rejects.toBeInstanceOf(AuthError);
  });
});

describe('resolve', () => {
  test('answers ready with the Location of a 302, without following it', async () => {
    const requestsBefore = simulator.requests.length;
    const outcome = await clientFor(simulator).resolve({ kind: 'log_hour', appUuid: app(), hour: readyHour() });
    expect(outcome.status).toBe('ready');
    expect(simulator.requests.slice(requestsBefore).map((r) => r.kind)).toEqual(['api']);
  });

  test('sends zero-padded path values', () => {
    const job: SyncJob = { kind: 'log_hour', appUuid: 'ab-cd', hour: Date.UTC(2017, 3, 1, 4) };
    expect(exportPath(job)).toBe('/v1/exports/analytics/logs/ab-cd/2017/04/01/04');
  });

  test('a 404 for a log hour is "not ready", not an error', async () => {
    const future = floorHour(Date.now()) + HOUR_MS;
    expect(await clientFor(simulator).resolve({ kind: 'log_hour', appUuid: app(), hour: future })).toEqual({
      status: 'not_ready',
    });
  });

  test('a 429 is "throttled" with the Retry-After delay, and pauses the budget', async () => {
    simulator.faults.add({ kind: 'throttle', retryAfterSeconds: 2 });
    const outcome = await clientFor(simulator).resolve({ kind: 'log_hour', appUuid: app(), hour: readyHour() });
    expect(outcome).toEqual({ status: 'throttled', retryAfterMs: 2000 });
  });

  test('a 429 without Retry-After backs off exponentially', async () => {
    simulator.faults.add({ kind: 'throttle', count: 2 });
    const client = clientFor(simulator, 6000, () => 1);
    const first = await client.resolve({ kind: 'log_hour', appUuid: app(), hour: readyHour() });
    const second = await client.resolve({ kind: 'log_hour', appUuid: app(), hour: readyHour() });
    expect(first).toEqual({ status: 'throttled', retryAfterMs: 1000 });
    expect(second).toEqual({ status: 'throttled', retryAfterMs: 2000 });
  });

  test('a 5xx is a retryable failure; 403 on an audience is permanent', async () => {
    simulator.faults.add({ kind: 'server_error' });
    const client = clientFor(simulator);
    const transient = await client.resolve({ kind: 'log_hour', appUuid: app(), hour: readyHour() });
    expect(transient).toMatchObject({ status: 'failed', retryable: true });
    const denied = await client.resolve({
      kind: 'audience',
      audienceId: '999',
      identifierType: 'idfa',
      generatedAt: 0,
    });
    expect(denied).toMatchObject({ status: 'failed', retryable: false });
    expect(denied.status === 'failed' && denied.error).toBeInstanceOf(AuthError);
  });

  test('a network failure is a retryable failure, not a crash', async () => {
    const client = new LocalyticsClient({
      apiUrl: 'http://127.0.0.1:1',
      credentials: { apiKey: 'k-1234', apiSecret: 's-1234' },
      budget: new InProcessRequestBudget({ ratePerMinute: 6000 }),
    });
    expect(await client.resolve({ kind: 'profile', profileDbId: '1', generatedAt: 0 })).toMatchObject({
      status: 'failed',
      retryable: true,
    });
  });
});

describe('download', () => {
  test('streams the file and never sends the Authorization header to the file host', async () => {
    const hour = readyHour();
    const client = clientFor(simulator);
    const outcome = await client.resolve({ kind: 'log_hour', appUuid: app(), hour });
    if (outcome.status !== 'ready') throw new Error('expected ready');
    const file = await client.download(outcome.location);
    const lines = gunzipSync(await readAll(file.body))
      .toString()
      .trim()
      .split('\n');
    expect(lines.map((line) => JSON.parse(line))).toEqual(logRows(simulator.dataset, app(), hour));
    const fileRequests = simulator.requests.filter((r) => r.kind === 'file');
    expect(fileRequests.length).toBeGreaterThan(0);
    expect(fileRequests.every((r) => !r.authorization)).toBe(true);
  });

  test('an expired URL is LocationExpiredError', async () => {
    const client = clientFor(simulator);
    const outcome = await client.resolve({ kind: 'log_hour', appUuid: app(), hour: readyHour() });
    if (outcome.status !== 'ready') throw new Error('expected ready');
    simulator.faults.add({ kind: 'expire' });
    await expect(client.download(outcome.location)).rejects.toBeInstanceOf(LocationExpiredError);
  });

  test('refuses a Location on a host that is neither S3 nor the API host, or plain HTTP off loopback', async () => {
    const client = clientFor(simulator);
    await expect(client.download('https://evil.example.com/x?Signature=abc')).rejects.toBeInstanceOf(PermanentJobError);
    await expect(client.download('http://bucket.s3.amazonaws.com/x')).rejects.toThrow(/only HTTPS/);
  });
});

test('parseRetryAfter reads seconds and HTTP dates', () => {
  expect(parseRetryAfter('3')).toBe(3000);
  expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', Date.UTC(2026, 0, 1))).toBe(10_000);
  expect(parseRetryAfter('soon')).toBeUndefined();
  expect(parseRetryAfter(null)).toBeUndefined();
});

test('the backoff after 429s without Retry-After starts over once the API answers again', async () => {
  const client = clientFor(simulator, 6000, () => 1);
  const job = { kind: 'log_hour', appUuid: app(), hour: readyHour() } as const;
  simulator.faults.add({ kind: 'throttle', count: 2 });
  await client.resolve(job);
  await client.resolve(job);
  expect((await client.resolve(job)).status).toBe('ready');
  simulator.faults.add({ kind: 'throttle' });
  expect(await client.resolve(job)).toEqual({ status: 'throttled', retryAfterMs: 1000 });
});
