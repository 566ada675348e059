import { expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { DAY_MS, HOUR_MS } from '../../functions/core/hours.js';
import { dataKey } from '../../functions/core/jobs.js';
import { planSync } from '../../functions/core/planner.js';
import { type ExportListing, type ExportSource, silentLogger } from '../../functions/core/ports.js';
import { tempDir } from '../support/temp.js';

const app = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';
const now = Date.UTC(2026, 10, 29, 12, 30);
const generated = Date.UTC(2026, 10, 29, 13) - DAY_MS;

function listing(overrides: Partial<ExportListing>): ExportListing {
  return {
    id: 1,
    name: 'x',
    sourceType: 'audiences',
    sourceId: '45644',
    jobType: 'idfa',
    resultsCount: 3,
    resultsGeneratedAt: generated,
    ...overrides,
  };
}

function source(audiences: ExportListing[], profiles: ExportListing[]): ExportSource {
  return {
    listAudiences: async () => audiences,
    listProfiles: async () => profiles,
    resolve: async () => {
      throw new Error('planning never resolves');
    },
    download: async () => {
      throw new Error('planning never downloads');
    },
  };
}

test('plans every missing log hour of the window, oldest first, and skips the present ones', async () => {
  const sink = new LocalDirSink(await tempDir());
  const from = now - 6 * HOUR_MS - (now % HOUR_MS);
  await sink.writeText(dataKey({ kind: 'log_hour', appUuid: app, hour: from + HOUR_MS }), 'x');
  const plan = await planSync(
    { datasets: new Set(['logs']), apps: [app], from, to: from + 4 * HOUR_MS, now },
    { source: source([], []), sink, logger: silentLogger },
  );
  expect(plan.jobs.map((job) => (job as { hour: number }).hour)).toEqual([
    from,
    from + 2 * HOUR_MS,
    from + 3 * HOUR_MS,
  ]);
  expect(plan.present.logs).toBe(1);
});

test('reports hours older than the 30-day retention instead of asking for them', async () => {
  const sink = new LocalDirSink(await tempDir());
  const from = now - 31 * DAY_MS - (now % HOUR_MS);
  const plan = await planSync(
    { datasets: new Set(['logs']), apps: [app], from, to: from + 2 * DAY_MS, now },
    { source: source([], []), sink, logger: silentLogger },
  );
  expect(plan.beyondRetention.length).toBeGreaterThan(0);
  expect(plan.jobs.every((job) => (job as { hour: number }).hour >= now - 30 * DAY_MS)).toBe(true);
});

test('plans one job per audience generation and skips the generation already copied', async () => {
  const sink = new LocalDirSink(await tempDir());
  const copied = listing({ sourceId: '1', jobType: 'email' });
  await sink.writeText(
    dataKey({ kind: 'audience', audienceId: '1', identifierType: 'email', generatedAt: generated }),
    'x',
  );
  const plan = await planSync(
    { datasets: new Set(['audiences']), apps: [], from: 0, to: 1, now },
    { source: source([listing({}), copied], []), sink, logger: silentLogger },
  );
  expect(plan.jobs).toEqual([
    { kind: 'audience', audienceId: '45644', identifierType: 'idfa', generatedAt: generated, resultsCount: 3 },
  ]);
  expect(plan.present.audiences).toBe(1);
});

test('skips, with a reason, entries it cannot copy safely', async () => {
  const sink = new LocalDirSink(await tempDir());
  const plan = await planSync(
    { datasets: new Set(['audiences', 'profiles']), apps: [], from: 0, to: 1, now },
    {
      source: source(
        [listing({ sourceId: '../../etc' }), listing({ jobType: 'phone' }), listing({ resultsGeneratedAt: undefined })],
        [
          listing({ sourceType: 'profile', jobType: 'profile_changes', sourceId: '13724' }),
          listing({ sourceType: 'profile', jobType: 'weird' }),
        ],
      ),
      sink,
      logger: silentLogger,
    },
  );
  expect(plan.skipped.map((skip) => skip.reason)).toEqual([
    'source_id "../../etc" is not a positive integer',
    'unknown identifier type "phone"',
    'no results generated yet',
    'unknown job type "weird"',
  ]);
  expect(plan.jobs).toEqual([
    { kind: 'profile_changes', profileDbId: '13724', generatedAt: generated, resultsCount: 3 },
  ]);
});

test('a list deadline that has passed fails the lists with their reason; the log hours are still planned (review)', async () => {
  const sink = new LocalDirSink(await tempDir());
  const from = now - 6 * HOUR_MS - (now % HOUR_MS);
  const plan = await planSync(
    {
      datasets: new Set(['logs', 'audiences']),
      apps: [app],
      from,
      to: from + 2 * HOUR_MS,
      now,
      listSignal: AbortSignal.abort(),
    },
    {
      source: {
        ...source([], []),
        listAudiences: async (options) => {
          if (options?.signal?.aborted) throw new Error('/v1/exports/audiences: gave up at the deadline');
          return [];
        },
      },
      sink,
      logger: silentLogger,
    },
  );
  expect(plan.listFailures).toEqual([{ endpoint: '/v1/exports/audiences', reason: expect.stringMatching(/deadline/) }]);
  expect(plan.jobs).toHaveLength(2);
});
