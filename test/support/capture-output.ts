import { appendFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Runs in every test worker: copies everything written to stdout and stderr (Powertools logs and EMF included) to a
 * file, so that global teardown can scan the whole suite's output for leaked secrets.
 */
const dir = process.env.LSYNC_OUTPUT_CAPTURE;
if (dir && !(globalThis as { __lsyncCapture?: boolean }).__lsyncCapture) {
  (globalThis as { __lsyncCapture?: boolean }).__lsyncCapture = true;
  const file = path.join(dir, `worker-${process.pid}.log`);
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      try {
        appendFileSync(file, typeof chunk === 'string' ? chunk : Buffer.from(chunk));
      } catch {
        // Capturing must never break a test.
      }
      return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
  }
}
