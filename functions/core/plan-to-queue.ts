import { DAY_MS, floorHour, HOUR_MS, LOG_RETENTION_MS } from './hours.js';
import type { Dataset } from './identifiers.js';
import { newJobMessage } from './job-message.js';
import { type Plan, type PlanRequest, planSync } from './planner.js';
import type { ExportSource, Logger, ObjectSink } from './ports.js';
import type { JobQueue } from './process-job.js';

/** What a scheduled planner run covers. */
export type PlannerTask = 'logs' | 'exports';

export interface PlannerSettings {
  readonly apps: readonly string[];
  readonly datasets: ReadonlySet<Dataset>;
  /** Hours after an hour ends before its file is expected. */
  readonly logLagHours: number;
  /** How far back the hourly run looks for missing hours (covers missed runs). */
  readonly lookbackHours: number;
  /** How far back the daily run looks for gaps (at most the 30-day retention). */
  readonly backfillDays: number;
  /** An audience or profile export not regenerated for this long is reported. */
  readonly staleExportHours?: number;
}

export interface PlannerRunSummary {
  readonly task: PlannerTask;
  readonly window: { readonly from: number; readonly to: number };
  readonly enqueued: number;
  readonly present: number;
  readonly beyondRetention: number;
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

/**
 * The planner's use case: the hourly `logs` task plans recent log hours; the daily `exports` task lists audiences
 * and profiles and looks for log gaps over the backfill window. Each missing file becomes one queue message.
 */
export async function planToQueue(
  task: PlannerTask,
  settings: PlannerSettings,
  deps: { source: ExportSource; sink: ObjectSink; queue: JobQueue; logger: Logger },
  now: number,
  limits: Pick<PlanRequest, 'signal' | 'listSignal' | 'listTimeLimitMs'> = {},
): Promise<PlannerRunSummary> {
  // The newest hour planned is the last one that ended at least `logLagHours` ago.
  const to = floorHour(now - settings.logLagHours * HOUR_MS);
  const lookbackMs =
    task === 'logs' ? settings.lookbackHours * HOUR_MS : Math.min(settings.backfillDays * DAY_MS, LOG_RETENTION_MS);
  const from = Math.max(to - lookbackMs, floorHour(now - LOG_RETENTION_MS) + HOUR_MS);
  const datasets = new Set<Dataset>();
  if (settings.datasets.has('logs')) datasets.add('logs');
  if (task === 'exports') {
    for (const dataset of ['audiences', 'profiles'] as const) if (settings.datasets.has(dataset)) datasets.add(dataset);
  }
  const plan = await planSync(
    { datasets, apps: settings.apps, from, to, now, staleExportHours: settings.staleExportHours, ...limits },
    deps,
  );
  await deps.queue.enqueue(plan.jobs.map((job) => newJobMessage(job, now)));
  const summary = {
    task,
    window: { from, to },
    enqueued: plan.jobs.length,
    present: plan.present.logs + plan.present.audiences + plan.present.profiles,
    beyondRetention: plan.beyondRetention.length,
    skipped: plan.skipped,
    listFailures: plan.listFailures,
    exportConcerns: plan.exportConcerns,
    lagHours: Object.fromEntries(
      settings.datasets.has('logs')
        ? settings.apps.map((app) => [
            app,
            Math.floor((now - ((plan.newestLogHour.get(app) ?? from - HOUR_MS) + HOUR_MS)) / HOUR_MS),
          ])
        : [],
    ),
  };
  deps.logger.info('planner run finished', { ...summary, skipped: summary.skipped.length });
  for (const failure of plan.listFailures) deps.logger.error('export list failed', { ...failure });
  return summary;
}
