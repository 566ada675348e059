/**
 * The Parquet converter's use case (`convertFile`) on a local destination, with the encoder settings of a deployed
 * converter (DuckDB memory limit and threads as the construct derives them from the function's memory).
 * Usage: node convert.mjs <destination dir> <JSON key> <memory limit MiB> <threads> <scratch dir>;
 * prints the ConvertOutcome as a JSON line. Always rebuilds, so that every run converts.
 */
import path from 'node:path';
import { DuckDbParquetEncoder } from '../../functions/adapters/duckdb-parquet-encoder.js';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { LocalDirObjectReader } from '../../functions/adapters/object-readers.js';
import { convertFile } from '../../functions/core/convert-file.js';
import { silentLogger } from '../../functions/core/ports.js';

const [destination, key, memoryLimitMiB, threads, scratchDir] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const encoder = new DuckDbParquetEncoder({
  memoryLimitMiB: Number(memoryLimitMiB),
  threads: Number(threads),
  spillDir: path.join(scratchDir, 'spill'),
});
const outcome = await convertFile(
  key,
  {
    reader: new LocalDirObjectReader(destination),
    sink: new LocalDirSink(destination),
    encoder,
    logger: silentLogger,
    scratchDir,
  },
  { rebuild: true },
);
await encoder.close();
process.stdout.write(`${JSON.stringify(outcome)}\n`);
if (outcome.status !== 'converted') process.exitCode = 1;
