import { afterAll, beforeAll } from 'vitest';
import { LocalyticsClient } from '../../functions/adapters/localytics-client.js';
import { InProcessRequestBudget } from '../../functions/core/request-budget.js';
import {
  LocalyticsSimulator,
  SIMULATOR_DEFAULT_CREDENTIALS,
  type SimulatorOptions,
} from '../../functions/simulator/server.js';

export const credentials = SIMULATOR_DEFAULT_CREDENTIALS;

export const credentialEnv = {
  LOCALYTICS_API_KEY: SIMULATOR_DEFAULT_CREDENTIALS.apiKey,
  LOCALYTICS_API_SECRET: SIMULATOR_DEFAULT_CREDENTIALS.apiSecret,
};

/** A simulator started before the file's tests and stopped after them. */
export function useSimulator(options: SimulatorOptions = {}): LocalyticsSimulator {
  const simulator = new LocalyticsSimulator({ ratePerMinute: 6000, ...options });
  beforeAll(() => simulator.start());
  afterAll(() => simulator.stop());
  return simulator;
}

export function clientFor(simulator: LocalyticsSimulator, ratePerMinute = 6000, random = () => 0): LocalyticsClient {
  return new LocalyticsClient({
    apiUrl: simulator.url,
    credentials,
    budget: new InProcessRequestBudget({ ratePerMinute }),
    random,
  });
}
