import type { Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { type PlannerTask, planToQueue } from '../core/plan-to-queue.js';
import '../core/schema.js';
import { type Runtime, runtime } from './runtime.js';
import { recordPlannerRun } from './telemetry.js';

/** `{}` is how the deployment trigger invokes the planner (it sends no payload): the daily task, backfill included. */
const eventSchema = z.object({ task: z.optional(z.enum(['logs', 'exports', 'topup'])) });

/** Stop sending this long before the function times out, so that every claimed job has its message. */
const DEADLINE_MARGIN_MS = 20_000;

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
    const source = await rt.source();
    const requestsBefore = source.stats.apiRequests;
    const deadline = new AbortController();
    const timer = context
      ? setTimeout(() => deadline.abort(), Math.max(0, context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS))
      : undefined;
    try {
      const summary = await planToQueue(
        task,
        rt.config,
        { source, sink: rt.sink, queue: rt.queue, ledger: rt.ledger, logger: rt.logger, signal: deadline.signal },
        now(),
      );
      recordPlannerRun(rt.metrics, summary, source.stats.apiRequests - requestsBefore);
      return summary;
    } finally {
      clearTimeout(timer);
      rt.metrics.publishStoredMetrics();
    }
  };
}

export const handler = createPlannerHandler(() => runtime());
