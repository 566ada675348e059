import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseS3Url, S3Sink } from '../../functions/adapters/s3-sink.js';
import { ConfigError, IntegrityError, ObjectExistsError, SinkError } from '../../functions/core/errors.js';
import { VerifyingStream } from '../../functions/core/verify-stream.js';
import { createS3Client, createTestBucket, listAllKeys, S3RVER_CREDENTIALS, s3Endpoint } from '../support/s3.js';
import { S3RecordingProxy } from '../support/s3-proxy.js';

const proxy = new S3RecordingProxy(s3Endpoint());
beforeAll(() => proxy.start());
afterAll(() => proxy.stop());

/** `size` pseudo-random bytes in 1 MiB chunks, and their SHA-256 once streamed. */
function randomBody(size: number, failAfter?: number) {
  const hash = createHash('sha256');
  let sent = 0;
  const body = new Readable({
    read() {
      if (failAfter !== undefined && sent >= failAfter) {
        this.destroy(new Error('source connection reset'));
        return;
      }
      if (sent >= size) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(1024 * 1024, size - sent));
      hash.update(chunk);
      sent += chunk.length;
      this.push(chunk);
    },
  });
  return { body, digest: () => hash.digest('hex') };
}

async function storedDigest(bucket: string, key: string): Promise<string> {
  const response = await createS3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of response.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function sinkOnProxy(prefix = 'lake') {
  const client = createS3Client(proxy.url);
  const bucket = await createTestBucket(client);
  return { bucket, sink: new S3Sink(client, { bucket, prefix }) };
}

describe('S3Sink.write', () => {
  test('streams a 20 MiB body as a multipart upload that stores the same bytes', async () => {
    const { bucket, sink } = await sinkOnProxy();
    const { body, digest } = randomBody(20 * 1024 * 1024);
    const partsBefore = proxy.count('UploadPart');
    const { bytes } = await sink.write('raw_logs/a.json.gz', body, { contentType: 'application/gzip' });
    expect(bytes).toBe(20 * 1024 * 1024);
    expect(proxy.count('UploadPart') - partsBefore).toBe(3);
    expect(await storedDigest(bucket, 'lake/raw_logs/a.json.gz')).toBe(digest());
    expect(proxy.openUploads()).toEqual([]);
  });

  test('a small body is stored intact by a single PutObject', async () => {
    const { bucket, sink } = await sinkOnProxy();
    const { body, digest } = randomBody(1000);
    await sink.write('small.json.gz', body, { contentType: 'application/gzip' });
    expect(await storedDigest(bucket, 'lake/small.json.gz')).toBe(digest());
  });

  test.each(['UploadPart', 'CompleteMultipartUpload'] as const)(
    'a failed %s aborts the upload and leaves no object',
    async (operation) => {
      const { bucket, sink } = await sinkOnProxy();
      proxy.failNext(operation, 10);
      const { body } = randomBody(17 * 1024 * 1024);
      await expect(sink.write('broken.json.gz', body, { contentType: 'application/gzip' })).rejects.toBeInstanceOf(
        SinkError,
      );
      proxy.clearFailures();
      expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
      expect(proxy.openUploads()).toEqual([]);
    },
  );

  test('a source that dies mid-body aborts the upload and leaves no object', async () => {
    const { bucket, sink } = await sinkOnProxy();
    const { body } = randomBody(30 * 1024 * 1024, 12 * 1024 * 1024);
    await expect(sink.write('cut.json.gz', body, { contentType: 'application/gzip' })).rejects.toThrow(
      /source connection reset/,
    );
    expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
    expect(proxy.openUploads()).toEqual([]);
  });
});

describe('S3Sink.write of a known length: one streaming PutObject', () => {
  test('stores the same bytes with one PutObject and no multipart upload', async () => {
    const { bucket, sink } = await sinkOnProxy();
    const size = 20 * 1024 * 1024 + 3;
    const { body, digest } = randomBody(size);
    const before = { puts: proxy.count('PutObject'), creates: proxy.count('CreateMultipartUpload') };
    const { bytes } = await sink.write('raw_logs/one.json.gz', body, {
      contentType: 'application/gzip',
      contentLength: size,
    });
    expect(bytes).toBe(size);
    expect(proxy.count('PutObject') - before.puts).toBe(1);
    expect(proxy.count('CreateMultipartUpload') - before.creates).toBe(0);
    expect(await storedDigest(bucket, 'lake/raw_logs/one.json.gz')).toBe(digest());
  });

  test('a length above the cutoff goes multipart', async () => {
    const client = createS3Client(proxy.url);
    const bucket = await createTestBucket(client);
    const sink = new S3Sink(client, { bucket, prefix: 'lake' }, { singlePutMaxBytes: 10 * 1024 * 1024 });
    const { body, digest } = randomBody(12 * 1024 * 1024);
    const partsBefore = proxy.count('UploadPart');
    await sink.write('big.json.gz', body, { contentType: 'application/gzip', contentLength: 12 * 1024 * 1024 });
    expect(proxy.count('UploadPart') - partsBefore).toBe(2);
    expect(await storedDigest(bucket, 'lake/big.json.gz')).toBe(digest());
  });

  test('a source that dies mid-body fails the write and leaves no object', async () => {
    const { bucket, sink } = await sinkOnProxy();
    const { body } = randomBody(30 * 1024 * 1024, 12 * 1024 * 1024);
    await expect(
      sink.write('cut.json.gz', body, { contentType: 'application/gzip', contentLength: 30 * 1024 * 1024 }),
    ).rejects.toThrow(/source connection reset/);
    expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
  });

  test.each([
    ['shorter', 5000, 5001, /ended after 5000 of its announced 5001 bytes/],
    ['longer', 5001, 5000, /longer than its announced 5000 bytes/],
  ])('a body %s than its announced length fails and leaves no object', async (_, size, announced, message) => {
    const { bucket, sink } = await sinkOnProxy();
    const { body } = randomBody(size);
    await expect(
      sink.write('wrong.json.gz', body, { contentType: 'application/gzip', contentLength: announced }),
    ).rejects.toThrow(message);
    expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
  });

  test('a download that fails verification at its very end leaves no object (its last chunk is held back)', async () => {
    const { bucket, sink } = await sinkOnProxy();
    // A gzip whose trailer (CRC-32 of the content) is wrong: only the end of the stream can tell.
    const lines = Array.from({ length: 40_000 }, () => `{"id":"${randomBytes(24).toString('hex')}"}\n`);
    const gz = Buffer.from(gzipSync(lines.join('')));
    gz.writeUInt32LE((gz.readUInt32LE(gz.length - 8) ^ 1) >>> 0, gz.length - 8);
    const pieces = Array.from({ length: Math.ceil(gz.length / 65536) }, (_, i) =>
      gz.subarray(i * 65536, (i + 1) * 65536),
    );
    // The end of the download comes a moment after its last byte.
    async function* download() {
      yield* pieces;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const verifier = new VerifyingStream({ gzip: true, expectedBytes: gz.length });
    const flowing = pipeline(Readable.from(download()), verifier);
    const written = sink.write('bad-trailer.json.gz', verifier, {
      contentType: 'application/gzip',
      contentLength: gz.length,
    });
    // Both awaited at once: the write may fail first, and a rejection without a handler fails the whole run.
    await Promise.all([
      expect(flowing).rejects.toBeInstanceOf(IntegrityError),
      expect(written).rejects.toBeInstanceOf(SinkError),
    ]);
    expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
  });
});

describe('S3Sink on an S3-compatible store: the store is probed before the first streamed write (issue 18, item 1)', () => {
  /** A client with the SDK's defaults (as a new user has it), or with checksums only where required. */
  const clientOf = (endpoint: string, checksumsWhenRequired = false) =>
    new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      ...(checksumsWhenRequired ? { requestChecksumCalculation: 'WHEN_REQUIRED' as const } : {}),
    });

  test('s3rver keeps the framing of an aws-chunked upload as data: streamed writes go as plain bodies, intact', async () => {
    const bucket = await createTestBucket(createS3Client());
    const sink = new S3Sink(
      clientOf(s3Endpoint()),
      { bucket, prefix: 'lake' },
      { probeStore: true, plainBodyClient: clientOf(s3Endpoint(), true) },
    );
    const { body, digest } = randomBody(100_000);
    await sink.write('raw_logs/framed.json.gz', body, { contentType: 'application/gzip', contentLength: 100_000 });
    expect(await storedDigest(bucket, 'lake/raw_logs/framed.json.gz')).toBe(digest());
    // Nothing is left of the probe.
    expect(await listAllKeys(createS3Client(), bucket)).toEqual(['lake/raw_logs/framed.json.gz']);
  });

  test('without a plain-body client such a store is refused before any data is written, naming the setting', async () => {
    const bucket = await createTestBucket(createS3Client());
    const sink = new S3Sink(clientOf(s3Endpoint()), { bucket, prefix: 'lake' }, { probeStore: true });
    await expect(sink.prepare()).rejects.toThrow(ConfigError);
    await expect(sink.prepare()).rejects.toThrow(
      /keeps the SDK's aws-chunked framing of a streamed upload as data .*set AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED/,
    );
    const { body } = randomBody(1000);
    await expect(
      sink.write('raw_logs/never.json.gz', body, { contentType: 'application/gzip', contentLength: 1000 }),
    ).rejects.toThrow(/WHEN_REQUIRED/);
    expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
  });

  test('a store that keeps other bytes even of a plain body is refused', async () => {
    // In front of s3rver: every probe object reads back one byte longer than it was written.
    const mangler = http.createServer((request, response) => {
      const target = new URL(s3Endpoint());
      const upstream = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: request.method,
          path: request.url,
          headers: request.headers,
        },
        async (answer) => {
          const chunks: Buffer[] = [];
          for await (const chunk of answer) chunks.push(chunk as Buffer);
          let bodyOut = Buffer.concat(chunks);
          const headers = { ...answer.headers };
          if (request.method === 'GET' && request.url?.includes('store-probe')) {
            bodyOut = Buffer.concat([bodyOut, Buffer.from('x')]);
            headers['content-length'] = String(bodyOut.length);
          }
          response.writeHead(answer.statusCode ?? 502, headers);
          response.end(bodyOut);
        },
      );
      request.pipe(upstream);
    });
    await new Promise<void>((resolve) => mangler.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(mangler.address() as AddressInfo).port}`;
    try {
      const bucket = await createTestBucket(createS3Client());
      const sink = new S3Sink(
        clientOf(endpoint, true),
        { bucket, prefix: 'lake' },
        { probeStore: true, plainBodyClient: clientOf(endpoint, true) },
      );
      await expect(sink.prepare()).rejects.toThrow(
        /does not keep the bytes a PutObject sends .*kept 4097 bytes of 4096/,
      );
      expect(await listAllKeys(createS3Client(), bucket)).toEqual([]);
    } finally {
      mangler.closeAllConnections();
      await new Promise((resolve) => mangler.close(resolve));
    }
  });

  test('a store found correct keeps the configured client, and is probed once for concurrent writes', async () => {
    const client = createS3Client(proxy.url);
    const bucket = await createTestBucket(client);
    const sink = new S3Sink(client, { bucket, prefix: 'lake' }, { probeStore: true, plainBodyClient: client });
    const mark = proxy.requests.length;
    await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        sink.write(`raw_logs/${name}.json.gz`, randomBody(2000).body, {
          contentType: 'application/gzip',
          contentLength: 2000,
        }),
      ),
    );
    const probes = proxy.requests
      .slice(mark)
      .filter((request) => request.operation === 'PutObject' && request.path.includes('store-probe'));
    expect(probes).toHaveLength(1);
    expect(await listAllKeys(createS3Client(), bucket)).toHaveLength(3);
  });
});

describe('S3Sink metadata operations', () => {
  test('list returns keys relative to the prefix, in order, starting after a key', async () => {
    const { sink } = await sinkOnProxy('p/q');
    for (const key of ['a/1', 'a/2', 'a/3', 'b/1']) await sink.writeText(key, key);
    const listed: string[] = [];
    for await (const object of sink.list('a/', { startAfter: 'a/1' })) listed.push(object.key);
    expect(listed).toEqual(['a/2', 'a/3']);
  });

  test('exists, readText and delete', async () => {
    const { sink } = await sinkOnProxy();
    expect(await sink.exists('_state/x.json')).toBe(false);
    expect(await sink.readText('_state/x.json')).toBeUndefined();
    await sink.writeText('_state/x.json', '{"a":1}');
    expect(await sink.exists('_state/x.json')).toBe(true);
    expect(await sink.readText('_state/x.json')).toBe('{"a":1}');
    await sink.delete('_state/x.json');
    expect(await sink.exists('_state/x.json')).toBe(false);
  });

  test('createText creates only when absent and answers the version it wrote', async () => {
    const { sink } = await sinkOnProxy();
    const version = await sink.createText('_state/c.json', '{"n":1}');
    expect(version).toMatch(/^"[0-9a-f]+"$/);
    expect(await sink.createText('_state/c.json', '{"n":2}')).toBeUndefined();
    expect(await sink.readVersioned('_state/c.json')).toEqual({ text: '{"n":1}', version });
  });

  test('replaceText replaces only the version read: of two writers that read it, exactly one wins', async () => {
    const { sink } = await sinkOnProxy();
    await sink.writeText('_state/r.json', '{"n":0}');
    const read = await sink.readVersioned('_state/r.json');
    const results = await Promise.all(
      ['{"n":"a"}', '{"n":"b"}', '{"n":"c"}'].map((text) =>
        sink.replaceText('_state/r.json', text, read?.version ?? ''),
      ),
    );
    const winners = results.filter((version) => version !== undefined);
    expect(winners).toHaveLength(1);
    expect((await sink.readVersioned('_state/r.json'))?.version).toBe(winners[0]);
    expect(await sink.replaceText('_state/gone.json', '{}', read?.version ?? '')).toBeUndefined();
  });
});

test('deleteIfUnchanged deletes only the version it was given: a record replaced meanwhile stays', async () => {
  // DeleteObject with If-Match (S3 general purpose buckets answer 412 on a mismatch, 404 when the key is gone;
  // s3rver ignores the header, the proxy enforces it as S3 does).
  const { sink } = await sinkOnProxy();
  const first = (await sink.createText('_state/claim.json', '{"holder":"a"}')) as string;
  const second = (await sink.replaceText('_state/claim.json', '{"holder":"b"}', first)) as string;
  expect(await sink.deleteIfUnchanged('_state/claim.json', first)).toBe(false);
  expect(await sink.readText('_state/claim.json')).toBe('{"holder":"b"}');
  expect(await sink.deleteIfUnchanged('_state/claim.json', second)).toBe(true);
  expect(await sink.exists('_state/claim.json')).toBe(false);
  expect(await sink.deleteIfUnchanged('_state/claim.json', second)).toBe(false);
});

test.each([
  ['s3://my-bucket/some/prefix/', { bucket: 'my-bucket', prefix: 'some/prefix' }],
  ['s3://my-bucket', { bucket: 'my-bucket', prefix: '' }],
])('parseS3Url(%s)', (url, expected) => {
  expect(parseS3Url(url)).toEqual(expected);
});

test.each(['s3://', 's3://Bad_Bucket/x', 's3://bucket/../x', 'https://bucket/x'])('parseS3Url rejects %s', (url) => {
  expect(() => parseS3Url(url)).toThrow();
});

test("a write, once landed, aborts every upload still open for its key (a killed writer's, however young)", async () => {
  // Issue 18, item 5: a killed copier's job comes back after ~30 minutes, when the old rule (abort uploads older than
  // an hour) left its upload alone, and the key was never written again: billed forever on an imported bucket.
  const { bucket, sink } = await sinkOnProxy();
  const client = createS3Client(proxy.url);
  const key = 'lake/raw_logs/k.json.gz';
  const killed = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  proxy.backdate(killed.UploadId as string, 30 * 60_000);
  const other = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${key}.other` }));
  const { body } = randomBody(1000);
  await sink.write('raw_logs/k.json.gz', body, { contentType: 'application/gzip' });
  expect(proxy.aborted.has(killed.UploadId as string)).toBe(true);
  // Another key's upload is not this write's business.
  expect(proxy.aborted.has(other.UploadId as string)).toBe(false);
  await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: `${key}.other`, UploadId: other.UploadId }));
});

test('the sweep aborts uploads of keys that exist and uploads older than a day, and leaves a young one alone', async () => {
  const { bucket, sink } = await sinkOnProxy();
  const client = createS3Client(proxy.url);
  const landed = 'lake/audiences/a/landed.json.gz';
  await sink.writeText('audiences/a/landed.json.gz', '{}');
  const ofLanded = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: landed }));
  // A regenerated export's key is never written again: its killed upload is aborted once it is a day old.
  const stale = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'lake/audiences/a/old' }));
  proxy.backdate(stale.UploadId as string, 25 * 60 * 60_000);
  const live = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'lake/audiences/a/live' }));
  const elsewhere = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'lake/parquet/x' }));
  proxy.backdate(elsewhere.UploadId as string, 25 * 60 * 60_000);
  expect(await sink.abortAbandonedUploads('audiences/')).toBe(2);
  expect(proxy.aborted.has(ofLanded.UploadId as string)).toBe(true);
  expect(proxy.aborted.has(stale.UploadId as string)).toBe(true);
  expect(proxy.aborted.has(live.UploadId as string)).toBe(false);
  expect(proxy.aborted.has(elsewhere.UploadId as string)).toBe(false);
  for (const [upload, key] of [
    [live, 'lake/audiences/a/live'],
    [elsewhere, 'lake/parquet/x'],
  ] as const) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload.UploadId }));
  }
});

test('of two concurrent writers of one key, one lands it and the other finds it taken; no upload stays open', async () => {
  const { bucket, sink } = await sinkOnProxy();
  const size = 20 * 1024 * 1024;
  const bytes = randomBytes(size);
  const digest = createHash('sha256').update(bytes).digest('hex');
  // Both bodies trickle, so that both multipart uploads are open at once.
  const trickle = () =>
    Readable.from(
      (async function* () {
        for (let offset = 0; offset < size; offset += 1024 * 1024) {
          await new Promise((resolve) => setTimeout(resolve, 15));
          yield bytes.subarray(offset, offset + 1024 * 1024);
        }
      })(),
    );
  const openBefore = proxy.openUploads().length;
  const first = sink.write('raw_logs/same.json.gz', trickle(), { contentType: 'application/gzip' });
  // The second writer starts once the first one's upload is open (a duplicate job a little later).
  while (proxy.openUploads().length === openBefore) await new Promise((resolve) => setTimeout(resolve, 10));
  const second = sink.write('raw_logs/same.json.gz', trickle(), { contentType: 'application/gzip' });
  const results = await Promise.allSettled([first, second]);
  expect(results.filter((result) => result.status === 'fulfilled')).toEqual([
    { status: 'fulfilled', value: { bytes: size } },
  ]);
  const refused = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
  expect(refused.reason).toBeInstanceOf(ObjectExistsError);
  expect(await storedDigest(bucket, 'lake/raw_logs/same.json.gz')).toBe(digest);
  expect(proxy.openUploads()).toEqual([]);
});

test('a write only creates: a key that exists is left as it is, unless the write replaces it', async () => {
  const { bucket, sink } = await sinkOnProxy();
  await sink.write('raw_logs/once.json.gz', randomBody(500).body, {
    contentType: 'application/gzip',
    contentLength: 500,
  });
  const before = await storedDigest(bucket, 'lake/raw_logs/once.json.gz');
  await expect(
    sink.write('raw_logs/once.json.gz', randomBody(600).body, { contentType: 'application/gzip', contentLength: 600 }),
  ).rejects.toBeInstanceOf(ObjectExistsError);
  await expect(
    sink.write('raw_logs/once.json.gz', randomBody(700).body, { contentType: 'application/gzip' }),
  ).rejects.toBeInstanceOf(ObjectExistsError);
  expect(await storedDigest(bucket, 'lake/raw_logs/once.json.gz')).toBe(before);
  const replacement = randomBody(800);
  await sink.write('raw_logs/once.json.gz', replacement.body, {
    contentType: 'application/gzip',
    contentLength: 800,
    replace: true,
  });
  expect(await storedDigest(bucket, 'lake/raw_logs/once.json.gz')).toBe(replacement.digest());
});
