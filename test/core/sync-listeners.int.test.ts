/**
 * Issue 18, item 1: a long `sync` printed `MaxListenersExceededWarning: 11 abort listeners added to [AbortSignal]`.
 * Listeners did not pile up over time (measured: they return to none between jobs); every wait of every job in
 * flight listened on the run's one Ctrl-C signal, two at a time while waiting for the request budget (the sleep and
 * the race that ends it), so a few jobs waiting at once passed Node's threshold of ten. Each job now listens through
 * a scope of its own: one listener per job on the run's signal, removed when the job ends.
 */
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { LocalDirSink } from '../../functions/adapters/local-dir-sink.js';
import { floorHour, HOUR_MS } from '../../functions/core/hours.js';
import { silentLogger } from '../../functions/core/ports.js';
import { runSync } from '../../functions/core/sync.js';
import { clientFor, useSimulator } from '../support/simulator.js';
import { tempDir } from '../support/temp.js';

const simulator = useSimulator();
const warnings: Error[] = [];
const onWarning = (warning: Error) => warnings.push(warning);
beforeEach(() => {
  warnings.length = 0;
  process.on('warning', onWarning);
});
afterEach(() => {
  process.off('warning', onWarning);
});

test('a sync whose jobs all wait for the request budget at once passes no leak threshold and leaves no listener', async () => {
  const interrupt = new AbortController();
  const to = floorHour(Date.now()) - 2 * HOUR_MS;
  const concurrency = 8;
  let most = 0;
  const sampler = setInterval(() => {
    most = Math.max(most, getEventListeners(interrupt.signal, 'abort').length);
  }, 2);
  try {
    // 600 requests a minute: every job waits for its slot, all of them at once.
    const summary = await runSync(
      {
        datasets: new Set(['logs']),
        apps: simulator.dataset.apps,
        from: to - 12 * HOUR_MS,
        to,
        now: Date.now(),
      },
      { source: clientFor(simulator, 600), sink: new LocalDirSink(await tempDir()), logger: silentLogger },
      { concurrency, signal: interrupt.signal },
    );
    expect(summary).toMatchObject({ copied: 24, failed: [] });
  } finally {
    clearInterval(sampler);
  }
  await new Promise((resolve) => setImmediate(resolve));
  expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
  // The run listens to Ctrl-C once, however many jobs wait (before: two per waiting job, 16 here).
  expect(most).toBe(1);
  expect(getEventListeners(interrupt.signal, 'abort')).toHaveLength(0);
});
