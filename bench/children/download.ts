/**
 * Breakdown of a `sync` copy, without the destination. `plain`: download the file URL with Node's HTTP client and
 * discard it (the network part). `copier`: the copier's own `copyJob` for the log hour (API request, download,
 * verification with its default settings) into a sink that discards the bytes.
 * Usage: node download.mjs plain <url> | node download.mjs copier <apiUrl> <appUuid> <hourMs>; prints {"bytes": n}.
 */
import http from 'node:http';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LocalyticsClient } from '../../functions/adapters/localytics-client.js';
import { copyJob } from '../../functions/core/copy-job.js';
import { type ObjectSink, type StoredObject, silentLogger } from '../../functions/core/ports.js';
import { InProcessRequestBudget } from '../../functions/core/request-budget.js';
import { SIMULATOR_DEFAULT_CREDENTIALS } from '../../functions/simulator/server.js';

/** Counts what it is given; holds nothing. */
function discard(onBytes: (count: number) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      onBytes(chunk.length);
      callback();
    },
  });
}

/** A destination that keeps nothing: every key is absent, every write is consumed and counted. */
const discardingSink: ObjectSink = {
  location: 'discard://',
  exists: async () => false,
  async *list(): AsyncIterable<StoredObject> {},
  async write(_key: string, body: Readable) {
    let bytes = 0;
    await pipeline(
      body,
      discard((count) => {
        bytes += count;
      }),
    );
    return { bytes };
  },
  readText: async () => undefined,
  readVersioned: async () => undefined,
  writeText: async () => undefined,
  createText: async () => 'discarded',
  replaceText: async () => 'discarded',
  delete: async () => undefined,
  deleteIfUnchanged: async () => true,
};

const [mode, ...args] = process.argv.slice(2);
let bytes = 0;
if (mode === 'plain' && args[0]) {
  const url = args[0];
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(url, { headers: { 'accept-encoding': 'identity' } }, resolve).once('error', reject);
  });
  if (response.statusCode !== 200) throw new Error(`GET answered ${response.statusCode}`);
  await pipeline(
    response,
    discard((count) => {
      bytes += count;
    }),
  );
} else if (mode === 'copier' && args.length === 3) {
  const [apiUrl, appUuid, hour] = args as [string, string, string];
  const client = new LocalyticsClient({
    apiUrl,
    credentials: SIMULATOR_DEFAULT_CREDENTIALS,
    budget: new InProcessRequestBudget({ ratePerMinute: 6000 }),
  });
  const outcome = await copyJob(
    { kind: 'log_hour', appUuid, hour: Number(hour) },
    { source: client, sink: discardingSink, logger: silentLogger, checkExisting: false },
  );
  client.close();
  if (outcome.status !== 'copied') throw new Error(`copyJob ended ${JSON.stringify(outcome)}`);
  bytes = outcome.bytes;
} else {
  throw new Error('usage: download plain <url> | download copier <apiUrl> <appUuid> <hourMs>');
}
process.stdout.write(`${JSON.stringify({ bytes })}\n`);
