import { expect, test } from 'vitest';
import { BudgetUnavailable, InProcessRequestBudget } from '../../functions/core/request-budget.js';
import { ManualClock } from '../support/manual-clock.js';
import { SteppedClock } from '../support/stepped-clock.js';

/** Largest number of grants inside any window (t - 60 s, t]. */
function maxPerMinute(times: number[]): number {
  let max = 0;
  for (const end of times) max = Math.max(max, times.filter((time) => time > end - 60_000 && time <= end).length);
  return max;
}

async function grantTimes(budget: InProcessRequestBudget, clock: ManualClock, callers: number, callsEach: number) {
  const times: number[] = [];
  const workers = Array.from({ length: callers }, async () => {
    for (let i = 0; i < callsEach; i++) {
      await budget.acquire();
      times.push(clock.now());
    }
  });
  const done = Promise.all(workers);
  await clock.runAll();
  await done;
  return times.sort((a, b) => a - b);
}

test('keeps 20 concurrent callers at or under the rate in every 60 s window', async () => {
  const clock = new ManualClock();
  const budget = new InProcessRequestBudget({ ratePerMinute: 50, clock });
  const times = await grantTimes(budget, clock, 20, 10);
  expect(times).toHaveLength(200);
  expect(maxPerMinute(times)).toBeLessThanOrEqual(50);
});

test('spaces requests evenly at 60 s / rate, so 200 calls take about 4 minutes at 50 per minute', async () => {
  const clock = new ManualClock();
  const budget = new InProcessRequestBudget({ ratePerMinute: 50, clock });
  const times = await grantTimes(budget, clock, 8, 25);
  const gaps = times.slice(1).map((time, i) => time - (times[i] as number));
  expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1200);
  // Four full windows, each widened by the 1 s margin.
  expect(times.at(-1)).toBeLessThan(200 * 1200 + 4 * 1_000);
});

test('a pause (after a 429) holds every caller until it ends', async () => {
  const clock = new ManualClock();
  const budget = new InProcessRequestBudget({ ratePerMinute: 600, clock });
  const times: number[] = [];
  await budget.acquire();
  await budget.pause(5_000);
  const waiting = Promise.all(
    [1, 2, 3].map(async () => {
      await budget.acquire();
      times.push(clock.now());
    }),
  );
  await clock.runAll();
  await waiting;
  expect(Math.min(...times)).toBeGreaterThanOrEqual(5_000);
  expect(budget.used).toBe(4);
});

test('rejects a rate that is not a positive whole number (requests per minute of a key)', () => {
  expect(() => new InProcessRequestBudget({ ratePerMinute: 0 })).toThrow(/positive whole number/);
  expect(() => new InProcessRequestBudget({ ratePerMinute: 50 / 3 })).toThrow(/positive whole number, got 16.6/);
});

test('a caller that could have a slot only after its notAfter is refused at once, and the slot stays free', async () => {
  const clock = new ManualClock();
  const budget = new InProcessRequestBudget({ ratePerMinute: 60, clock });
  await budget.acquire();
  const refused = await budget.acquire(undefined, { notAfter: 500 }).catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(BudgetUnavailable);
  expect((refused as BudgetUnavailable).retryAfterMs).toBe(1_000);
  const granted = budget.acquire(undefined, { notAfter: 1_000 });
  await clock.runAll();
  await granted;
  expect(clock.now()).toBe(1_000);
  expect(budget.used).toBe(2);
});

test('a caller whose deadline comes first stops waiting, gives its slot back, and sends nothing', async () => {
  const clock = new ManualClock();
  const budget = new InProcessRequestBudget({ ratePerMinute: 60, clock });
  await budget.pause(600_000);
  const deadline = new AbortController();
  const waiting = budget.acquire(deadline.signal).then(
    () => 'granted',
    (error: Error) => error.name,
  );
  deadline.abort();
  expect(await waiting).toBe('BudgetWaitAborted');
  expect(budget.used).toBe(0);
});

test('a caller that wakes later than the allowance after its slot (a stalled process) takes a new slot', async () => {
  // Issue 18 item 2: the in-process budget had no late-wake check. At rate 2, a caller due at 30 s that woke at
  // 30.8 s sent then, and the calls at 60.25 s and 90.25 s put three in one minute.
  const clock = new SteppedClock(0);
  const budget = new InProcessRequestBudget({ ratePerMinute: 2, clock });
  const sent: number[] = [];
  const send = async () => {
    await budget.acquire();
    sent.push(clock.now());
  };
  await send();
  const stalled = send();
  await new Promise((resolve) => setImmediate(resolve));
  clock.jump(30_800);
  await clock.runAll();
  await stalled;
  const later = [send(), send()];
  await clock.runAll();
  await Promise.all(later);
  expect(sent).toHaveLength(4);
  expect(maxPerMinute(sent)).toBeLessThanOrEqual(2);
});

test('a beforeSend that outlasts the allowance runs once, and its request leaves on a new slot, on time', async () => {
  const clock = new SteppedClock(0);
  const budget = new InProcessRequestBudget({ ratePerMinute: 2, clock });
  let prepared = 0;
  let sentAt: number | undefined;
  await clock.run([
    async () => {
      await budget.acquire(undefined, {
        beforeSend: async () => {
          prepared++;
          await clock.sleep(400);
        },
      });
      sentAt = clock.now();
    },
  ]);
  expect(prepared).toBe(1);
  // The first slot (0) was given back; the next one is the earliest after the claim: at 0.4 s, the window is empty.
  expect(sentAt).toBe(400);
  expect(budget.used).toBe(1);
});

test('an error from beforeSend rejects acquire as it is, and its slot is free for the next caller', async () => {
  const clock = new SteppedClock(0);
  const budget = new InProcessRequestBudget({ ratePerMinute: 2, clock });
  const refused = new Error('claim held by another run');
  await expect(
    budget.acquire(undefined, {
      beforeSend: async () => {
        throw refused;
      },
    }),
  ).rejects.toBe(refused);
  expect(budget.used).toBe(0);
  await budget.acquire();
  expect(clock.now()).toBe(0);
});

test('the window margin must hold the send allowance', () => {
  expect(() => new InProcessRequestBudget({ ratePerMinute: 2, marginMs: 250, sendAllowanceMs: 250 })).toThrow(
    /margin \(250 ms\) must be larger than the send allowance \(250 ms\)/,
  );
});
