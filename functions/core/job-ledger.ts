import { HOUR_MS } from './hours.js';
import type { JobMessage } from './job-message.js';
import { jobId, type SyncJob } from './jobs.js';
import type { ProcessResult } from './process-job.js';

/**
 * The queued-job ledger of one deployment (a DynamoDB table in AWS): which jobs have a message in the queue, which
 * were parked lately, and whether planning left missing log hours for later runs (the backlog). The planner claims
 * a job here before it sends its message, so that no run enqueues again what is already waiting; the copier removes
 * the entry when the job ends. Every entry expires on its own, so that a lost message delays a job but never blocks
 * it for good.
 */
export interface JobLedger {
  /** Where the entries live, for errors and logs (a table name). */
  readonly location: string;
  /** The live entries (expired ones excluded), read once at the start of a planner run. */
  read(now: number): Promise<LedgerSnapshot>;
  /**
   * Record a job as queued until `until` under `claimId` (the planner run's, carried by the job's message), unless a
   * live entry for it exists: false then (someone else has it).
   */
  claim(id: string, until: number, now: number, claimId: string): Promise<boolean>;
  /**
   * The job is still queued (handed back with a delay): keep its entry until `until`, under the claim of the message
   * that waits again (undefined: a message sent before claims had ids).
   */
  keep(id: string, until: number, claimId: string | undefined): Promise<void>;
  /** The job was parked: planning leaves it alone until `until`. */
  rest(id: string, until: number): Promise<void>;
  /**
   * Forget a job: it ended (copied, present, left to the next planning), or its message could not be sent. Only the
   * entry of `claimId` goes (undefined: only one written without a claim): a stale duplicate of an older message
   * must not remove a newer claim, or the next planner run would send the job again.
   */
  release(id: string, claimId: string | undefined): Promise<void>;
  /** Planning left missing log hours from `from` on for later runs (until `until`, when it forgets it). */
  markBacklog(from: number, until: number): Promise<void>;
  /** Forget the backlog mark if it still says `from` (a newer mark by another run stands). */
  clearBacklog(from: number): Promise<void>;
}

export interface LedgerSnapshot {
  /** Jobs with a message in the queue or in flight. */
  readonly queued: ReadonlySet<string>;
  /** Jobs parked lately; planned again once their entry expires. */
  readonly parked: ReadonlySet<string>;
  /** Oldest log hour (epoch ms) a planner run left missing and unqueued; undefined when there is no backlog. */
  readonly backlogFrom?: number;
}

/** A queued entry lives this long after its last news; it outlives any message that still exists (see README). */
export const QUEUED_ENTRY_TTL_MS = 6 * HOUR_MS;
/** A parked job is not planned again for this long: the next daily run asks once more, not every top-up. */
export const PARKED_ENTRY_TTL_MS = 20 * HOUR_MS;
/** A backlog mark that no run refreshes (the planner stopped) is forgotten after this; the daily run finds it again. */
export const BACKLOG_TTL_MS = 48 * HOUR_MS;

export class LedgerError extends Error {
  override readonly name = 'LedgerError';
}

/** The ledger's key of a job: its stable id (`log_hour/<app>/<YYYY-MM-DDTHH>`, ...). */
export function ledgerId(job: SyncJob): string {
  return jobId(job);
}

/**
 * The copier's side of the ledger: after a job's outcome, remove its entry when the job ended, keep it while the job
 * waits in the queue again, and mark it parked so that planning does not send it straight back.
 */
export async function settleLedgerEntry(
  ledger: JobLedger,
  message: Pick<JobMessage, 'job' | 'ledgerClaim'>,
  result: ProcessResult,
  now: number,
): Promise<void> {
  const id = ledgerId(message.job);
  const claimId = message.ledgerClaim;
  switch (result.action) {
    case 'done':
    case 'left_for_planner':
      return ledger.release(id, claimId);
    case 'requeued':
      return ledger.keep(id, now + result.delaySeconds * 1000 + QUEUED_ENTRY_TTL_MS, claimId);
    case 'retry':
      return ledger.keep(id, now + result.visibilitySeconds * 1000 + QUEUED_ENTRY_TTL_MS, claimId);
    case 'parked':
      return ledger.rest(id, now + PARKED_ENTRY_TTL_MS);
  }
}
