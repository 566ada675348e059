import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { IntegrityError, SuspiciousFileError } from '../../functions/core/errors.js';
import { isGzipHead, peekBytes, RowCounter, VerifyingStream } from '../../functions/core/verify-stream.js';

async function drain(source: Readable, verifier: VerifyingStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(
    source,
    verifier,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(chunks);
}

function chunked(buffer: Buffer, size = 7): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < buffer.length; i += size) pieces.push(buffer.subarray(i, i + size));
  return Readable.from(pieces);
}

const text = '{"a":1}\n{"a":2}\n{"a":3}\n';

describe('VerifyingStream', () => {
  test('passes gzip bytes through unchanged and counts the rows inside', async () => {
    const gz = gzipSync(text);
    const verifier = new VerifyingStream({ gzip: true, expectedBytes: gz.length });
    const out = await drain(chunked(gz), verifier);
    expect(out.equals(gz)).toBe(true);
    expect(verifier.rows).toBe(3);
    expect(verifier.servedBytes).toBe(gz.length);
  });

  test('counts every row of concatenated gzip members whose chunks inflate to more than the output buffer', async () => {
    // 64 KiB of this gzip inflates to megabytes: one input chunk fills the reused output buffer many times.
    const member = gzipSync(text.repeat(200_000));
    const gz = Buffer.concat([member, member]);
    const verifier = new VerifyingStream({ gzip: true, expectedBytes: gz.length });
    const out = await drain(chunked(gz, 65536), verifier);
    expect(out.equals(gz)).toBe(true);
    expect(verifier.rows).toBe(2 * 3 * 200_000);
  });

  test('fails a truncated gzip even when no Content-Length was sent', async () => {
    const gz = gzipSync(text.repeat(100));
    const verifier = new VerifyingStream({ gzip: true });
    await expect(drain(chunked(gz.subarray(0, gz.length - 20)), verifier)).rejects.toBeInstanceOf(IntegrityError);
  });

  test('fails a corrupt gzip', async () => {
    const gz = Buffer.from(gzipSync(text.repeat(50)));
    for (let i = 20; i < 40; i++) gz[i] = (gz[i] as number) ^ 0xff;
    await expect(drain(chunked(gz), new VerifyingStream({ gzip: true }))).rejects.toBeInstanceOf(IntegrityError);
  });

  test('fails a body shorter than its Content-Length', async () => {
    const body = Buffer.from(text);
    const verifier = new VerifyingStream({ gzip: false, expectedBytes: body.length + 5 });
    await expect(drain(chunked(body), verifier)).rejects.toThrow(/ended after 24 of 29 bytes/);
  });

  test('fails a body longer than its Content-Length', async () => {
    const body = Buffer.from(text);
    await expect(drain(chunked(body), new VerifyingStream({ gzip: false, expectedBytes: 3 }))).rejects.toThrow(
      /more bytes/,
    );
  });

  test('counts a last line without newline as a row, and an empty file as none', async () => {
    const noNewline = new VerifyingStream({ gzip: false });
    await drain(Readable.from([Buffer.from('{"a":1}\n{"a":2}')]), noNewline);
    expect(noNewline.rows).toBe(2);
    const empty = new VerifyingStream({ gzip: false, expectedBytes: 0 });
    await drain(Readable.from([]), empty);
    expect(empty.rows).toBe(0);
  });
});

describe('VerifyingStream holds its last chunk back until every check passed', () => {
  /** Write `pieces` one by one; what came out before end() was called, and the outcome of ending. */
  async function beforeEnd(pieces: Buffer[], verifier: VerifyingStream) {
    const out: Buffer[] = [];
    verifier.on('data', (chunk: Buffer) => out.push(chunk));
    // The first error, whenever it comes (a corrupt trailer fails as soon as it is written).
    const outcome = new Promise<unknown>((resolve) => {
      verifier.once('end', () => resolve('ended'));
      verifier.on('error', resolve);
    });
    for (const piece of pieces) {
      if (verifier.destroyed) break;
      await new Promise<void>((resolve) => verifier.write(piece, () => resolve()));
    }
    await new Promise((resolve) => setImmediate(resolve));
    const seen = Buffer.concat(out);
    if (!verifier.destroyed) verifier.end();
    return { seen, all: Buffer.concat(out), outcome: await outcome };
  }

  const gz = gzipSync(text.repeat(2000));
  const pieces = Array.from({ length: Math.ceil(gz.length / 500) }, (_, i) => gz.subarray(i * 500, (i + 1) * 500));

  test('all but the last chunk flow before the end; the last one once the gzip proved complete', async () => {
    const { seen, all, outcome } = await beforeEnd(pieces, new VerifyingStream({ gzip: true }));
    expect(seen.equals(gz.subarray(0, gz.length - (pieces.at(-1) as Buffer).length))).toBe(true);
    expect(outcome).toBe('ended');
    expect(all.equals(gz)).toBe(true);
  });

  test('a wrong gzip trailer: the last chunk never flows', async () => {
    const bad = Buffer.from(gz);
    bad.writeUInt32LE((bad.readUInt32LE(bad.length - 8) ^ 1) >>> 0, bad.length - 8);
    const badPieces = pieces.map((piece, i) => bad.subarray(i * 500, i * 500 + piece.length));
    const { all, outcome } = await beforeEnd(badPieces, new VerifyingStream({ gzip: true }));
    expect(outcome).toBeInstanceOf(IntegrityError);
    expect(all.length).toBe(bad.length - (badPieces.at(-1) as Buffer).length);
  });

  test('a body short of its Content-Length: the last chunk never flows', async () => {
    const body = Buffer.from(text.repeat(10));
    const { all, outcome } = await beforeEnd(
      [body.subarray(0, 100), body.subarray(100)],
      new VerifyingStream({ gzip: false, expectedBytes: body.length + 1 }),
    );
    expect(outcome).toBeInstanceOf(IntegrityError);
    expect(all.length).toBe(100);
  });
});

test('RowCounter counts across chunk boundaries', () => {
  const counter = new RowCounter();
  for (const piece of ['{"a"', ':1}\n{', '"b":2}', '\n']) counter.add(Buffer.from(piece));
  expect(counter.rows).toBe(2);
});

test('peekBytes returns the head and leaves it in the stream', async () => {
  const gz = gzipSync(text);
  const stream = chunked(gz, 1);
  const head = await peekBytes(stream, 2);
  expect(isGzipHead(head)).toBe(true);
  const rest: Buffer[] = [];
  for await (const chunk of stream) rest.push(chunk as Buffer);
  expect(Buffer.concat(rest).equals(gz)).toBe(true);
});

test('peekBytes on an empty stream returns nothing', async () => {
  expect((await peekBytes(Readable.from([]), 2)).length).toBe(0);
});

test('counts rows that are not valid JSON, across chunk boundaries, without dropping them', async () => {
  const text =
    '{"_ll.language":"en", "favorite_place":"Paris"}\n{"_ll.language":"en", "favorite_place":"Rejuvenation Room"}}\n\n{"a":1}';
  const verifier = new VerifyingStream({ gzip: false });
  const out = await drain(chunked(Buffer.from(text), 5), verifier);
  expect(out.toString()).toBe(text);
  expect(verifier.rows).toBe(4);
  expect(verifier.malformedRows).toBe(1);
});

test('counts malformed rows inside gzip content too', async () => {
  const gz = gzipSync('{"a":1}\n{"a":\n{"b":2}\n');
  const verifier = new VerifyingStream({ gzip: true });
  await drain(chunked(gz, 3), verifier);
  expect(verifier.malformedRows).toBe(1);
});

/**
 * Issue 21, item 8: a gzip bomb. Before, the side inflate had no limit: a 510 KB gzip became 512 MiB and 8.5 s of
 * CPU, one chunk at a time on the event loop.
 */
describe('a gzip that inflates far beyond real data is refused as suspicious', () => {
  /** `mib` MiB of zeros as concatenated 1 MiB gzip members: about 1 KB each, a ratio near deflate's maximum. */
  function zeroBomb(mib: number): Buffer {
    const member = gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
    return Buffer.concat(Array.from({ length: mib }, () => member));
  }

  test('with the default limits: stops at the floor, long before the end, and names the ratio', async () => {
    const bomb = zeroBomb(256);
    expect(bomb.length).toBeLessThan(512 * 1024);
    const verifier = new VerifyingStream({ gzip: true });
    const error = await drain(chunked(bomb, 16 * 1024), verifier).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SuspiciousFileError);
    expect((error as Error).message).toMatch(
      /^suspicious gzip: it inflates to more than 64 MiB and 100 times the \d+ bytes served so far; not copied$/,
    );
    // Stopped at the floor: about a quarter of the served bytes were read.
    expect(verifier.servedBytes).toBeLessThan(bomb.length / 2);
  });

  test('the ratio is measured on the bytes served so far, past the floor', async () => {
    const repetitive = gzipSync(Buffer.from('{"event":"x","n":1}\n'.repeat(200_000)));
    const ratio = (20 * 200_000) / repetitive.length;
    const floor = 64 * 1024;
    // Below the ratio: passes, rows counted.
    const passing = new VerifyingStream({
      gzip: true,
      inflateLimit: { ratio: Math.ceil(ratio) + 1, floorBytes: floor },
    });
    await drain(chunked(repetitive, 4096), passing);
    expect(passing.rows).toBe(200_000);
    // Above it: refused.
    const refusing = new VerifyingStream({
      gzip: true,
      inflateLimit: { ratio: Math.floor(ratio / 2), floorBytes: floor },
    });
    await expect(drain(chunked(repetitive, 4096), refusing)).rejects.toThrow(SuspiciousFileError);
  });

  test('within the floor any ratio passes (a small file of identical rows)', async () => {
    const small = zeroBomb(8);
    const verifier = new VerifyingStream({ gzip: true });
    await drain(chunked(small, 4096), verifier);
    expect(verifier.servedBytes).toBe(small.length);
  });
});
