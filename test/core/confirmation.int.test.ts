/**
 * The list that confirms an audience's or profile's generation before its object is committed (issue 10, item 3),
 * under throttling and concurrency. Regressions from a review: a 429 on that list was waited out until the deadline
 * and counted as an interruption (parked on the fifth).
 */
import { readdir } from 'node:fs/promises';
import { afterEach, expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { copyJob } from '../../functions/core/copy-job.js';
import { newJobMessage } from '../../functions/core/job-message.js';
import { audienceJobs } from '../../functions/core/planner.js';
import { silentLogger } from '../../functions/core/ports.js';
import { processJobMessage } from '../../functions/core/process-job.js';
import { clientFor, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator();
afterEach(() => simulator.faults.clear());

test('a 429 on the confirming list requeues the job with its delay; nothing is committed (review R4)', async () => {
  const client = clientFor(simulator);
  const [job] = audienceJobs(await client.listAudiences(), []);
  if (!job) throw new Error('the simulator lists audiences');
  const download = client.download.bind(client);
  client.download = async (location, options) => {
    // Localytics throttles the key (another tool on it) while our file is downloading.
    simulator.faults.add({ kind: 'throttle', match: '/v1/exports/audiences', retryAfterSeconds: 600, count: 20 });
    return download(location, options);
  };
  const dir = await tempDir();
  const queue = { enqueue: async () => {}, requeue: async () => {}, park: async () => {} };
  const now = Date.now();
  const started = Date.now();
  const result = await processJobMessage(
    JSON.stringify({ ...newJobMessage(job, now), interruptions: 4 }),
    { source: client, sink: new LocalDirSink(dir), logger: silentLogger, queue, signal: AbortSignal.timeout(5_000) },
    { receiveCount: 1, maxReceiveCount: 5, now },
  );
  client.close();
  expect(result).toMatchObject({ action: 'requeued', reason: 'throttled', delaySeconds: 600 });
  expect(Date.now() - started).toBeLessThan(4_000);
  const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
  expect(files).toEqual([]);
});

test('downloads that end while a confirming list waits for its slot share it: four files, one list', async () => {
  // A slow budget (one request a second), so that the first list is still waiting when the other downloads end.
  const client = clientFor(simulator, 60);
  const jobs = audienceJobs(await client.listAudiences(), []);
  expect(jobs).toHaveLength(4);
  const dir = await tempDir();
  const before = simulator.apiRequests().length;
  const outcomes = await Promise.all(
    jobs.map((job) => copyJob(job, { source: client, sink: new LocalDirSink(dir), logger: silentLogger })),
  );
  client.close();
  expect(outcomes.map((outcome) => outcome.status)).toEqual(['copied', 'copied', 'copied', 'copied']);
  const requests = simulator.apiRequests().slice(before);
  const lists = requests.filter((request) => request.path === '/v1/exports/audiences');
  expect(requests.length - lists.length).toBe(4);
  expect(lists.length).toBe(1);
});
