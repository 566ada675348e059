import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { DynamoDbRequestBudget } from '../../functions/adapters/dynamodb-request-budget.js';
import { LocalyticsClient } from '../../functions/adapters/localytics-client.js';
import { floorHour, HOUR_MS } from '../../functions/core/hours.js';
import { type AcquireOptions, BudgetUnavailable, type RequestBudget } from '../../functions/core/request-budget.js';
import { createDynamoDbClient, createTestTable } from '../support/dynamodb.js';
import { credentials, useSimulator } from '../support/simulator.js';
import { SteppedClock } from '../support/stepped-clock.js';

const simulator = useSimulator();
afterEach(() => simulator.faults.clear());

/** A budget that records what the client asks of it; `full` makes every acquire find no slot in time. */
class RecordingBudget implements RequestBudget {
  readonly pauses: number[] = [];
  acquired = 0;
  constructor(private readonly full = false) {}
  async acquire(_signal?: AbortSignal, _options?: AcquireOptions): Promise<void> {
    if (this.full) throw new BudgetUnavailable(42_000);
    this.acquired++;
  }
  async pause(ms: number): Promise<void> {
    // A shared pause is a write to the budget table: it takes a while.
    await new Promise((resolve) => setTimeout(resolve, 50));
    this.pauses.push(ms);
  }
}

const job = () => ({
  kind: 'log_hour' as const,
  appUuid: simulator.dataset.apps[0] as string,
  hour: floorHour(Date.now()) - 3 * HOUR_MS,
});

test('no budget slot in time: the job is handed back (throttled by the budget) and nothing is sent', async () => {
  const client = new LocalyticsClient({ apiUrl: simulator.url, credentials, budget: new RecordingBudget(true) });
  const before = simulator.requests.length;
  expect(await client.resolve(job())).toEqual({ status: 'throttled', retryAfterMs: 42_000, byBudget: true });
  expect(simulator.requests.length).toBe(before);
  expect(client.stats).toMatchObject({ apiRequests: 0, throttled: 0 });
});

test('a 429 pauses the shared budget for the Retry-After, and the pause is written before the answer returns', async () => {
  simulator.faults.add({ kind: 'throttle', retryAfterSeconds: 7 });
  const budget = new RecordingBudget();
  const client = new LocalyticsClient({ apiUrl: simulator.url, credentials, budget });
  expect(await client.resolve(job())).toEqual({ status: 'throttled', retryAfterMs: 7_000 });
  expect(budget.pauses).toEqual([7_000]);
  expect(client.stats).toMatchObject({ apiRequests: 1, throttled: 1 });
});

test('a beforeSend that holds its slot too long (a slow change-set claim) sends on a new slot, inside the window rule', async () => {
  // Found by a review: at rate 2, a claim that took 1.5 s sent its request after slot + margin, and three requests
  // arrived within one minute.
  const clock = new SteppedClock();
  const arrivals: number[] = [];
  const server = http.createServer((request, response) => {
    arrivals.push(clock.now());
    request.resume();
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const dynamo = createDynamoDbClient();
    const budget = new DynamoDbRequestBudget({
      client: dynamo,
      tableName: await createTestTable(dynamo),
      apiKey: credentials.apiKey,
      ratePerMinute: 2,
      clock,
    });
    const client = new LocalyticsClient({
      apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      credentials,
      budget,
      clock,
    });
    const logJob = (i: number) => ({ kind: 'log_hour' as const, appUuid: 'app', hour: Date.UTC(2026, 0, 1, i) });
    await clock.run(
      [
        () => client.resolve(logJob(1), { beforeSend: () => clock.sleep(1_500) }),
        () => client.resolve(logJob(2)),
        () => client.resolve(logJob(3)),
      ],
      { blocked: () => budget.waitingForRoom },
    );
    client.close();
    expect(arrivals).toHaveLength(3);
    const busiest = Math.max(...arrivals.map((end) => arrivals.filter((t) => t > end - 60_000 && t <= end).length));
    expect(busiest).toBeLessThanOrEqual(2);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
