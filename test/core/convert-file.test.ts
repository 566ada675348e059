import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, test } from 'vitest';
import { DuckDbParquetEncoder } from '../../functions/adapters/duckdb-parquet-encoder.js';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { LocalDirObjectReader } from '../../functions/adapters/object-readers.js';
import {
  type ConvertDependencies,
  convertFile,
  type ParquetEncoder,
  type StoredObjectReader,
} from '../../functions/core/convert-file.js';
import { SinkError } from '../../functions/core/errors.js';
import { silentLogger } from '../../functions/core/ports.js';
import { tempDir } from '../support/temp.js';

const APP = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';
const JSON_KEY = `raw_logs/app_uuid=${APP}/dt=2026-11-19/hour=07/${APP}_2026-11-19_07.json.gz`;
const PARQUET_KEY = `parquet/raw_logs/app_uuid=${APP}/dt=2026-11-19/hour=07/${APP}_2026-11-19_07.parquet`;
const ROWS = [
  { type: 'e', at_millis: 3, uuid: 'c', name: 'late' },
  { type: 's', at_millis: 1, uuid: 'a' },
  { type: 'e', at_millis: 2, uuid: 'b', name: 'middle' },
];

const encoder = new DuckDbParquetEncoder({ memoryLimitMiB: 256, threads: 1 });
afterAll(() => encoder.close());

async function setup(lines = ROWS.map((row) => JSON.stringify(row)).join('\n')) {
  const root = await tempDir('lsync-convert-dest-');
  const scratchDir = await tempDir('lsync-convert-scratch-');
  await mkdir(path.dirname(path.join(root, JSON_KEY)), { recursive: true });
  await writeFile(path.join(root, JSON_KEY), gzipSync(lines));
  const sink = new LocalDirSink(root);
  const reader = new LocalDirObjectReader(root);
  const deps: ConvertDependencies = { reader, sink, encoder, logger: silentLogger, scratchDir };
  return { root, scratchDir, sink, reader, deps };
}

async function readParquet(file: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(`SELECT type, at_millis, uuid, name FROM read_parquet('${file}')`);
    return reader.getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** A reader that counts the objects opened. */
function counting(reader: StoredObjectReader) {
  const opened: string[] = [];
  return {
    opened,
    open(key: string): Promise<Readable | undefined> {
      opened.push(key);
      return reader.open(key);
    },
  };
}

describe('convertFile', () => {
  test('writes the typed Parquet twin at its key, rows sorted by at_millis, and leaves no scratch files', async () => {
    const { root, scratchDir, deps } = await setup();
    const outcome = await convertFile(JSON_KEY, deps);
    expect(outcome).toMatchObject({ status: 'converted', jsonKey: JSON_KEY, parquetKey: PARQUET_KEY, rows: 3 });
    expect(await readParquet(path.join(root, PARQUET_KEY))).toEqual([
      { type: 's', at_millis: '1', uuid: 'a', name: null },
      { type: 'e', at_millis: '2', uuid: 'b', name: 'middle' },
      { type: 'e', at_millis: '3', uuid: 'c', name: 'late' },
    ]);
    expect(await readdir(scratchDir)).toEqual([]);
  });

  test('leaves an existing Parquet object alone without reading the JSON object', async () => {
    const { root, deps, reader } = await setup();
    await mkdir(path.dirname(path.join(root, PARQUET_KEY)), { recursive: true });
    await writeFile(path.join(root, PARQUET_KEY), 'already there');
    const spy = counting(reader);
    expect(await convertFile(JSON_KEY, { ...deps, reader: spy })).toEqual({
      status: 'present',
      jsonKey: JSON_KEY,
      parquetKey: PARQUET_KEY,
    });
    expect(spy.opened).toEqual([]);
  });

  test('rebuild replaces an existing Parquet object', async () => {
    const { root, deps } = await setup();
    await mkdir(path.dirname(path.join(root, PARQUET_KEY)), { recursive: true });
    await writeFile(path.join(root, PARQUET_KEY), 'stale');
    expect(await convertFile(JSON_KEY, deps, { rebuild: true })).toMatchObject({ status: 'converted', rows: 3 });
    expect(await readParquet(path.join(root, PARQUET_KEY))).toHaveLength(3);
  });

  test('a missing JSON object is a permanent failure and writes nothing', async () => {
    const { root, deps } = await setup();
    const missing = JSON_KEY.replace('hour=07', 'hour=08').replace('_07.json.gz', '_08.json.gz');
    expect(await convertFile(missing, deps)).toMatchObject({
      status: 'failed',
      retryable: false,
      reason: `the JSON object ${missing} does not exist`,
    });
    expect(await readdir(root)).toEqual(['raw_logs']);
  });

  test('a key that is not a table data object is refused before anything is read', async () => {
    const { deps, reader } = await setup();
    const spy = counting(reader);
    expect(await convertFile('_state/x.json', { ...deps, reader: spy })).toMatchObject({
      status: 'failed',
      retryable: false,
    });
    expect(spy.opened).toEqual([]);
  });

  test('an encoder failure (a half-written output file) leaves nothing at the key and no scratch files', async () => {
    const { root, scratchDir, deps } = await setup();
    const failing: ParquetEncoder = {
      async encode(request) {
        await writeFile(request.output, 'PAR1 half a file');
        throw new Error('out of disk');
      },
    };
    expect(await convertFile(JSON_KEY, { ...deps, encoder: failing })).toMatchObject({
      status: 'failed',
      retryable: true,
      reason: expect.stringContaining('out of disk'),
    });
    expect(await readdir(root)).toEqual(['raw_logs']);
    expect(await readdir(scratchDir)).toEqual([]);
  });

  test('a file that is not gzip fails with DuckDB’s reason and leaves nothing', async () => {
    const { root, deps } = await setup();
    await writeFile(path.join(root, JSON_KEY), 'plain text, not gzip');
    const outcome = await convertFile(JSON_KEY, deps);
    expect(outcome).toMatchObject({
      status: 'failed',
      reason: expect.stringContaining('converting to Parquet failed'),
    });
    expect(await readdir(root)).toEqual(['raw_logs']);
  });

  test('a destination that fails to write leaves nothing at the key', async () => {
    const { root, deps, sink } = await setup();
    const broken = Object.assign(Object.create(sink) as LocalDirSink, {
      write: async () => {
        throw new SinkError('writing failed: disk full');
      },
    });
    expect(await convertFile(JSON_KEY, { ...deps, sink: broken })).toMatchObject({
      status: 'failed',
      retryable: true,
      reason: expect.stringContaining('disk full'),
    });
    expect(await readdir(root)).toEqual(['raw_logs']);
  });

  test('an aborted conversion is interrupted and writes nothing', async () => {
    const { root, deps } = await setup();
    const controller = new AbortController();
    const stalling: ParquetEncoder = {
      async encode() {
        controller.abort();
        throw new Error('interrupted');
      },
    };
    expect(await convertFile(JSON_KEY, { ...deps, encoder: stalling, signal: controller.signal })).toEqual({
      status: 'interrupted',
      jsonKey: JSON_KEY,
    });
    expect(await readdir(root)).toEqual(['raw_logs']);
  });
});
