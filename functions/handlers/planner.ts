import type { Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { ConfigError } from '../core/errors.js';
import { type PlannerTask, planToQueue } from '../core/plan-to-queue.js';
import '../core/schema.js';
import { type Runtime, runtime } from './runtime.js';
import { recordPlannerRun } from './telemetry.js';

/** `{}` is how the deployment trigger invokes the planner (it sends no payload): the daily task, backfill included. */
const eventSchema = z.object({ task: z.optional(z.enum(['logs', 'exports', 'topup'])) });

/** Stop sending this long before the function times out (a tenth of a short run), so every claim has its message. */
const DEADLINE_MARGIN_MS = 20_000;
/** Time kept for planning the log hours and enqueueing after the lists, at most (a quarter of the run if shorter). */
const ENQUEUE_RESERVE_MS = 60_000;

/**
 * EventBridge Scheduler target: `{"task":"logs"}` hourly, `{"task":"exports"}` daily, `{"task":"topup"}` every 15
 * minutes; `{}` once after a deployment. Enqueues one job per missing file, once.
 */
export function createPlannerHandler(getRuntime: () => Runtime, now: () => number = Date.now) {
  return async (event: unknown, context?: Pick<Context, 'getRemainingTimeInMillis'>) => {
    const parsed = eventSchema.safeParse(event);
    if (!parsed.success) throw new TypeError('planner event must be {"task": "logs" | "exports" | "topup"} or {}');
    const task: PlannerTask = parsed.data.task ?? 'exports';
    const rt = getRuntime();
    if (rt.config.datasets.has('logs') && rt.config.apps.length === 0) {
      throw new ConfigError('invalid function configuration: APPS_FILE must list the apps whose raw logs are synced');
    }
    const source = await rt.source();
    const requestsBefore = source.stats.apiRequests;
    // List retries (a throttled list waits for its Retry-After) stop in time: each list gets a third of the time
    // left before the reserve, so one failing list leaves time for the other and for the log hours.
    const remaining = context?.getRemainingTimeInMillis() ?? 5 * 60_000;
    const forLists = Math.floor(remaining - Math.min(ENQUEUE_RESERVE_MS, remaining / 4));
    const deadline = new AbortController();
    const margin = Math.min(DEADLINE_MARGIN_MS, remaining / 10);
    const timer = setTimeout(() => deadline.abort(), Math.max(0, remaining - margin));
    try {
      const summary = await planToQueue(
        task,
        rt.config,
        { source, sink: rt.sink, queue: rt.queue, ledger: rt.ledger, logger: rt.logger, signal: deadline.signal },
        now(),
        {
          // Only the lists: the log hours are planned after them, whatever the lists did.
          listSignal: AbortSignal.timeout(Math.max(0, forLists)),
          listTimeLimitMs: Math.max(1_000, Math.floor(forLists / 3)),
        },
      );
      recordPlannerRun(
        rt.metrics,
        rt.logger,
        summary,
        source.stats.apiRequests - requestsBefore,
        rt.config.lagAlarmHours,
      );
      return summary;
    } finally {
      clearTimeout(timer);
      rt.metrics.publishStoredMetrics();
    }
  };
}

export const handler = createPlannerHandler(() => runtime());
