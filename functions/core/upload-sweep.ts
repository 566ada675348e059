import { DATASET_FOLDERS } from './jobs.js';
import type { Logger, ObjectSink } from './ports.js';
import { describeError } from './redact.js';

/**
 * Abort the multipart uploads that writers killed mid-copy left open in the data folders (see
 * `ObjectSink.abortAbandonedUploads`): a key written later aborts its own, but a key that is never written again
 * (an export regenerated meanwhile, a log hour past its retention) needs this sweep. Best effort: a failure is
 * logged, and the next sweep tries again.
 */
export async function sweepAbandonedUploads(sink: ObjectSink, logger: Logger, signal?: AbortSignal): Promise<number> {
  if (!sink.abortAbandonedUploads) return 0;
  let aborted = 0;
  for (const folder of new Set(Object.values(DATASET_FOLDERS))) {
    try {
      aborted += await sink.abortAbandonedUploads(`${folder}/`, { signal });
    } catch (error) {
      logger.warn('abandoned upload sweep failed', { folder, reason: describeError(error) });
    }
  }
  if (aborted > 0) logger.info('abandoned uploads aborted', { uploads: aborted });
  return aborted;
}
