import { expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { EXPORTS_SEEN_KEY, watchExports } from '../../functions/core/export-watch.js';
import { DAY_MS, HOUR_MS } from '../../functions/core/hours.js';
import type { SyncJob } from '../../functions/core/jobs.js';
import { planSync } from '../../functions/core/planner.js';
import { type ExportListing, type ExportSource, silentLogger } from '../../functions/core/ports.js';
import { tempDir } from '../support/temp.js';

const now = Date.UTC(2026, 10, 29, 14, 30);
const audience = (id: string, generatedAt: number): SyncJob => ({
  kind: 'audience',
  audienceId: id,
  identifierType: 'idfa',
  generatedAt,
});

test('an export whose newest generation is older than the threshold is reported; a fresh one is not', async () => {
  const sink = new LocalDirSink(await tempDir());
  const listed = new Map([
    ['audiences' as const, [audience('1', now - 50 * HOUR_MS), audience('2', now - 2 * HOUR_MS)]],
  ]);
  const concerns = await watchExports(listed, { sink, logger: silentLogger }, now, 48);
  expect(concerns).toEqual([
    expect.objectContaining({
      export: 'audience 1/idfa',
      reason: 'not_refreshed',
      detail: expect.stringMatching(/50 h old/),
    }),
  ]);
});

test('an export that leaves its list is reported for three days, then forgotten', async () => {
  const sink = new LocalDirSink(await tempDir());
  const deps = { sink, logger: silentLogger };
  await watchExports(new Map([['audiences', [audience('1', now), audience('2', now)]]]), deps, now, 48);
  const day1 = await watchExports(new Map([['audiences', [audience('1', now + DAY_MS)]]]), deps, now + DAY_MS, 48);
  expect(day1).toEqual([expect.objectContaining({ export: 'audience 2/idfa', reason: 'vanished' })]);
  const day3 = await watchExports(
    new Map([['audiences', [audience('1', now + 3 * DAY_MS)]]]),
    deps,
    now + 3 * DAY_MS,
    48,
  );
  expect(day3.map((concern) => concern.export)).toEqual(['audience 2/idfa']);
  const day4 = await watchExports(
    new Map([['audiences', [audience('1', now + 4 * DAY_MS)]]]),
    deps,
    now + 4 * DAY_MS,
    48,
  );
  expect(day4).toEqual([]);
});

test('a list that could not be read reports nothing as vanished, and keeps what was seen of it', async () => {
  const sink = new LocalDirSink(await tempDir());
  const listing: ExportListing = {
    id: 1,
    name: 'a',
    sourceType: 'audiences',
    sourceId: '7',
    jobType: 'idfa',
    resultsGeneratedAt: now - HOUR_MS,
  };
  let failing = false;
  const source: ExportSource = {
    listAudiences: async () => {
      if (failing) throw new Error('/v1/exports/audiences answered 500');
      return [listing];
    },
    listProfiles: async () => [],
    resolve: async () => {
      throw new Error('not used');
    },
    download: async () => {
      throw new Error('not used');
    },
  };
  const plan = (at: number) =>
    planSync(
      { datasets: new Set(['audiences']), apps: [], from: at, to: at, now: at },
      { source, sink, logger: silentLogger },
    );
  expect((await plan(now)).exportConcerns).toEqual([]);
  failing = true;
  const failed = await plan(now + DAY_MS);
  expect(failed.listFailures).toHaveLength(1);
  expect(failed.exportConcerns).toEqual([]);
  expect(JSON.parse((await sink.readText(EXPORTS_SEEN_KEY)) ?? '{}')).toHaveProperty(['audience 7/idfa']);
});
