import { readFile } from 'node:fs/promises';
import { describe, expect, test } from 'vitest';
import { floorHour, formatHour, HOUR_MS } from '../../functions/core/hours.js';
import { runCli } from '../support/cli.js';
import { credentialEnv, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator();
const app = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';

describe('bad input exits 2 with a one-line error, before any API call', () => {
  test.each([
    [['--apps', 'not-a-uuid'], /--apps: "not-a-uuid" is not a Localytics app ID/],
    [['--from', '2026-11-28T25'], /--from "2026-11-28T25" is not a UTC hour written YYYY-MM-DDTHH/],
    [['--from', '2026-11-28T10', '--to', '2026-11-28T09'], /--from 2026-11-28T10 must be before --to 2026-11-28T09/],
    [['--datasets', 'logs,events'], /unknown dataset "events" in --datasets/],
    [['--rate', '0'], /--rate "0" must be a whole number from 1 to 100000/],
    [['--dest', 'ftp://host/x'], /only s3:\/\/ URLs and local directories are supported/],
    [['--dest', 's3://Bad_Bucket/x'], /not a valid S3 bucket name/],
    [['--api-url', 'http://example.com'], /--api-url must use https/],
    // Issue 21, item 10: mistaken input that used to run.
    [['--dest', '/'], /--dest "\/" is the root of the file system/],
    [['--dest', 's3:/bucket/x'], /--dest "s3:\/bucket\/x": an S3 destination is written s3:\/\/bucket\/prefix/],
    [['--dest', 'S3://bucket/x'], /--dest "S3:\/\/bucket\/x": an S3 destination is written s3:\/\/bucket\/prefix/],
    [['--from', '0000-01-01T00', '--to', '0000-01-02T00'], /--to "0000-01-02T00": hours before 1970 are not supported/],
    [['--from', '0000-01-01T00'], /--from "0000-01-01T00": hours before 1970 are not supported/],
    [['--from', '1969-12-31T23'], /--from "1969-12-31T23": hours before 1970 are not supported/],
    [['--datasets', 'logs', '--apps', ''], /--apps is required for the logs dataset/],
    [['--bogus'], /unknown option '--bogus'/],
    // The hour in progress has no file yet: --to (exclusive) may be at most the current hour (issue 10, item 9).
    [
      ['--to', formatHour(floorHour(Date.now()) + HOUR_MS)],
      /--to .* is too late: it is exclusive and may be at most the current hour/,
    ],
  ])('%j', async (args, message) => {
    const dir = await tempDir();
    const before = simulator.requests.length;
    const defaults = ['--dest', dir, '--api-url', simulator.url, '--apps', app];
    const run = await runCli(['sync', ...defaults, ...args], credentialEnv);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
    expect(simulator.requests.length).toBe(before);
  });

  test('missing credentials', async () => {
    const dir = await tempDir();
    const run = await runCli(['sync', '--dest', dir, '--api-url', simulator.url, '--apps', app], {});
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /missing credentials: set LOCALYTICS_API_KEY and LOCALYTICS_API_SECRET, or pass --secret-id/,
    );
  });

  test('a missing --dest', async () => {
    const run = await runCli(['sync', '--apps', app], credentialEnv);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/required option '--dest <destination>' not specified/);
  });
});

test('an unreadable S3 destination exits 2 before any API call', async () => {
  const before = simulator.requests.length;
  const run = await runCli(
    ['sync', '--dest', 's3://no-such-bucket-here/x', '--api-url', simulator.url, '--apps', app],
    {
      ...credentialEnv,
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1',
      AWS_REGION: 'us-east-1',
    },
  );
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/destination s3:\/\/no-such-bucket-here\/x cannot be read/);
  expect(simulator.requests.length).toBe(before);
});

test('--help exits 0 and lists the commands', async () => {
  const run = await runCli(['--help']);
  expect(run.code).toBe(0);
  for (const command of ['sync', 'status', 'simulate', 'demo', 'query']) expect(run.stdout).toContain(command);
});

test('--version prints the package version and exits 0', async () => {
  const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const run = await runCli([flag]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`localytics-sync ${version}\n`);
  }
});
