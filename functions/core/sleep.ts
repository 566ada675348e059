import { setTimeout as delay } from 'node:timers/promises';

/**
 * Wait `ms`, or less when `signal` aborts; true when it aborted. The timer is cleared on abort, so a pending wait
 * never keeps a stopping process alive.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return true;
  try {
    await delay(Math.max(0, ms), undefined, signal ? { signal } : undefined);
    return false;
  } catch (error) {
    if (signal?.aborted) return true;
    throw error;
  }
}
