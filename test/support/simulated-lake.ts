import { expect } from 'vitest';
import type { ConvertSummary } from '../../functions/core/convert-layer.js';
import { HOUR_MS } from '../../functions/core/hours.js';
import { type DatasetOptions, type LogRow, logRows } from '../../functions/simulator/dataset.js';
import type { LocalyticsSimulator } from '../../functions/simulator/server.js';
import { runCli } from './cli.js';
import { credentialEnv } from './simulator.js';

/**
 * `sync --parquet` of every app of the simulator over `[from, to)` (and the audiences and profiles of the moment)
 * into `dir`, with the real CLI at the given clock; fails the test unless it exits 0. Returns its Parquet summary.
 */
export async function syncSimulated(
  dir: string,
  simulator: LocalyticsSimulator,
  window: { readonly from: string; readonly to: string },
  now: () => number,
): Promise<ConvertSummary> {
  const run = await runCli(
    [
      'sync',
      '--dest',
      dir,
      '--api-url',
      simulator.url,
      '--apps',
      simulator.dataset.apps.join(','),
      '--from',
      window.from,
      '--to',
      window.to,
      '--rate',
      '6000',
      '--parquet',
      '--json',
    ],
    credentialEnv,
    now,
  );
  expect(run.code, run.stdout + run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { parquet: ConvertSummary }).parquet;
}

/** The raw log rows the simulator serves for an app over a UTC day (`YYYY-MM-DD`). */
export function servedRowsOfDay(dataset: DatasetOptions, app: string, day: string): LogRow[] {
  const start = Date.parse(`${day}T00:00:00Z`);
  return Array.from({ length: 24 }, (_, h) => logRows(dataset, app, start + h * HOUR_MS)).flat();
}
