import { randomUUID } from 'node:crypto';
import { EnqueueError } from './errors.js';
import { DAY_MS, floorHour, HOUR_MS, LOG_RETENTION_MS, parseHour } from './hours.js';
import type { Dataset } from './identifiers.js';
import { BACKLOG_TTL_MS, type JobLedger, type LedgerSnapshot, ledgerId, QUEUED_ENTRY_TTL_MS } from './job-ledger.js';
import { type JobMessage, newJobMessage } from './job-message.js';
import type { LogHourJob, SyncJob } from './jobs.js';
import { type Plan, type PlanRequest, planSync } from './planner.js';
import type { ExportSource, Logger, ObjectSink } from './ports.js';
import type { JobQueue } from './process-job.js';

/**
 * What a scheduled planner run covers: `logs` the recent hours (hourly), `exports` audiences, profiles and the log
 * backfill window (daily, and once when the stack is deployed), `topup` only the backlog that earlier runs left
 * (every 15 minutes; nothing when there is none).
 */
export type PlannerTask = 'logs' | 'exports' | 'topup';

export interface PlannerSettings {
  readonly apps: readonly string[];
  readonly datasets: ReadonlySet<Dataset>;
  /** Hours after an hour ends before its file is expected. */
  readonly logLagHours: number;
  /** How far back the hourly run looks for missing hours (covers missed runs). */
  readonly lookbackHours: number;
  /** How far back the daily run looks for gaps (at most the 30-day retention). */
  readonly backfillDays: number;
  /** The key's API budget: how fast the copiers can work through the queue. */
  readonly requestsPerMinute: number;
  /** The queue holds at most this many minutes of work at the key's rate; the rest waits for a later top-up. */
  readonly queueAheadMinutes: number;
  /** An audience or profile export not regenerated for this long is reported. */
  readonly staleExportHours?: number;
}

export interface PlannerRunSummary {
  readonly task: PlannerTask;
  readonly window: { readonly from: number; readonly to: number };
  readonly enqueued: number;
  readonly present: number;
  readonly beyondRetention: number;
  /** Missing files whose job is already waiting in the queue: not sent again. */
  readonly alreadyQueued: number;
  /** Missing files whose job was parked lately: left alone until the ledger forgets the park. */
  readonly parkedRecently: number;
  /** Log hours of the window that are not at the destination (queued, parked, or waiting for a later top-up). */
  readonly logHoursMissing: number;
  /** Missing log hours left for later runs (the queue was full, or the run reached its deadline). */
  readonly backlog: number;
  /** The run stopped listing or sending at its deadline; the rest is left to the next run. */
  readonly stoppedAtDeadline: boolean;
  readonly skipped: Plan['skipped'];
  readonly listFailures: Plan['listFailures'];
  /**
   * Per app, whole hours between now and the end of the newest log hour at the destination. When the window holds
   * none, the window's length (a lower bound), so that a stalled app still shows a growing lag.
   */
  readonly lagHours: Record<string, number>;
  /** Audience and profile exports that vanished or stopped being refreshed (the `exports` task only). */
  readonly exportConcerns: Plan['exportConcerns'];
}

export interface PlannerDependencies {
  readonly source: ExportSource;
  readonly sink: ObjectSink;
  readonly queue: JobQueue;
  readonly ledger: JobLedger;
  readonly logger: Logger;
  /** Aborted at the run's deadline: no new batch is sent after it. */
  readonly signal?: AbortSignal;
}

const SEND_BATCH = 10;
const MAX_SQS_DELAY_SECONDS = 900;
/**
 * Jobs are released this long before their turn at the key's pace: the copiers then always find work waiting (a batch
 * to fill, a container to start, a killed batch's jobs to replace), and the key does not idle while they fetch it.
 */
const RELEASE_AHEAD_SECONDS = 15;

/**
 * The planner's use case. Each missing file becomes one queue message, but only once: a job is claimed in the
 * ledger before its message is sent, and a job already waiting is left alone. Log hours go oldest first (they are
 * deleted after 30 days), and the queue holds at most `queueAheadMinutes` of work at the key's rate: the rest is the
 * backlog, which later runs (every 15 minutes) top up from, oldest first again. Messages are released at the key's
 * pace (a growing delay, up to SQS's 15 minutes), so that copiers take them roughly in that order.
 */
export async function planToQueue(
  task: PlannerTask,
  settings: PlannerSettings,
  deps: PlannerDependencies,
  now: number,
  limits: Pick<PlanRequest, 'signal' | 'listSignal' | 'listTimeLimitMs'> = {},
): Promise<PlannerRunSummary> {
  // The newest hour planned is the last one that ended at least `logLagHours` ago.
  const to = floorHour(now - settings.logLagHours * HOUR_MS);
  const retentionFloor = floorHour(now - LOG_RETENTION_MS) + HOUR_MS;
  // The ledger is read before the destination is listed: a job that ends in between is then seen as present.
  const snapshot = await deps.ledger.read(now);
  const planLogs = settings.datasets.has('logs');
  if (task === 'topup' && (snapshot.backlogFrom === undefined || !planLogs)) {
    return finish(deps.logger, emptySummary(task, to));
  }
  const ownFrom =
    task === 'logs'
      ? to - settings.lookbackHours * HOUR_MS
      : task === 'exports'
        ? to - Math.min(settings.backfillDays * DAY_MS, LOG_RETENTION_MS)
        : to;
  // A backlog widens every run's window to where it starts, so that no run sends newer hours ahead of it.
  const from = Math.max(Math.min(ownFrom, snapshot.backlogFrom ?? ownFrom), retentionFloor);
  const datasets = new Set<Dataset>();
  if (planLogs) datasets.add('logs');
  if (task === 'exports') {
    for (const dataset of ['audiences', 'profiles'] as const) if (settings.datasets.has(dataset)) datasets.add(dataset);
  }
  // The run's deadline also stops listing the apps' log hours (the lists of exports have their own, earlier one).
  const stop = limits.signal ?? deps.signal;
  const plan = await planSync(
    {
      datasets,
      apps: settings.apps,
      from,
      to,
      now,
      staleExportHours: settings.staleExportHours,
      ...limits,
      signal: stop,
    },
    deps,
  );
  // A listing stopped at the deadline may have left apps unlisted: their hours count as backlog, from the start.
  const listingCut = planLogs && stop?.aborted === true;

  let alreadyQueued = 0;
  let parkedRecently = 0;
  let logHoursMissing = 0;
  const dailyExports: SyncJob[] = [];
  const logs: LogHourJob[] = [];
  const stateOf = indexLedger(snapshot);
  for (const job of plan.jobs) {
    if (job.kind === 'log_hour') logHoursMissing++;
    const state = stateOf(job);
    if (state === 'queued') alreadyQueued++;
    else if (state === 'parked') parkedRecently++;
    else if (job.kind === 'log_hour') logs.push(job);
    else dailyExports.push(job);
  }
  // Audiences and profiles are few and replaced daily: always sent. Log hours fill the room that is left.
  const capacity = Math.ceil(settings.requestsPerMinute * settings.queueAheadMinutes);
  const room = Math.max(0, capacity - snapshot.queued.size - dailyExports.length);
  const selected: SyncJob[] = [...dailyExports, ...logs.slice(0, room)];

  const secondsPerRequest = 60 / settings.requestsPerMinute;
  // Released after the work already queued: each message's delay is its place in line at the key's pace, less a
  // little so that the copiers are already waiting when its turn comes.
  // This run's claims in the ledger: only a message it sent (or this run) may release them.
  const claimId = randomUUID();
  let position = snapshot.queued.size;
  let enqueued = 0;
  let next = 0;
  let stoppedAtDeadline = false;
  for (; next < selected.length; next += SEND_BATCH) {
    if (deps.signal?.aborted) {
      stoppedAtDeadline = true;
      break;
    }
    const batch = selected.slice(next, next + SEND_BATCH);
    const claimed = await claimAll(deps.ledger, batch, now, claimId);
    alreadyQueued += batch.length - claimed.length;
    if (claimed.length === 0) continue;
    const delaySeconds = Math.min(
      MAX_SQS_DELAY_SECONDS,
      Math.max(0, Math.floor(position * secondsPerRequest) - RELEASE_AHEAD_SECONDS),
    );
    try {
      await deps.queue.enqueue(
        claimed.map((job) => newJobMessage(job, now, claimId)),
        { delaySeconds },
      );
    } catch (error) {
      // Unsent jobs must not stay claimed: the next run sends them. When the queue says which were refused, only
      // those are released (the others are queued); otherwise all, and at worst one is sent twice, never lost.
      const unsent =
        error instanceof EnqueueError ? (error.unsent as readonly JobMessage[]).map((message) => message.job) : claimed;
      await Promise.allSettled(unsent.map((job) => deps.ledger.release(ledgerId(job), claimId)));
      throw error;
    }
    position += claimed.length;
    enqueued += claimed.length;
  }

  const left = [...logs.slice(room), ...selected.slice(next).filter((job) => job.kind === 'log_hour')] as LogHourJob[];
  if (left.length > 0 || listingCut) {
    const oldest = listingCut ? from : left.reduce((min, job) => Math.min(min, job.hour), Number.POSITIVE_INFINITY);
    await deps.ledger.markBacklog(oldest, now + BACKLOG_TTL_MS);
  } else if (snapshot.backlogFrom !== undefined) {
    // This run's window reached back to the backlog's start and sent all of it.
    await deps.ledger.clearBacklog(snapshot.backlogFrom);
  }
  if (stoppedAtDeadline || listingCut) {
    deps.logger.warn('planner stopped at its deadline', { enqueued, unsent: selected.length - next, listingCut });
  }
  return finish(deps.logger, {
    task,
    window: { from, to },
    enqueued,
    present: plan.present.logs + plan.present.audiences + plan.present.profiles,
    beyondRetention: plan.beyondRetention.length,
    alreadyQueued,
    parkedRecently,
    logHoursMissing,
    backlog: left.length,
    stoppedAtDeadline: stoppedAtDeadline || listingCut,
    skipped: plan.skipped,
    listFailures: plan.listFailures,
    exportConcerns: plan.exportConcerns,
    lagHours: Object.fromEntries(
      planLogs
        ? settings.apps.map((app) => [
            app,
            Math.floor((now - ((plan.newestLogHour.get(app) ?? from - HOUR_MS) + HOUR_MS)) / HOUR_MS),
          ])
        : [],
    ),
  });
}

/**
 * A lookup of a job's ledger state. Log hours are indexed by app and hour, so that checking 720,000 candidates
 * builds no id strings (formatting an id per hour costs seconds at that scale).
 */
function indexLedger(snapshot: LedgerSnapshot): (job: SyncJob) => 'queued' | 'parked' | undefined {
  const logHours = new Map<string, Map<number, 'queued' | 'parked'>>();
  const others = new Map<string, 'queued' | 'parked'>();
  const add = (id: string, state: 'queued' | 'parked') => {
    const match = /^log_hour\/([^/]+)\/(\d{4}-\d{2}-\d{2}T\d{2})$/.exec(id);
    const hour = match ? parseHour(match[2] as string) : undefined;
    if (!match || hour === undefined) {
      others.set(id, state);
      return;
    }
    const app = match[1] as string;
    const hours = logHours.get(app) ?? new Map<number, 'queued' | 'parked'>();
    hours.set(hour, state);
    logHours.set(app, hours);
  };
  for (const id of snapshot.parked) add(id, 'parked');
  for (const id of snapshot.queued) add(id, 'queued');
  return (job) => (job.kind === 'log_hour' ? logHours.get(job.appUuid)?.get(job.hour) : others.get(ledgerId(job)));
}

/** Claim a batch in the ledger at once; the jobs someone else already holds are dropped. */
async function claimAll(
  ledger: JobLedger,
  batch: readonly SyncJob[],
  now: number,
  claimId: string,
): Promise<SyncJob[]> {
  const results = await Promise.allSettled(
    batch.map((job) => ledger.claim(ledgerId(job), now + QUEUED_ENTRY_TTL_MS, now, claimId)),
  );
  const failure = results.find((result) => result.status === 'rejected');
  if (failure) {
    // Nothing of a failing batch is sent: undo the claims that did succeed.
    await Promise.allSettled(
      batch.filter((_, index) => isClaimed(results[index])).map((job) => ledger.release(ledgerId(job), claimId)),
    );
    throw failure.reason;
  }
  return batch.filter((_, index) => isClaimed(results[index]));
}

function isClaimed(result: PromiseSettledResult<boolean> | undefined): boolean {
  return result?.status === 'fulfilled' && result.value;
}

function emptySummary(task: PlannerTask, to: number): PlannerRunSummary {
  return {
    task,
    window: { from: to, to },
    enqueued: 0,
    present: 0,
    beyondRetention: 0,
    alreadyQueued: 0,
    parkedRecently: 0,
    logHoursMissing: 0,
    backlog: 0,
    stoppedAtDeadline: false,
    skipped: [],
    listFailures: [],
    lagHours: {},
    exportConcerns: [],
  };
}

function finish(logger: Logger, summary: PlannerRunSummary): PlannerRunSummary {
  // Not each app's lag: thousands of apps would not fit one log event (the Lambda planner logs one line per app).
  const { lagHours, ...rest } = summary;
  logger.info('planner run finished', {
    ...rest,
    skipped: summary.skipped.length,
    appCount: Object.keys(lagHours).length,
  });
  for (const failure of summary.listFailures) logger.error('export list failed', { ...failure });
  return summary;
}
