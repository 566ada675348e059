import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { tempDir } from '../support/temp.js';

const run = promisify(execFile);
const cli = path.resolve('dist/localytics-sync.mjs');

// The bundle `npm start` and the `localytics-sync` bin run, built from the current code by the global setup.

async function exec(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

test('the demo lands all three datasets in a local folder with no AWS account and no key', async () => {
  const dir = await tempDir();
  const dest = path.join(dir, 'demo');
  const result = await exec(['demo', '--dest', dest, '--hours', '3']);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/What landed in/);
  const files = (await readdir(dest, { recursive: true })).map(String);
  expect(files.some((file) => file.startsWith('raw_logs/app_uuid=') && file.endsWith('.json.gz'))).toBe(true);
  expect(files.some((file) => file.startsWith('audiences/audience_id=') && file.endsWith('.json.gz'))).toBe(true);
  expect(files.some((file) => file.startsWith('profiles/profiledb_id=') && file.endsWith('.json.gz'))).toBe(true);
  expect(files.some((file) => file.startsWith('profile_changes/profiledb_id='))).toBe(true);
  // The Parquet layer too: the bundle imports DuckDB (native, not bundled) from node_modules.
  expect(files.filter((file) => /^parquet\/raw_logs\/app_uuid=.*\.parquet$/.test(file)).length).toBeGreaterThan(0);
  expect(result.stdout).toMatch(/Parquet: [1-9]\d* file\(s\) converted .*, 0 failed\)/);
  expect(result.stdout + result.stderr).not.toMatch(/Signature=|Authorization|simulator-secret/);

  // One line per dataset, not one per partition.
  const landed = result.stdout.slice(result.stdout.indexOf('What landed in')).split('\n\n')[0] as string;
  expect(landed.split('\n').map((line) => line.trim().split(/\s+/)[0])).toEqual([
    'What',
    'raw_logs',
    'audiences',
    'profiles',
    'profile_changes',
    'e.g.',
  ]);
  // The status command it suggests covers the window the demo synced: nothing shows as missing.
  const statusHint = /node dist\/localytics-sync\.mjs (status .*)\n/.exec(result.stdout)?.[1] as string;
  expect(statusHint).toMatch(/--from \d{4}-\d{2}-\d{2}T\d{2} --to \d{4}-\d{2}-\d{2}T\d{2}$/);
  const status = await exec(statusHint.split(' '));
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/: \d+ present, \d+ pending, 0 missing;/);
  expect(status.stdout).not.toMatch(/: \d+ present, \d+ pending, [1-9]\d* missing;/);

  const again = await exec(['demo', '--dest', dest, '--hours', '3']);
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/: 0 file\(s\) copied/);

  // The command the demo suggests prints the first saved query's answer (the bundle loads DuckDB for it).
  const suggested = /node dist\/localytics-sync\.mjs (query events-by-name .*)/.exec(again.stdout)?.[1] as string;
  expect(suggested).toBe(
    `query events-by-name --dest ${dest} --app 1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8`,
  );
  const query = await exec(suggested.split(' '));
  expect(query.code, query.stderr).toBe(0);
  const lines = query.stdout.trim().split('\n');
  expect(lines[0]).toMatch(
    /^Events by name over 30 days \(app 1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8; JSON layer of /,
  );
  expect(lines[2]).toMatch(/^event_name\s+occurrences\s+devices$/);
  expect(lines.slice(4).length).toBeGreaterThan(1);
  for (const line of lines.slice(4)) expect(line).toMatch(/^[A-Za-z]+\s+\d+\s+\d+$/);
});

test('the binary exits 2 on bad input with a one-line error', async () => {
  const result = await exec(['sync', '--dest', '/tmp/x', '--apps', 'zz-not-hex'], {
    LOCALYTICS_API_KEY: 'k',
    LOCALYTICS_API_SECRET: 's',
  });
  expect(result.code).toBe(2);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(/^error: --apps: "zz-not-hex" is not a Localytics app ID/);
});

test('the binary prints its version', async () => {
  const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
  const result = await exec(['--version']);
  expect(result).toEqual({ code: 0, stdout: `localytics-sync ${version}\n`, stderr: '' });
});
