/**
 * The state and outcomes of one job's copy, shared by the copy (copy-job.ts) and its change-set path
 * (change-set.ts), which both write them; kept apart so that neither imports the other's module in a circle.
 */
import { dataKey, jobFields, type SyncJob } from './jobs.js';
import type { ExportSource, Logger, ObjectSink } from './ports.js';
import { type Clock, systemClock } from './request-budget.js';

export type CopyOutcome =
  | {
      readonly status: 'copied';
      readonly key: string;
      /** Bytes stored at the destination. */
      readonly bytes: number;
      /** Bytes served by the file host. */
      readonly servedBytes: number;
      readonly rows: number;
      /** Rows that are not valid JSON: copied byte for byte, counted and reported. */
      readonly malformedRows: number;
      readonly warnings: readonly string[];
      readonly apiRequests: number;
      readonly downloads: number;
    }
  | { readonly status: 'present'; readonly key: string }
  | { readonly status: 'not_ready'; readonly apiRequests: number }
  /** A 429, or with `byBudget` no request budget slot before the deadline: requeued with a delay, not a failure. */
  | {
      readonly status: 'throttled';
      readonly retryAfterMs: number;
      readonly apiRequests: number;
      readonly byBudget?: boolean;
    }
  /** Stopped on purpose (deadline or Ctrl-C); nothing was written; run it again later. */
  | { readonly status: 'interrupted'; readonly apiRequests: number }
  /** Another run is working on it (a change set's claim): try again after `retryAfterMs`. Not a failure. */
  | {
      readonly status: 'deferred';
      readonly reason: string;
      readonly retryAfterMs: number;
      readonly apiRequests: number;
    }
  | {
      readonly status: 'failed';
      readonly reason: string;
      readonly retryable: boolean;
      readonly apiRequests: number;
      readonly downloads: number;
    };

export interface CopyDependencies {
  readonly source: ExportSource;
  readonly sink: ObjectSink;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Download attempts of one `Location` before the job is reported failed (retryable). Default 4. */
  readonly maxDownloadAttempts?: number;
  /** Fresh `Location`s asked for after an expired one. Default 2. */
  readonly maxReResolves?: number;
  /** Skip the job when its key already exists (the planner may have checked already). Default true. */
  readonly checkExisting?: boolean;
  readonly random?: () => number;
  /** Aborting it stops the job between steps or mid-transfer (the sink then aborts its write). */
  readonly signal?: AbortSignal;
  /**
   * Epoch ms after which this process can no longer act (a Lambda invocation's hard timeout). A change-set claim is
   * held until then. Default: none (the CLI), and a claim is held for a fixed lease the run keeps to.
   */
  readonly holderDeadline?: number;
  /** How long a sent `profile_changes` request may finish after `signal` aborts (ms). Default 1.5 s. */
  readonly inFlightGraceMs?: number;
  /**
   * Which files have every row parsed to count malformed JSON lines: `plain` (audiences and profiles, served as
   * plain JSON lines; the documentation's own sample has a malformed one), `all` (raw logs too), or `off`.
   * Parsing is the copy's largest CPU cost (bench/RESULTS.md), hence not on gzip log hours by default.
   * Default `plain`.
   */
  readonly checkJson?: JsonCheck;
  /**
   * Once a download has run `graceMs`, it must have averaged at least `bytesPerSecond` since it started, or it is
   * abandoned as a transient failure (retried): an idle timeout alone lets a host that sends a byte a minute hold a
   * worker forever. Default `DEFAULT_THROUGHPUT_FLOOR`.
   */
  readonly minDownloadThroughput?: ThroughputFloor;
}

export interface ThroughputFloor {
  readonly bytesPerSecond: number;
  readonly graceMs: number;
}

/**
 * 16 KiB/s (128 kbit/s) averaged from the first minute on: far below any link that can sync at all (a 1 GiB hour
 * still may take 18 hours), far above a host that trickles.
 */
export const DEFAULT_THROUGHPUT_FLOOR: ThroughputFloor = { bytesPerSecond: 16 * 1024, graceMs: 60_000 };

export type JsonCheck = 'plain' | 'all' | 'off';

/** The state of one job's copy: counters, warnings and how it ends. */
export class CopyRun {
  apiRequests = 0;
  downloads = 0;
  readonly warnings: string[] = [];
  fields: Record<string, string>;
  key: string;
  readonly clock: Clock;

  constructor(
    public job: SyncJob,
    readonly deps: CopyDependencies,
  ) {
    this.key = dataKey(job);
    this.fields = jobFields(job);
    this.clock = deps.clock ?? systemClock;
  }

  /** Copy another generation of the same export instead (Localytics refreshed it meanwhile). */
  relabel(job: SyncJob): void {
    this.job = job;
    this.key = dataKey(job);
    this.fields = jobFields(job);
  }

  failed(reason: string, retryable: boolean): CopyOutcome {
    this.deps.logger.warn('export copy failed', { ...this.fields, reason, retryable });
    return { status: 'failed', reason, retryable, apiRequests: this.apiRequests, downloads: this.downloads };
  }

  interrupted(): CopyOutcome {
    return { status: 'interrupted', apiRequests: this.apiRequests };
  }

  deferred(retryAfterMs: number, reason: string): CopyOutcome {
    this.deps.logger.info('export copy deferred', { ...this.fields, reason, retryAfterMs });
    return { status: 'deferred', reason, retryAfterMs, apiRequests: this.apiRequests };
  }
}
