import type { Clock } from '../../functions/core/request-budget.js';

/** A clock whose time moves only when the test says so; sleepers wake in time order. */
export class ManualClock implements Clock {
  protected time: number;
  protected sleepers: { until: number; wake: () => void }[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.sleepers.push({ until: this.time + Math.max(0, ms), wake: resolve });
    });
  }

  /** Run until no sleeper is left (or `limitMs` passed), waking each at its time and letting promises settle. */
  async runAll(limitMs = 3_600_000): Promise<void> {
    const end = this.time + limitMs;
    for (;;) {
      await flush();
      this.sleepers.sort((a, b) => a.until - b.until);
      const next = this.sleepers.shift();
      if (!next || next.until > end) {
        if (next) this.sleepers.unshift(next);
        return;
      }
      this.time = Math.max(this.time, next.until);
      next.wake();
    }
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}
