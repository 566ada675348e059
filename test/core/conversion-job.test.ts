import { createReadStream } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import {
  type ConversionMessage,
  type ConversionQueue,
  newConversionMessage,
  parseConversionMessage,
  processConversionMessage,
} from '../../functions/core/conversion-job.js';
import type { ParquetEncoder } from '../../functions/core/convert-file.js';
import { silentLogger } from '../../functions/core/ports.js';
import { tempDir } from '../support/temp.js';

const APP = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';
const KEY = `raw_logs/app_uuid=${APP}/dt=2026-11-19/hour=07/${APP}_2026-11-19_07.json.gz`;

class RecordingQueue implements ConversionQueue {
  requeued: { message: ConversionMessage; delaySeconds: number }[] = [];
  parked: { body: string; reason: string }[] = [];
  async enqueue() {}
  async requeue(message: ConversionMessage, delaySeconds: number) {
    this.requeued.push({ message, delaySeconds });
  }
  async park(body: string, reason: string) {
    this.parked.push({ body, reason });
  }
}

async function deps(encoder: ParquetEncoder, signal?: AbortSignal) {
  const sink = new LocalDirSink(await tempDir());
  await sink.writeText(KEY, 'gzip or not, the encoder decides');
  const reader = { open: async () => createReadStream(`${sink.location}/${KEY}`) };
  return {
    reader,
    sink,
    encoder,
    logger: silentLogger,
    scratchDir: await tempDir(),
    signal,
    queue: new RecordingQueue(),
  };
}

describe('conversion messages', () => {
  test('carry a table data key; anything else is refused with the reason', () => {
    expect(parseConversionMessage(JSON.stringify(newConversionMessage(KEY)))).toEqual({ v: 1, key: KEY });
    expect(() => parseConversionMessage('{"v":1,"key":"_state/x.json"}')).toThrow(
      'message is not a conversion: key is not a data object of any table',
    );
    expect(() => parseConversionMessage('{"v":2,"key":"x"}')).toThrow(/^message is not a conversion: v /);
    expect(() => parseConversionMessage('nope')).toThrow('message body is not JSON');
  });
});

describe('processConversionMessage', () => {
  test('a conversion stopped at the deadline is requeued at once, and parked the third time', async () => {
    const aborted = new AbortController();
    aborted.abort();
    const d = await deps({ encode: async () => Promise.reject(new Error('unreachable')) }, aborted.signal);
    let body = JSON.stringify(newConversionMessage(KEY));
    for (let i = 0; i < 2; i++) {
      expect(await processConversionMessage(body, d, { receiveCount: 1, maxReceiveCount: 5 })).toEqual({
        action: 'requeued',
        reason: 'interrupted',
        delaySeconds: 0,
      });
      body = JSON.stringify(d.queue.requeued.at(-1)?.message);
    }
    expect(d.queue.requeued.map((entry) => entry.message.interruptions)).toEqual([1, 2]);
    expect(await processConversionMessage(body, d, { receiveCount: 1, maxReceiveCount: 5 })).toMatchObject({
      action: 'parked',
    });
    expect(d.queue.parked[0]?.reason).toMatch(/timeout 3 times: raise the converter's timeout or memory$/);
  });

  test('a retryable failure backs off across deliveries and is parked with its reason on the last one', async () => {
    const d = await deps({ encode: async () => Promise.reject(new Error('disk full')) });
    const body = JSON.stringify(newConversionMessage(KEY));
    const decisions = [];
    for (const receiveCount of [1, 2, 3]) {
      decisions.push(
        await processConversionMessage(body, d, { receiveCount, maxReceiveCount: 3, retryBaseSeconds: 10 }),
      );
    }
    expect(decisions).toEqual([
      { action: 'retry', reason: 'disk full', visibilitySeconds: 10 },
      { action: 'retry', reason: 'disk full', visibilitySeconds: 20 },
      { action: 'parked', reason: 'disk full (after 3 deliveries)' },
    ]);
    expect(d.queue.parked).toEqual([{ body, reason: 'disk full (after 3 deliveries)' }]);
  });
});
