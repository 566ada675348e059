import { LocalyticsSimulator, SIMULATOR_DEFAULT_CREDENTIALS } from '../simulator/server.js';
import type { CliIo } from './io.js';
import { parsePositiveInteger } from './options.js';

export interface SimulateCommandOptions {
  port?: string;
  rate?: string;
}

/** `localytics-sync simulate`: the API simulator in the foreground until interrupted. */
export async function simulateCommand(options: SimulateCommandOptions, io: CliIo): Promise<number> {
  const port = options.port === undefined ? 8080 : parsePositiveInteger('--port', options.port, 8080, 65_535);
  const rate = parsePositiveInteger('--rate', options.rate, 50, 100_000);
  const apiKey = io.env.LOCALYTICS_API_KEY;
  const apiSecret = io.env.LOCALYTICS_API_SECRET;
  const credentials = apiKey && apiSecret ? { apiKey, apiSecret } : SIMULATOR_DEFAULT_CREDENTIALS;
  const simulator = new LocalyticsSimulator({ port, ratePerMinute: rate, credentials });
  const url = await simulator.start();
  io.stdout(
    [
      `Localytics API simulator listening on ${url} (${rate} requests/minute per key)`,
      `  credentials: ${apiKey && apiSecret ? 'LOCALYTICS_API_KEY / LOCALYTICS_API_SECRET from the environment' : 'the simulator defaults (see README, "Simulator")'}`,
      `  apps: ${simulator.dataset.apps.join(',')}`,
      `  faults: POST ${url}/_admin/faults {"kind":"throttle","count":3}; request log: GET ${url}/_admin/requests`,
      `  try: localytics-sync sync --api-url ${url} --dest ./data --apps ${simulator.dataset.apps[0]}`,
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await simulator.stop();
  return 0;
}
