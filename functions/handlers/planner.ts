import type { Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { planToQueue } from '../core/plan-to-queue.js';
import '../core/schema.js';
import { type Runtime, runtime } from './runtime.js';
import { recordPlannerRun } from './telemetry.js';

const eventSchema = z.object({ task: z.enum(['logs', 'exports']) });

/** Time kept for planning the log hours and enqueueing after the lists, at most (a quarter of the run if shorter). */
const ENQUEUE_RESERVE_MS = 60_000;

/** EventBridge Scheduler target: `{"task":"logs"}` hourly, `{"task":"exports"}` daily. Enqueues one job per file. */
export function createPlannerHandler(getRuntime: () => Runtime, now: () => number = Date.now) {
  return async (event: unknown, context?: Pick<Context, 'getRemainingTimeInMillis'>) => {
    const parsed = eventSchema.safeParse(event);
    if (!parsed.success) throw new TypeError('planner event must be {"task": "logs" | "exports"}');
    const rt = getRuntime();
    const source = await rt.source();
    const requestsBefore = source.stats.apiRequests;
    // List retries (a throttled list waits for its Retry-After) stop in time: each list gets a third of the time
    // left before the reserve, so one failing list leaves time for the other and for the log hours.
    const remaining = context?.getRemainingTimeInMillis() ?? 5 * 60_000;
    const forLists = Math.floor(remaining - Math.min(ENQUEUE_RESERVE_MS, remaining / 4));
    try {
      const summary = await planToQueue(
        parsed.data.task,
        rt.config,
        { source, sink: rt.sink, queue: rt.queue, logger: rt.logger },
        now(),
        {
          // Only the lists: the log hours are planned after them, whatever the lists did.
          listSignal: AbortSignal.timeout(Math.max(0, forLists)),
          listTimeLimitMs: Math.max(1_000, Math.floor(forLists / 3)),
        },
      );
      recordPlannerRun(rt.metrics, summary, source.stats.apiRequests - requestsBefore);
      return summary;
    } finally {
      rt.metrics.publishStoredMetrics();
    }
  };
}

export const handler = createPlannerHandler(() => runtime());
