import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { copyJob } from '../../functions/core/copy-job.js';
import { LocationExpiredError, SinkError, TransientError } from '../../functions/core/errors.js';
import { type AudienceJob, dataKey, pendingChangeSetKey, type SyncJob } from '../../functions/core/jobs.js';
import {
  type DownloadedFile,
  type ExportListing,
  type ExportSource,
  type ResolveOutcome,
  silentLogger,
  type WriteOptions,
} from '../../functions/core/ports.js';
import { tempDir } from '../support/temp.js';

const noWait = { now: () => 0, sleep: async () => {} };

/** An ExportSource scripted per test: resolve outcomes in order, download behaviours in order. */
class ScriptedSource implements ExportSource {
  resolved: SyncJob[] = [];
  downloaded: string[] = [];
  constructor(
    private readonly outcomes: ResolveOutcome[],
    private readonly downloads: (() => DownloadedFile)[],
  ) {}
  /** The audience job's list entry: the generation is confirmed after the download (issue 10, item 3). */
  async listAudiences(): Promise<ExportListing[]> {
    return [
      {
        id: 1,
        name: 'a',
        sourceType: 'audiences',
        sourceId: audience.audienceId,
        jobType: audience.identifierType,
        resultsGeneratedAt: audience.generatedAt,
      },
    ];
  }
  async listProfiles() {
    return [];
  }
  async resolve(job: SyncJob): Promise<ResolveOutcome> {
    this.resolved.push(job);
    const next = this.outcomes.shift();
    if (!next) throw new Error('unexpected resolve');
    return next;
  }
  async download(location: string): Promise<DownloadedFile> {
    this.downloaded.push(location);
    const next = this.downloads.shift();
    if (!next) throw new Error('unexpected download');
    return next();
  }
}

const rows = '{"IDFA":"A"}\n{"IDFA":"B"}\n';
const ok = (body: Buffer) => () => ({ body: Readable.from([body]), contentLength: body.length });
const failing = (error: Error) => () => {
  throw error;
};
const ready = (location: string): ResolveOutcome => ({ status: 'ready', location });

const audience: AudienceJob = {
  kind: 'audience',
  audienceId: '7',
  identifierType: 'idfa',
  generatedAt: Date.UTC(2026, 0, 2, 13),
  resultsCount: 2,
};
const changes: SyncJob = { kind: 'profile_changes', profileDbId: '60', generatedAt: Date.UTC(2026, 0, 2, 13) };
const logHour: SyncJob = { kind: 'log_hour', appUuid: 'abc-def', hour: Date.UTC(2026, 0, 2, 3) };

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

describe('copyJob', () => {
  test('stores a plain file gzipped under its deterministic key and counts its rows', async () => {
    const dir = await tempDir();
    const source = new ScriptedSource([ready('https://s3.amazonaws.com/a')], [ok(Buffer.from(rows))]);
    const outcome = await copyJob(audience, {
      source,
      sink: new LocalDirSink(dir),
      logger: silentLogger,
      clock: noWait,
    });
    expect(outcome).toMatchObject({ status: 'copied', key: dataKey(audience), rows: 2, warnings: [] });
    expect(gunzipSync(await readFile(path.join(dir, dataKey(audience)))).toString()).toBe(rows);
  });

  test('stores a gzip file byte for byte', async () => {
    const dir = await tempDir();
    const gz = gzipSync('{"type":"e"}\n');
    const source = new ScriptedSource([ready('https://s3.amazonaws.com/a')], [ok(gz)]);
    await copyJob(logHour, { source, sink: new LocalDirSink(dir), logger: silentLogger, clock: noWait });
    expect((await readFile(path.join(dir, dataKey(logHour)))).equals(gz)).toBe(true);
  });

  test('reports a row count that differs from results_count as a warning, and still lands the file', async () => {
    const dir = await tempDir();
    const source = new ScriptedSource([ready('https://s3.amazonaws.com/a')], [ok(Buffer.from('{"IDFA":"A"}\n'))]);
    const outcome = await copyJob(audience, {
      source,
      sink: new LocalDirSink(dir),
      logger: silentLogger,
      clock: noWait,
    });
    expect(outcome).toMatchObject({ status: 'copied', warnings: ['row count 1 differs from results_count 2'] });
  });

  test('skips a job whose key is already present, without asking the API', async () => {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    await sink.writeText(dataKey(logHour), 'x');
    const source = new ScriptedSource([], []);
    expect(await copyJob(logHour, { source, sink, logger: silentLogger, clock: noWait })).toMatchObject({
      status: 'present',
    });
    expect(source.resolved).toHaveLength(0);
  });

  test('retries a transient download failure with the same Location', async () => {
    const dir = await tempDir();
    const source = new ScriptedSource(
      [ready('https://s3.amazonaws.com/first')],
      [failing(new TransientError('reset')), ok(gzipSync('{}\n'))],
    );
    const outcome = await copyJob(logHour, {
      source,
      sink: new LocalDirSink(dir),
      logger: silentLogger,
      clock: noWait,
    });
    expect(outcome.status).toBe('copied');
    expect(source.resolved).toHaveLength(1);
    expect(source.downloaded).toEqual(['https://s3.amazonaws.com/first', 'https://s3.amazonaws.com/first']);
  });

  test('asks for a fresh Location when the file host says the URL expired', async () => {
    const dir = await tempDir();
    const source = new ScriptedSource(
      [ready('https://s3.amazonaws.com/old'), ready('https://s3.amazonaws.com/new')],
      [failing(new LocationExpiredError('403')), ok(gzipSync('{}\n'))],
    );
    const outcome = await copyJob(logHour, {
      source,
      sink: new LocalDirSink(dir),
      logger: silentLogger,
      clock: noWait,
    });
    expect(outcome).toMatchObject({ status: 'copied', apiRequests: 2 });
    expect(source.downloaded).toEqual(['https://s3.amazonaws.com/old', 'https://s3.amazonaws.com/new']);
  });

  test('leaves nothing at the key when every download attempt fails, and says the failure is retryable', async () => {
    const dir = await tempDir();
    const varied = Array.from({ length: 1000 }, (_, i) => `{"n":${i * 7919}}\n`).join('');
    const full = gzipSync(varied);
    const truncated = full.subarray(0, full.length - 50);
    const source = new ScriptedSource(
      [ready('https://s3.amazonaws.com/a')],
      [() => ({ body: Readable.from([truncated]) }), () => ({ body: Readable.from([truncated]) })],
    );
    const outcome = await copyJob(logHour, {
      source,
      sink: new LocalDirSink(dir),
      logger: silentLogger,
      clock: noWait,
      maxDownloadAttempts: 2,
    });
    expect(outcome).toMatchObject({ status: 'failed', retryable: true });
    expect(outcome.status === 'failed' && outcome.reason).toMatch(/gzip content is corrupt or truncated/);
    expect(await filesUnder(dir)).toEqual([]);
  });

  test.each([
    [{ status: 'not_ready' } as ResolveOutcome, 'not_ready'],
    [{ status: 'throttled', retryAfterMs: 1000 } as ResolveOutcome, 'throttled'],
    [{ status: 'failed', error: new Error('403 no access'), retryable: false } as ResolveOutcome, 'failed'],
  ])('passes the API outcome %j through as %s', async (resolved, status) => {
    const dir = await tempDir();
    const source = new ScriptedSource([resolved], []);
    const outcome = await copyJob(logHour, {
      source,
      sink: new LocalDirSink(dir),
      logger: silentLogger,
      clock: noWait,
    });
    expect(outcome.status).toBe(status);
    expect(source.downloaded).toHaveLength(0);
  });
});

test('a destination failure is reported with its own cause, not as a "premature close" of the download', async () => {
  const dir = await tempDir();
  const real = new LocalDirSink(dir);
  const sink = Object.assign(Object.create(real) as LocalDirSink, {
    write: async (_key: string, body: Readable) => {
      body.destroy();
      throw new SinkError('writing x failed: ENOSPC: no space left on device');
    },
  });
  const source = new ScriptedSource(
    [ready('https://s3.amazonaws.com/a')],
    [ok(gzipSync('{}\n')), ok(gzipSync('{}\n'))],
  );
  const outcome = await copyJob(logHour, { source, sink, logger: silentLogger, clock: noWait, maxDownloadAttempts: 2 });
  expect(outcome).toMatchObject({ status: 'failed', retryable: true });
  expect(outcome.status === 'failed' && outcome.reason).toMatch(/ENOSPC/);
});

test('an aborted signal interrupts a job before it asks the API', async () => {
  const dir = await tempDir();
  const controller = new AbortController();
  controller.abort();
  const source = new ScriptedSource([], []);
  const outcome = await copyJob(logHour, {
    source,
    sink: new LocalDirSink(dir),
    logger: silentLogger,
    clock: noWait,
    signal: controller.signal,
  });
  expect(outcome.status).toBe('interrupted');
  expect(source.resolved).toHaveLength(0);
});

test.each([
  ['plain', 0],
  ['all', 1],
] as const)('with checkJson %s, malformed rows of a gzip log hour are counted: %i', async (checkJson, expected) => {
  const dir = await tempDir();
  const source = new ScriptedSource([ready('https://s3.amazonaws.com/a')], [ok(gzipSync('{"type":"e"}\n{"type":\n'))]);
  const outcome = await copyJob(logHour, {
    source,
    sink: new LocalDirSink(dir),
    logger: silentLogger,
    clock: noWait,
    checkJson,
  });
  expect(outcome.status === 'copied' && outcome.malformedRows).toBe(expected);
});

test('a leftover change-set record whose data already landed is removed, not left to block later change sets', async () => {
  const dir = await tempDir();
  const sink = new LocalDirSink(dir);
  await sink.writeText(dataKey(changes), 'copied');
  await sink.writeText(
    pendingChangeSetKey(changes as never),
    JSON.stringify({ state: 'resolved', location: 'https://s3.amazonaws.com/x', claimedAt: '2020-01-01T00:00:00Z' }),
  );
  const outcome = await copyJob(changes, {
    source: new ScriptedSource([], []),
    sink,
    logger: silentLogger,
    clock: noWait,
  });
  expect(outcome.status).toBe('present');
  expect(await sink.readText(pendingChangeSetKey(changes as never))).toBeUndefined();
});

test('the list is confirmed before the sink can commit: it has neither the last byte nor the end of the data yet', async () => {
  const dir = await tempDir();
  const real = new LocalDirSink(dir);
  let received = 0;
  let ended = false;
  const sink = Object.assign(Object.create(real) as LocalDirSink, {
    write: async (key: string, body: Readable, options: WriteOptions) => {
      body.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      body.once('end', () => {
        ended = true;
      });
      return real.write(key, body, options);
    },
  });
  const source = new ScriptedSource([ready('https://s3.amazonaws.com/a')], [ok(Buffer.from(rows))]);
  const listAudiences = source.listAudiences.bind(source);
  let atCheck: { received: number; ended: boolean } | undefined;
  source.listAudiences = async () => {
    atCheck = { received, ended };
    return listAudiences();
  };
  const outcome = await copyJob(audience, { source, sink, logger: silentLogger, clock: noWait });
  expect(outcome.status).toBe('copied');
  expect(atCheck?.ended).toBe(false);
  expect(atCheck?.received).toBeLessThan(received);
});

test('a gzip bomb is reported as suspicious, not retried, and nothing lands (issue 21, item 8)', async () => {
  const dir = await tempDir();
  const member = gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
  const bomb = Buffer.concat(Array.from({ length: 256 }, () => member));
  const source = new ScriptedSource(
    [ready('https://s3.amazonaws.com/bomb')],
    [() => ({ body: Readable.from([bomb]), contentLength: bomb.length })],
  );
  const outcome = await copyJob(logHour, { source, sink: new LocalDirSink(dir), logger: silentLogger, clock: noWait });
  expect(outcome).toMatchObject({ status: 'failed', retryable: false, downloads: 1 });
  expect(outcome.status === 'failed' && outcome.reason).toMatch(/^suspicious gzip: it inflates to more than 64 MiB/);
  expect(await filesUnder(dir)).toEqual([]);
});

describe('a download slower than the throughput floor is abandoned (issue 21, item 8)', () => {
  /**
   * A body that sends `bytes` every `everyMs` and never ends (a file host trickling). Before, only the client's idle
   * timeout (60 s without a byte) applied, so a host sending a byte every 59 s held a CLI worker forever.
   */
  function trickle(bytes: number, everyMs: number, total = Number.POSITIVE_INFINITY) {
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const body = new Readable({
      read() {
        if (timer) return;
        timer = setTimeout(() => {
          timer = undefined;
          const size = Math.min(bytes, total - sent);
          sent += size;
          this.push(Buffer.alloc(size, 0x61));
          if (sent >= total) this.push(null);
        }, everyMs);
      },
      destroy(error, callback) {
        clearTimeout(timer);
        callback(error);
      },
    });
    return body;
  }

  async function copyWithin(ms: number, bodies: (() => Readable)[], floor = { bytesPerSecond: 1000, graceMs: 300 }) {
    const dir = await tempDir();
    const made: Readable[] = [];
    const source = new ScriptedSource(
      [ready('https://s3.amazonaws.com/slow')],
      bodies.map((make) => () => {
        const body = make();
        made.push(body);
        return { body };
      }),
    );
    const copy = copyJob(logHour, {
      source,
      sink: new LocalDirSink(dir),
      logger: silentLogger,
      clock: { now: () => Date.now(), sleep: async () => {} },
      maxDownloadAttempts: bodies.length,
      minDownloadThroughput: floor,
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'still copying'>((resolve) => {
      timer = setTimeout(() => resolve('still copying'), ms);
    });
    try {
      return { outcome: await Promise.race([copy, late]), dir };
    } finally {
      clearTimeout(timer);
      for (const body of made) body.destroy();
    }
  }

  test('a host sending a byte at a time is abandoned at the floor, retried, then reported retryable', async () => {
    const { outcome, dir } = await copyWithin(10_000, [() => trickle(1, 50), () => trickle(1, 50)]);
    expect(outcome).toMatchObject({ status: 'failed', retryable: true, downloads: 2 });
    expect(outcome !== 'still copying' && outcome.status === 'failed' && outcome.reason).toMatch(
      /^download too slow: \d+ bytes in \d+(\.\d+)? s, below the floor of 1000 bytes\/s$/,
    );
    expect(await filesUnder(dir)).toEqual([]);
  });

  test('a slow body above the floor is copied', async () => {
    const { outcome } = await copyWithin(10_000, [() => trickle(400, 100, 4000)]);
    expect(outcome).toMatchObject({ status: 'copied', servedBytes: 4000 });
  });
});
