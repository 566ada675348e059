import { readdir } from 'node:fs/promises';
import { afterEach, expect, test } from 'vitest';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import type { SyncSummary } from '../../functions/core/sync.js';
import { runCli } from '../support/cli.js';
import { credentialEnv, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator({ malformedProfileLine: true });
afterEach(() => {
  const unfired = [...simulator.faults.pending];
  simulator.faults.clear();
  expect(unfired).toEqual([]);
});

async function sync(dir: string, extra: string[]) {
  const run = await runCli(
    ['sync', '--dest', dir, '--api-url', simulator.url, '--rate', '6000', '--json', ...extra],
    credentialEnv,
  );
  return { ...run, summary: JSON.parse(run.stdout) as SyncSummary & { apiRequests: number } };
}

test.each([
  ['html', /did not answer JSON \(got an HTML page\)/],
  ['malformed_list', /answered a malformed list: /],
  ['wrong_types', /answered a malformed list at \[0\.source_id\]/],
  ['oversized_list', /answered more than 5242880 bytes; refusing an oversized list/],
] as const)(
  'a %s list response is a failure naming the endpoint; nothing is written and no retry loop',
  async (kind, message) => {
    const dir = await tempDir();
    simulator.faults.add({ kind, match: '/v1/exports/audiences' });
    const before = simulator.apiRequests().length;
    const { code, summary } = await sync(dir, ['--datasets', 'audiences']);
    expect(code).toBe(1);
    expect(summary.failed).toEqual([{ job: 'list /v1/exports/audiences', reason: expect.stringMatching(message) }]);
    expect(simulator.apiRequests().length - before).toBe(1);
    expect(await readdir(dir)).toEqual([]);
  },
);

test('malformed JSON lines are copied byte for byte, counted and reported', async () => {
  const dir = await tempDir();
  const { code, summary } = await sync(dir, ['--datasets', 'profiles']);
  expect(code).toBe(0);
  expect(summary.warnings).toEqual([
    expect.stringMatching(/^profile\/6012\/\d{8}T\d{6}Z: 1 malformed JSON line\(s\), copied as they are$/),
  ]);
});

test('an empty file lands (it is what Localytics served) and is reported', async () => {
  const dir = await tempDir();
  const app = simulator.dataset.apps[0] as string;
  const hour = floorHour(Date.now()) - 5 * HOUR_MS;
  simulator.faults.add({ kind: 'empty', match: `log/${app}/${formatHour(hour)}` });
  const { code, summary } = await sync(dir, [
    '--datasets',
    'logs',
    '--apps',
    app,
    '--from',
    formatHour(hour),
    '--to',
    formatHour(hour + HOUR_MS),
  ]);
  expect(code).toBe(0);
  expect(summary.copied).toBe(1);
  expect(summary.warnings).toEqual([`log_hour/${app}/${formatHour(hour)}: the file host served an empty file`]);
});

test('a gzip that stays corrupt is reported failed after bounded retries, and nothing is left at its key', async () => {
  const dir = await tempDir();
  const app = simulator.dataset.apps[1] as string;
  const hour = floorHour(Date.now()) - 6 * HOUR_MS;
  simulator.faults.add({ kind: 'corrupt', match: `log/${app}/${formatHour(hour)}`, count: 12 });
  const { code, summary } = await sync(dir, [
    '--datasets',
    'logs',
    '--apps',
    app,
    '--from',
    formatHour(hour),
    '--to',
    formatHour(hour + HOUR_MS),
  ]);
  expect(code).toBe(1);
  expect(summary.failed).toEqual([
    {
      job: `log_hour/${app}/${formatHour(hour)}`,
      reason: expect.stringMatching(/gzip content is corrupt or truncated/),
    },
  ]);
  const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
  expect(files).toEqual([]);
}, 60_000);
