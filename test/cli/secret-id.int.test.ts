import { afterAll, beforeAll, expect, test } from 'vitest';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { runCli } from '../support/cli.js';
import { FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { credentials, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator();
const secrets = new FakeSecretsManager();
const awsEnv = () => ({
  AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
});

beforeAll(async () => {
  await secrets.start();
  secrets.put('localytics/api', JSON.stringify(credentials));
  secrets.put('localytics/broken', '{"apiKey": "only-the-key"}');
  Object.assign(process.env, awsEnv());
});
afterAll(() => secrets.stop());

const window = () => {
  const to = floorHour(Date.now()) - 3 * HOUR_MS;
  return ['--from', formatHour(to - HOUR_MS), '--to', formatHour(to)];
};

test('--secret-id reads {"apiKey","apiSecret"} from Secrets Manager', async () => {
  const dir = await tempDir();
  const app = simulator.dataset.apps[0] as string;
  const run = await runCli(
    [
      'sync',
      '--dest',
      dir,
      '--api-url',
      simulator.url,
      '--datasets',
      'logs',
      '--apps',
      app,
      '--secret-id',
      'localytics/api',
      '--rate',
      '6000',
      '--json',
      ...window(),
    ],
    awsEnv(),
  );
  expect(run.code).toBe(0);
  expect(JSON.parse(run.stdout)).toMatchObject({ copied: 1 });
  expect(secrets.requests).toContainEqual({ target: 'secretsmanager.GetSecretValue', secretId: 'localytics/api' });
});

test('a secret of the wrong shape is a configuration error (exit 2) before any API call', async () => {
  const dir = await tempDir();
  const before = simulator.requests.length;
  const run = await runCli(
    ['sync', '--dest', dir, '--api-url', simulator.url, '--datasets', 'audiences', '--secret-id', 'localytics/broken'],
    awsEnv(),
  );
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(
    /secret localytics\/broken must be JSON with non-empty string fields "apiKey" and "apiSecret"/,
  );
  expect(run.stderr).not.toContain('only-the-key');
  expect(simulator.requests.length).toBe(before);
});
