import { expect, test } from 'vitest';
import { DynamoDbRequestBudget } from '../../functions/adapters/dynamodb-request-budget.js';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { LocalyticsClient } from '../../functions/adapters/localytics-client.js';
import { newJobMessage, serializeJobMessage } from '../../functions/core/job-message.js';
import { audienceJobs } from '../../functions/core/planner.js';
import { silentLogger } from '../../functions/core/ports.js';
import { type JobQueue, processJobMessage } from '../../functions/core/process-job.js';
import { InvocationBudget } from '../../functions/handlers/runtime.js';
import { createDynamoDbClient, createTestTable } from '../support/dynamodb.js';
import { clientFor, credentials, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

/**
 * An audience or profile copy makes a second API call after its download: the list that confirms the generation.
 * It must get the time left at that moment, not what was left when the invocation started, and when no slot is free
 * in time the job goes back to the queue with a delay: never a failure that could park it. (Found by a review: a
 * download longer than the invocation's first budget window made every delivery fail until the job was parked.)
 */
const simulator = useSimulator();

class RecordingQueue implements JobQueue {
  readonly parked: string[] = [];
  async enqueue(): Promise<void> {}
  async requeue(): Promise<void> {}
  async park(_body: string, reason: string): Promise<void> {
    this.parked.push(reason);
  }
}
const dynamo = createDynamoDbClient();
/** The API requests the simulator saw since `mark` (downloads of files are not API requests). */
const apiPaths = (mark: number) =>
  simulator.requests
    .slice(mark)
    .map((request) => request.path)
    .filter((path) => path.startsWith('/v1/'));

async function setUp(ratePerMinute: number, downloadDelayMs = 0) {
  const [job] = audienceJobs(await clientFor(simulator).listAudiences(), []);
  if (!job) throw new Error('the simulator lists no audience');
  const table = await createTestTable(dynamo);
  const budget = new InvocationBudget(
    new DynamoDbRequestBudget({ client: dynamo, tableName: table, apiKey: credentials.apiKey, ratePerMinute }),
  );
  const client = new LocalyticsClient({ apiUrl: simulator.url, credentials, budget, random: () => 0 });
  const download = client.download.bind(client);
  client.download = async (location, options) => {
    await new Promise((resolve) => setTimeout(resolve, downloadDelayMs));
    return download(location, options);
  };
  const sink = new LocalDirSink(await tempDir());
  const queue = new RecordingQueue();
  /** One delivery of the job (the last one: a failure would park it) in an invocation that ends `deadlineInMs` on. */
  const deliver = async (deadlineInMs: number) => {
    const now = Date.now();
    budget.deadlineAt = now + deadlineInMs;
    const mark = simulator.requests.length;
    const result = await processJobMessage(
      serializeJobMessage(newJobMessage(job, now)),
      { source: client, sink, logger: silentLogger, queue, signal: AbortSignal.timeout(deadlineInMs + 30_000) },
      { receiveCount: 5, maxReceiveCount: 5, now },
    );
    client.close();
    return { result, mark };
  };
  return { sink, queue, deliver };
}

test('a confirming list after a download longer than the first budget window still gets its slot', async () => {
  const { queue, deliver } = await setUp(600, 2_500);
  // 4 s to go: the file request may wait 2 s for a slot; the list, asked 2.5 s later, half of the 1.5 s then left.
  const { result, mark } = await deliver(4_000);
  expect(result).toMatchObject({ action: 'done', outcome: { status: 'copied' }, apiRequests: 2 });
  expect(apiPaths(mark)).toEqual([expect.stringMatching(/^\/v1\/exports\/audiences\/.+/), '/v1/exports/audiences']);
  expect(queue.parked).toEqual([]);
});

test('a confirming list with no slot before the deadline hands the job back with a delay, never as a failure', async () => {
  // One request a minute: the file request takes the slot now, the list's would be a minute on.
  const { sink, queue, deliver } = await setUp(1);
  const { result, mark } = await deliver(30_000);
  // Only the file request was sent (and counted); nothing was committed.
  expect(result).toMatchObject({ action: 'requeued', reason: 'budget', apiRequests: 1 });
  expect((result as { delaySeconds: number }).delaySeconds).toBeGreaterThan(30);
  expect(apiPaths(mark)).toEqual([expect.stringMatching(/^\/v1\/exports\/audiences\/.+/)]);
  expect(queue.parked).toEqual([]);
  const stored: string[] = [];
  for await (const object of sink.list('')) stored.push(object.key);
  expect(stored).toEqual([]);
});
