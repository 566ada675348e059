import { afterEach, expect, test } from 'vitest';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { runCli } from '../support/cli.js';
import { TEST_CREDENTIALS } from '../support/leak-scan.js';
import { useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const { apiKey, apiSecret } = TEST_CREDENTIALS[1];
const simulator = useSimulator({ credentials: { apiKey, apiSecret } });
afterEach(() => simulator.faults.clear());

test('the key, the secret, the Authorization value and presigned signatures appear in no output, even on failures', async () => {
  const dir = await tempDir();
  const app = simulator.dataset.apps[0] as string;
  const to = floorHour(Date.now()) - 2 * HOUR_MS;
  simulator.faults.add({ kind: 'reset', count: 8 });
  simulator.faults.add({ kind: 'expire', count: 3 });
  simulator.faults.add({ kind: 'unauthorized', match: '/analytics/logs/', count: 1 });
  const outputs: string[] = [];
  for (const extra of [['--verbose'], ['--json', '--verbose']]) {
    const run = await runCli(
      [
        'sync',
        '--dest',
        dir,
        '--api-url',
        simulator.url,
        '--apps',
        app,
        '--from',
        formatHour(to - 3 * HOUR_MS),
        '--to',
        formatHour(to),
        '--rate',
        '6000',
        ...extra,
      ],
      { LOCALYTICS_API_KEY: apiKey, LOCALYTICS_API_SECRET: apiSecret },
    );
    outputs.push(run.stdout, run.stderr);
  }
  const all = outputs.join('\n');
  // The run really went through failures and retries, so the error paths were printed.
  expect(all).toMatch(/download failed, retrying same location/);
  expect(all).toMatch(/answered 401/);
  const basic = Buffer.from(`${apiKey}:${apiSecret}`).toString('base64');
  for (const needle of [apiKey, apiSecret, basic, 'Signature=', 'Expires=']) expect(all).not.toContain(needle);
  expect(simulator.requests.filter((r) => r.kind === 'file').length).toBeGreaterThan(0);
});
