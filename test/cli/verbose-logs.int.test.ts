/**
 * Issue 21, item 1, through the CLI: `--verbose` printed invalid JSON lines when a logged value held a URL followed by
 * a quote (the redaction of the serialized line swallowed the backslash escaping it).
 */
import http from 'node:http';
import { afterEach, expect, test } from 'vitest';
import { runCli } from '../support/cli.js';
import { closeServer, listenOnLoopback } from '../support/loopback-server.js';
import { tempDir } from '../support/temp.js';

let server: http.Server | undefined;
afterEach(async () => {
  if (server) await closeServer(server);
  server = undefined;
});

test('--verbose prints one valid JSON line per log call when a list entry holds a URL and quotes', async () => {
  server = http.createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    const odd = {
      id: 1,
      name: 'odd "one" http://x"',
      source_type: 'http://x"',
      source_id: '12',
      job_type: 'idfa',
      results_count: 1,
      results_generated_at: '2026-01-01T00:00:00Z',
    };
    response.end(JSON.stringify(request.url === '/v1/exports/audiences' ? [odd] : []));
  });
  const url = await listenOnLoopback(server);
  const run = await runCli(
    ['sync', '--dest', await tempDir(), '--api-url', url, '--datasets', 'audiences', '--verbose', '--json'],
    { LOCALYTICS_API_KEY: 'verbose-key-1234', LOCALYTICS_API_SECRET: 'verbose-secret-5678' },
  );
  expect(run.code).toBe(0);
  const lines = run.stderr.trim().split('\n');
  const parsed = lines.map((line) => JSON.parse(line) as { message: string; reason?: string });
  expect(parsed.find((line) => line.message === 'export skipped')?.reason).toBe(
    'unexpected source_type "http://x/"" in the audience list',
  );
});
