import { sleep } from './sleep.js';

/**
 * One request budget for every Localytics API call of a process.
 *
 * Two rules together: calls are spaced at least `60 s / rate` apart, and no more than `rate` calls are granted in
 * any 60 s window widened by `marginMs` (so that network jitter between our clock and Localytics' never makes the
 * server see `rate + 1` calls in its window). Slots are reserved synchronously, so any number of concurrent callers
 * share the budget fairly, first come first served. A `429` pauses the whole budget.
 */

export interface Clock {
  now(): number;
  /** Wait `ms`; return early (and clear the timer) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await sleep(ms, signal);
  },
};

export interface RequestBudgetOptions {
  /** Requests per minute. */
  readonly ratePerMinute: number;
  /** Extra width of the sliding window, ms. Default 250. */
  readonly marginMs?: number;
  readonly clock?: Clock;
}

const WINDOW_MS = 60_000;

/** The caller gave up waiting for a slot (its deadline came first); no request was sent. */
export class BudgetWaitAborted extends Error {
  override readonly name = 'BudgetWaitAborted';
  constructor() {
    super('stopped waiting for the request budget (deadline)');
  }
}

/** Sleep `ms`, or less if `signal` aborts first; true when it aborted. */
async function sleepUnlessAborted(clock: Clock, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (!signal) {
    await clock.sleep(ms);
    return false;
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<boolean>((resolve) => {
    onAbort = () => resolve(true);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([clock.sleep(ms, signal).then(() => signal.aborted), aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

export class RequestBudget {
  readonly ratePerMinute: number;
  private readonly intervalMs: number;
  /** Grants allowed in one window: a whole number (a process's share of a key's rate need not be one). */
  private readonly windowCapacity: number;
  private readonly marginMs: number;
  private readonly clock: Clock;
  /** Granted slot times, oldest first; at most `ratePerMinute` kept. */
  private readonly granted: number[] = [];
  private pausedUntil = 0;
  private grantedTotal = 0;

  constructor(options: RequestBudgetOptions) {
    if (!Number.isFinite(options.ratePerMinute) || options.ratePerMinute <= 0) {
      throw new RangeError(`ratePerMinute must be a positive number, got ${options.ratePerMinute}`);
    }
    this.ratePerMinute = options.ratePerMinute;
    this.intervalMs = WINDOW_MS / options.ratePerMinute;
    this.windowCapacity = Math.max(1, Math.floor(options.ratePerMinute));
    this.marginMs = options.marginMs ?? 250;
    this.clock = options.clock ?? systemClock;
  }

  /** Requests granted so far. */
  get used(): number {
    return this.grantedTotal;
  }

  /** Wait for a slot. Resolves when the caller may send one request. */
  /** Wait for a slot. With `signal`, stop waiting when it aborts (the slot is given back and `BudgetWaitAborted` thrown). */
  async acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (signal?.aborted) throw new BudgetWaitAborted();
      const slot = this.reserve();
      const wait = slot - this.clock.now();
      if (wait > 0) {
        const aborted = await sleepUnlessAborted(this.clock, wait, signal);
        if (aborted) {
          this.release(slot);
          throw new BudgetWaitAborted();
        }
      }
      // A 429 may have paused the budget while we slept: give the slot back and queue again.
      if (this.pausedUntil > slot) {
        this.release(slot);
        continue;
      }
      return;
    }
  }

  /** Stop granting until `ms` from now (a 429 answer). */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + ms);
  }

  private reserve(): number {
    const now = this.clock.now();
    const last = this.granted.at(-1);
    let slot = Math.max(now, this.pausedUntil, last === undefined ? 0 : last + this.intervalMs);
    if (this.granted.length >= this.windowCapacity) {
      const oldestInWindow = this.granted[this.granted.length - this.windowCapacity] as number;
      slot = Math.max(slot, oldestInWindow + WINDOW_MS + this.marginMs);
    }
    this.granted.push(slot);
    if (this.granted.length > this.windowCapacity * 2)
      this.granted.splice(0, this.granted.length - this.windowCapacity);
    this.grantedTotal++;
    return slot;
  }

  private release(slot: number): void {
    const index = this.granted.lastIndexOf(slot);
    if (index >= 0) this.granted.splice(index, 1);
    this.grantedTotal--;
  }
}
