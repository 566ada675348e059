import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { ObjectExistsError, SinkError } from '../../functions/core/errors.js';
import { tempDir } from '../support/temp.js';

test('writes through a hidden temp file and renames it into place', async () => {
  const dir = await tempDir();
  const sink = new LocalDirSink(dir);
  const { bytes } = await sink.write('a/b/c.json.gz', Readable.from([Buffer.from('hello'), Buffer.from(' world')]), {
    contentType: 'application/gzip',
  });
  expect(bytes).toBe(11);
  expect(await readFile(path.join(dir, 'a/b/c.json.gz'), 'utf8')).toBe('hello world');
  expect(await readdir(path.join(dir, 'a/b'))).toEqual(['c.json.gz']);
});

test('a failing body leaves neither the file nor its temp file', async () => {
  const dir = await tempDir();
  const sink = new LocalDirSink(dir);
  const body = new Readable({
    read() {
      this.push(Buffer.from('partial'));
      this.destroy(new Error('connection reset'));
    },
  });
  await expect(sink.write('x/y.json.gz', body, { contentType: 'application/gzip' })).rejects.toBeInstanceOf(SinkError);
  expect(await readdir(path.join(dir, 'x'))).toEqual([]);
});

test('lists keys in order under a prefix, after a key, and never shows temp files', async () => {
  const dir = await tempDir();
  const sink = new LocalDirSink(dir);
  for (const key of ['p/dt=2026-01-02/hour=01/f', 'p/dt=2026-01-01/hour=23/f', 'p/dt=2026-01-02/hour=00/f', 'q/z']) {
    await sink.writeText(key, 'x');
  }
  const keys: string[] = [];
  for await (const object of sink.list('p/', { startAfter: 'p/dt=2026-01-01' })) keys.push(object.key);
  expect(keys).toEqual(['p/dt=2026-01-01/hour=23/f', 'p/dt=2026-01-02/hour=00/f', 'p/dt=2026-01-02/hour=01/f']);
});

test('refuses a key that would escape the destination directory', async () => {
  const sink = new LocalDirSink(await tempDir());
  await expect(sink.writeText('../outside', 'x')).rejects.toThrow(/escapes the destination/);
});

test('readText answers undefined for a missing key and delete is idempotent', async () => {
  const sink = new LocalDirSink(await tempDir());
  expect(await sink.readText('_state/none.json')).toBeUndefined();
  await sink.delete('_state/none.json');
  expect(await sink.exists('_state/none.json')).toBe(false);
});

test("writing a key first removes the temp file a killed process left for it long ago, and only that key's", async () => {
  const dir = await tempDir();
  const sink = new LocalDirSink(dir);
  await mkdir(path.join(dir, 'a'), { recursive: true });
  const longAgo = new Date(Date.now() - 60 * 60_000);
  for (const [name, text] of [
    ['.f.json.gz.partial-deadbeef', 'half'],
    ['.g.json.gz.partial-cafe', 'other key'],
  ]) {
    await writeFile(path.join(dir, 'a', name as string), text as string);
    await utimes(path.join(dir, 'a', name as string), longAgo, longAgo);
  }
  await sink.write('a/f.json.gz', Readable.from([Buffer.from('whole')]), { contentType: 'application/gzip' });
  expect((await readdir(path.join(dir, 'a'))).sort()).toEqual(['.g.json.gz.partial-cafe', 'f.json.gz']);
});

test('replaceText replaces only the version read: of several writers that read it, exactly one wins', async () => {
  const sink = new LocalDirSink(await tempDir());
  expect(await sink.replaceText('_state/r.json', '{}', 'anything')).toBeUndefined();
  const created = await sink.createText('_state/r.json', '{"n":0}');
  expect(await sink.createText('_state/r.json', '{"n":9}')).toBeUndefined();
  const read = await sink.readVersioned('_state/r.json');
  expect(read).toEqual({ text: '{"n":0}', version: created });
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => sink.replaceText('_state/r.json', `{"n":${i + 1}}`, read?.version ?? '')),
  );
  const winners = results.filter((version) => version !== undefined);
  expect(winners).toHaveLength(1);
  expect((await sink.readVersioned('_state/r.json'))?.version).toBe(winners[0]);
  // The lock files of the swap are hidden and gone.
  const listed: string[] = [];
  for await (const object of sink.list('_state/')) listed.push(object.key);
  expect(listed).toEqual(['_state/r.json']);
});

test("of two concurrent writers of one key one lands it, the other finds it taken (neither removes the other's temp file)", async () => {
  const dir = await tempDir();
  const sink = new LocalDirSink(dir);
  const chunks = Array.from({ length: 20 }, (_, i) => Buffer.from(`chunk ${i}\n`));
  const trickle = () =>
    Readable.from(
      (async function* () {
        for (const chunk of chunks) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          yield chunk;
        }
      })(),
    );
  const results = await Promise.allSettled([
    sink.write('raw_logs/same.json.gz', trickle(), { contentType: 'application/gzip' }),
    sink.write('raw_logs/same.json.gz', trickle(), { contentType: 'application/gzip' }),
  ]);
  const expected = Buffer.concat(chunks);
  // Writes only create, as on S3 (If-None-Match): the second finds the key taken and leaves it as it is.
  expect(results.filter((result) => result.status === 'fulfilled')).toEqual([
    { status: 'fulfilled', value: { bytes: expected.length } },
  ]);
  expect(results.find((result) => result.status === 'rejected')?.reason).toBeInstanceOf(ObjectExistsError);
  expect((await readFile(path.join(dir, 'raw_logs/same.json.gz'))).equals(expected)).toBe(true);
  expect(await readdir(path.join(dir, 'raw_logs'))).toEqual(['same.json.gz']);
});

test('a stale lock file left by a dead process lets exactly one of several compare-and-swaps win (review R6)', async () => {
  let doubleWins = 0;
  for (let round = 0; round < 20; round++) {
    const dir = await tempDir();
    const sink = new LocalDirSink(dir);
    const version = await sink.createText('_state/r.json', '{"n":0}');
    const lock = path.join(dir, '_state', '.r.json.lock.partial-');
    await writeFile(lock, '12345.dead');
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => sink.replaceText('_state/r.json', `{"n":${i + 1}}`, version ?? '')),
    );
    if (results.filter((v) => v !== undefined).length !== 1) doubleWins++;
  }
  expect(doubleWins).toBe(0);
});
