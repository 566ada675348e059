import { expect, test } from 'vitest';
import type { Coverage } from '../../functions/core/coverage.js';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { runCli } from '../support/cli.js';
import { credentialEnv, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator();

test('status shows the gaps of a window, and a sync over that window makes them disappear', async () => {
  const dir = await tempDir();
  const app = simulator.dataset.apps[0] as string;
  const to = floorHour(Date.now()) - 3 * HOUR_MS;
  const window = (from: number) => ['--apps', app, '--from', formatHour(from), '--to', formatHour(to)];
  const sync = (from: number) =>
    runCli(
      ['sync', '--dest', dir, '--api-url', simulator.url, '--datasets', 'logs', '--rate', '6000', ...window(from)],
      credentialEnv,
    );

  await sync(to - 2 * HOUR_MS);
  const before = await runCli(['status', '--dest', dir, '--json', ...window(to - 6 * HOUR_MS)]);
  expect(before.code).toBe(0);
  const gaps = JSON.parse(before.stdout) as Coverage;
  expect(gaps.apps[0]).toMatchObject({ present: 2, pending: [], newestHour: formatHour(to - HOUR_MS) });
  expect(gaps.apps[0]?.missing).toEqual([6, 5, 4, 3].map((n) => formatHour(to - n * HOUR_MS)));

  const marks = (coverage: Coverage) => coverage.apps[0]?.grid.map((day) => day.hours).join('') ?? '';
  expect(marks(gaps).replace(/ /g, '')).toBe('xxxx##');

  const text = await runCli(['status', '--dest', dir, ...window(to - 6 * HOUR_MS)]);
  expect(text.stdout).toContain(
    `missing (a sync over the window fills these): ${formatHour(to - 6 * HOUR_MS)}..${formatHour(to - 3 * HOUR_MS)}`,
  );

  await sync(to - 6 * HOUR_MS);
  const after = JSON.parse(
    (await runCli(['status', '--dest', dir, '--json', ...window(to - 6 * HOUR_MS)])).stdout,
  ) as Coverage;
  expect(after.apps[0]).toMatchObject({ present: 6, missing: [] });
  expect(marks(after).replace(/ /g, '')).toBe('######');
});
