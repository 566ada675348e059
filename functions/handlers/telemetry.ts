import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { ConversionResult } from '../core/conversion-job.js';
import type { PlannerRunSummary } from '../core/plan-to-queue.js';
import type { Logger } from '../core/ports.js';
import type { ProcessResult } from '../core/process-job.js';

/** Metric names: stable camelCase, namespace `LocalyticsExportSync`, dimension `service` (added by Powertools). */
export const METRIC = {
  filesCopied: 'filesCopied',
  bytesCopied: 'bytesCopied',
  rowsCopied: 'rowsCopied',
  apiRequests: 'apiRequests',
  throttled: 'throttled',
  budgetDeferrals: 'budgetDeferrals',
  notReady: 'notReady',
  failures: 'failures',
  copyDuration: 'copyDuration',
  jobsEnqueued: 'jobsEnqueued',
  maxLagHours: 'maxLagHours',
  appsLagging: 'appsLagging',
  logHoursMissing: 'logHoursMissing',
  exportConcerns: 'exportConcerns',
  filesConverted: 'filesConverted',
  rowsConverted: 'rowsConverted',
  parquetBytes: 'parquetBytes',
  conversionDuration: 'conversionDuration',
  conversionWarnings: 'conversionWarnings',
  conversionFailures: 'conversionFailures',
} as const;

export const METRICS_NAMESPACE = 'LocalyticsExportSync';

/** What one copy job adds to the copier's metrics. */
export function recordJob(metrics: Metrics, result: ProcessResult, durationMs: number): void {
  if (result.action === 'done' && result.outcome.status === 'copied') {
    metrics.addMetric(METRIC.filesCopied, MetricUnit.Count, 1);
    metrics.addMetric(METRIC.bytesCopied, MetricUnit.Bytes, result.outcome.bytes);
    metrics.addMetric(METRIC.rowsCopied, MetricUnit.Count, result.outcome.rows);
    metrics.addMetric(METRIC.copyDuration, MetricUnit.Milliseconds, durationMs);
  }
  if (result.action === 'requeued' && result.reason === 'throttled')
    metrics.addMetric(METRIC.throttled, MetricUnit.Count, 1);
  if (result.action === 'requeued' && result.reason === 'budget')
    metrics.addMetric(METRIC.budgetDeferrals, MetricUnit.Count, 1);
  if (result.action === 'requeued' && result.reason === 'not_ready')
    metrics.addMetric(METRIC.notReady, MetricUnit.Count, 1);
  if (result.action === 'parked' || result.action === 'retry') metrics.addMetric(METRIC.failures, MetricUnit.Count, 1);
  metrics.addMetric(METRIC.apiRequests, MetricUnit.Count, result.apiRequests);
}

/**
 * What one planner run adds: jobs enqueued, failed lists, and the raw logs' lag over all apps: the worst
 * (`maxLagHours`, alarmed on) and how many apps lag more than `lagAlarmHours` (`appsLagging`). Per app, only a log line
 * (`app lag`, which the dashboard lists the most lagging apps from): a metric per app costs $0.30 a month each.
 */
export function recordPlannerRun(
  metrics: Metrics,
  logger: Logger,
  summary: PlannerRunSummary,
  apiRequests: number,
  lagAlarmHours: number,
): void {
  metrics.addMetric(METRIC.jobsEnqueued, MetricUnit.Count, summary.enqueued);
  // Only runs that listed the logs know how many hours are missing (a top-up without a backlog lists nothing).
  if (summary.window.from < summary.window.to)
    metrics.addMetric(METRIC.logHoursMissing, MetricUnit.Count, summary.logHoursMissing);
  metrics.addMetric(METRIC.apiRequests, MetricUnit.Count, apiRequests);
  if (summary.listFailures.length > 0)
    metrics.addMetric(METRIC.failures, MetricUnit.Count, summary.listFailures.length);
  // Only the daily run reads the export lists: the hourly one publishes nothing here (missing, not zero).
  if (summary.task === 'exports') {
    metrics.addMetric(METRIC.exportConcerns, MetricUnit.Count, summary.exportConcerns.length);
  }
  const lags = Object.entries(summary.lagHours);
  if (lags.length === 0) return;
  let worst = 0;
  let lagging = 0;
  for (const [app, lagHours] of lags) {
    logger.info('app lag', { app, lagHours });
    worst = Math.max(worst, lagHours);
    if (lagHours > lagAlarmHours) lagging++;
  }
  metrics.addMetric(METRIC.maxLagHours, MetricUnit.Count, worst);
  metrics.addMetric(METRIC.appsLagging, MetricUnit.Count, lagging);
}

/** What one Parquet conversion adds to the converter's metrics. */
export function recordConversion(metrics: Metrics, result: ConversionResult, durationMs: number): void {
  if (result.action === 'done' && result.outcome.status === 'converted') {
    metrics.addMetric(METRIC.filesConverted, MetricUnit.Count, 1);
    metrics.addMetric(METRIC.rowsConverted, MetricUnit.Count, result.outcome.rows);
    metrics.addMetric(METRIC.parquetBytes, MetricUnit.Bytes, result.outcome.bytes);
    metrics.addMetric(METRIC.conversionDuration, MetricUnit.Milliseconds, durationMs);
    metrics.addMetric(METRIC.conversionWarnings, MetricUnit.Count, result.outcome.warnings.length);
  }
  if (result.action === 'parked' || result.action === 'retry') {
    metrics.addMetric(METRIC.conversionFailures, MetricUnit.Count, 1);
  }
}
