import { LocalyticsSimulator, SIMULATOR_DEFAULT_CREDENTIALS } from '../simulator/server.js';
import type { CliIo } from './io.js';
import { parsePositiveInteger, UsageError } from './options.js';

export interface SimulateCommandOptions {
  port?: string;
  rate?: string;
  largeHour?: string[];
}

/** `--large-hour <app>/<YYYY-MM-DDTHH>=<bytes>`: serve that app-hour as a big gzip file (for memory and speed runs). */
export function parseLargeHours(values: readonly string[] = []): Record<string, number> {
  const largeHours: Record<string, number> = {};
  for (const value of values) {
    const match = /^([0-9a-f-]+)\/(\d{4}-\d{2}-\d{2}T\d{2})=(\d+)([KMG]i?B?)?$/i.exec(value);
    if (!match)
      throw new UsageError(`--large-hour "${value}" must look like <app>/<YYYY-MM-DDTHH>=<bytes> (e.g. ...=1GiB)`);
    const unit = (match[4] ?? '').toUpperCase()[0];
    const factor = unit === 'G' ? 1024 ** 3 : unit === 'M' ? 1024 ** 2 : unit === 'K' ? 1024 : 1;
    largeHours[`${match[1]}/${match[2]}`] = Number(match[3]) * factor;
  }
  return largeHours;
}

/** `localytics-sync simulate`: the API simulator in the foreground until interrupted. */
export async function simulateCommand(options: SimulateCommandOptions, io: CliIo): Promise<number> {
  const port = options.port === undefined ? 8080 : parsePositiveInteger('--port', options.port, 8080, 65_535);
  const rate = parsePositiveInteger('--rate', options.rate, 50, 100_000);
  const apiKey = io.env.LOCALYTICS_API_KEY;
  const apiSecret = io.env.LOCALYTICS_API_SECRET;
  const credentials = apiKey && apiSecret ? { apiKey, apiSecret } : SIMULATOR_DEFAULT_CREDENTIALS;
  const largeHours = parseLargeHours(options.largeHour);
  const simulator = new LocalyticsSimulator({ port, ratePerMinute: rate, credentials, largeHours });
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
