/**
 * Issue 10, item 4: the copier's deadline reaches work in flight. Every wait — the request budget, an API request,
 * a download's headers, its first bytes, its body — ends within a second or two of the signal, whatever the
 * client's own timeouts (30 s per request, 60 s of download silence) would allow.
 */
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { LocalyticsClient } from '../../functions/adapters/localytics-client.js';
import { copyJob } from '../../functions/core/copy-job.js';
import type { SyncJob } from '../../functions/core/jobs.js';
import { silentLogger } from '../../functions/core/ports.js';
import { InProcessRequestBudget } from '../../functions/core/request-budget.js';
import { tempDir } from '../support/temp.js';

type Stall = 'api' | 'headers' | 'first-byte' | 'body';

/** An API host that answers every export with a 302 to its own file path, and stalls where the test says. */
class StallingServer {
  stall: Stall = 'api';
  private readonly server = http.createServer((request, response) => {
    if (request.url?.startsWith('/v1/')) {
      if (this.stall === 'api') return; // never answers
      response.writeHead(302, { location: `${this.url}/file.json.gz?Signature=x` });
      response.end();
      return;
    }
    if (this.stall === 'headers') return;
    response.writeHead(200, { 'content-length': '1000000', 'content-type': 'application/gzip' });
    if (this.stall === 'first-byte') return;
    response.write(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])); // a gzip header, then silence
  });
  url = '';

  async start() {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const server = new StallingServer();
beforeAll(() => server.start());
afterAll(() => server.stop());

const logHour: SyncJob = {
  kind: 'log_hour',
  appUuid: '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8',
  hour: Date.UTC(2026, 0, 2, 3),
};

function client(budget = new InProcessRequestBudget({ ratePerMinute: 6000 })) {
  return new LocalyticsClient({
    apiUrl: server.url,
    credentials: { apiKey: 'deadline-test-key', apiSecret: 'deadline-test-secret' },
    budget,
  });
}

/** Run one copy whose deadline fires after 1 s; answer its outcome and how long it took. */
async function copyWithDeadline(source: LocalyticsClient, job: SyncJob = logHour) {
  const dir = await tempDir();
  const started = Date.now();
  const outcome = await copyJob(job, {
    source,
    sink: new LocalDirSink(dir),
    logger: silentLogger,
    signal: AbortSignal.timeout(1_000),
    maxDownloadAttempts: 1,
  });
  source.close();
  return { outcome, elapsedMs: Date.now() - started, dir };
}

test.each([
  ['an API request that is never answered', 'api'],
  ['a download whose headers never come', 'headers'],
  ['a download whose first bytes never come', 'first-byte'],
  ['a download whose body stalls', 'body'],
] as const)('%s ends within two seconds of the deadline, leaving nothing', async (_what, stall) => {
  server.stall = stall;
  const { outcome, elapsedMs, dir } = await copyWithDeadline(client());
  expect(outcome.status).toBe('interrupted');
  expect(elapsedMs).toBeLessThan(3_000);
  const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
  expect(files.map((entry) => entry.name)).toEqual([]);
});

test('a wait for the request budget (a long Retry-After pause) ends at the deadline, with nothing sent', async () => {
  const budget = new InProcessRequestBudget({ ratePerMinute: 6000 });
  await budget.pause(120_000);
  const source = client(budget);
  const { outcome, elapsedMs } = await copyWithDeadline(source);
  expect(outcome).toMatchObject({ status: 'interrupted' });
  expect(source.stats.apiRequests).toBe(0);
  expect(elapsedMs).toBeLessThan(3_000);
});

test('a profile_changes request left hanging at the deadline ends after its short grace, reported possibly consumed', async () => {
  server.stall = 'api';
  const job: SyncJob = { kind: 'profile_changes', profileDbId: '60', generatedAt: Date.UTC(2026, 0, 2, 13) };
  const { outcome, elapsedMs } = await copyWithDeadline(client(), job);
  expect(outcome).toMatchObject({ status: 'failed', retryable: false });
  expect(outcome.status === 'failed' && outcome.reason).toMatch(/may have consumed a change set/);
  expect(elapsedMs).toBeLessThan(3_500);
});
