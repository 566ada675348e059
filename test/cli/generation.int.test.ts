/**
 * Issue 10, item 3: an object's generation label names the generation whose bytes it holds, even when Localytics
 * refreshes the exports between our last list and the file request.
 *
 * Change sets are deliberately not relabelled: a `profile_changes` file is not a snapshot of a generation but the
 * changes since our previous request, consumed by the request itself. Its label is the generation of the list it
 * was planned from; after a refresh, the next run asks for the next change set (which Localytics has for the new
 * generation) — a new file, not a copy of one already stored. The last test shows that nothing is lost or
 * duplicated that way.
 */

import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, expect, test } from 'vitest';
import { dataKey, type SyncJob } from '../../functions/core/jobs.js';
import type { SyncSummary } from '../../functions/core/sync.js';
import { audienceRows, profileRows, serializeRows } from '../../functions/simulator/dataset.js';
import { runCli } from '../support/cli.js';
import { credentialEnv, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator();
afterEach(() => {
  const unfired = [...simulator.faults.pending];
  simulator.faults.clear();
  expect(unfired).toEqual([]);
});

async function sync(dir: string, datasets: string) {
  const run = await runCli(
    ['sync', '--dest', dir, '--api-url', simulator.url, '--datasets', datasets, '--rate', '6000', '--json'],
    credentialEnv,
  );
  return { ...run, summary: JSON.parse(run.stdout) as SyncSummary };
}

async function keysUnder(dir: string, folder: string): Promise<string[]> {
  const files = await readdir(path.join(dir, folder), { recursive: true }).catch(() => [] as string[]);
  return files.filter((file) => file.endsWith('.json.gz')).map((file) => `${folder}/${file}`);
}

function snapshotJobs(generatedAt: number): SyncJob[] {
  return [
    ...simulator.dataset.audiences.flatMap((audience) =>
      audience.identifierTypes.map(
        (identifierType): SyncJob => ({
          kind: 'audience',
          audienceId: audience.audienceId,
          identifierType,
          generatedAt,
        }),
      ),
    ),
    ...simulator.dataset.profileDbs.map(
      (db): SyncJob => ({ kind: 'profile', profileDbId: db.profileDbId, generatedAt }),
    ),
  ];
}

test('exports regenerated between the list and the file request land under the generation they hold; a rerun copies no snapshot again', async () => {
  const dir = await tempDir();
  const planned = simulator.generation();
  const [first] = simulator.dataset.audiences;
  // Localytics refreshes everything right when the first audience file is asked for (after our list).
  simulator.faults.add({ kind: 'refresh', match: `/audiences/${first?.audienceId}/` });

  const run = await sync(dir, 'audiences,profiles');
  const current = simulator.generation();
  expect(current).toBeGreaterThan(planned);
  expect(run.code).toBe(0);

  const stored = [...(await keysUnder(dir, 'audiences')), ...(await keysUnder(dir, 'profiles'))].sort();
  expect(stored).toEqual(snapshotJobs(current).map(dataKey).sort());
  for (const job of snapshotJobs(current)) {
    const rows =
      job.kind === 'audience'
        ? audienceRows(simulator.dataset, job.audienceId, job.identifierType, current)
        : profileRows(simulator.dataset, job.kind === 'profile' ? job.profileDbId : '', current);
    expect(gunzipSync(readFileSync(path.join(dir, dataKey(job)))).toString()).toBe(serializeRows(rows));
  }

  const changeSetsBefore = await keysUnder(dir, 'profile_changes');
  const rerun = await sync(dir, 'audiences,profiles');
  expect(rerun.summary.failed).toEqual([]);
  expect([...(await keysUnder(dir, 'audiences')), ...(await keysUnder(dir, 'profiles'))].sort()).toEqual(stored);
  // The only thing a rerun may copy is the next change set (see the file comment), never a snapshot again.
  const newChangeSets = (await keysUnder(dir, 'profile_changes')).length - changeSetsBefore.length;
  expect(rerun.summary.copied).toBe(newChangeSets);
});

test('a change set requested after a refresh keeps its planned label; the next run copies the next one, nothing twice', async () => {
  const dir = await tempDir();
  const [db] = simulator.dataset.profileDbs;
  const consumedBefore = simulator.changeSetsConsumed(db?.profileDbId ?? '');
  simulator.faults.add({ kind: 'refresh', match: '/profile_changes' });

  const run = await sync(dir, 'profiles');
  expect(run.code).toBe(0);
  const rerun = await sync(dir, 'profiles');
  expect(rerun.code).toBe(0);

  const changeSets = await keysUnder(dir, 'profile_changes');
  const consumed = simulator.changeSetsConsumed(db?.profileDbId ?? '') - consumedBefore;
  // Every change set consumed landed, each in its own file, and no change row is stored twice.
  expect(changeSets).toHaveLength(consumed);
  const rows = changeSets.flatMap((key) =>
    gunzipSync(readFileSync(path.join(dir, key)))
      .toString()
      .split('\n')
      .filter(Boolean),
  );
  expect(new Set(rows).size).toBe(rows.length);
  const third = await sync(dir, 'profiles');
  expect(third.summary.copied).toBe(0);
});
