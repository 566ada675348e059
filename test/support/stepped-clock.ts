import { ManualClock } from './manual-clock.js';

/**
 * Virtual time that advances only while every participant sleeps: real I/O (a DynamoDB call) takes no virtual time,
 * so tests of timing rules do not depend on the machine's load. `run` drives a set of async participants to the end.
 */
export class SteppedClock extends ManualClock {
  constructor(start = 1_800_000_000_000) {
    super(start);
  }

  /** Move time forward by `ms` at once (a clock jump, or a frozen process seen from outside). */
  jump(ms: number): void {
    this.time += ms;
  }

  /**
   * Run `participants` to completion, advancing time to the earliest sleeper whenever all of them sleep. `blocked`
   * counts participants waiting on another one (not on the clock, not on I/O), e.g. callers waiting inside a request
   * budget for a slot another caller holds: they count as asleep.
   */
  async run<T>(participants: (() => Promise<T>)[], options: { blocked?: () => number } = {}): Promise<T[]> {
    let running = participants.length;
    const results = Promise.all(
      participants.map(async (participant) => {
        try {
          return await participant();
        } finally {
          running--;
        }
      }),
    );
    let failed = false;
    results.catch(() => {
      failed = true;
    });
    while (running > 0 && !failed) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (running === 0 || this.sleepers.length === 0) continue;
      if (this.sleepers.length + (options.blocked?.() ?? 0) < running) continue;
      this.sleepers.sort((a, b) => a.until - b.until);
      const next = this.sleepers.shift() as { until: number; wake: () => void };
      this.time = Math.max(this.time, next.until);
      next.wake();
    }
    return results;
  }
}
