import { z } from 'zod';
import { planToQueue } from '../core/plan-to-queue.js';
import { runtime } from './runtime.js';

const eventSchema = z.object({ task: z.enum(['logs', 'exports']) });

/** EventBridge Scheduler target: `{"task":"logs"}` hourly, `{"task":"exports"}` daily. Enqueues one job per file. */
export const handler = async (event: unknown) => {
  const parsed = eventSchema.safeParse(event);
  if (!parsed.success) throw new TypeError('planner event must be {"task": "logs" | "exports"}');
  const rt = runtime();
  const { config } = rt;
  return planToQueue(
    parsed.data.task,
    config,
    { source: await rt.source(), sink: rt.sink, queue: rt.queue, logger: rt.logger },
    Date.now(),
  );
};
