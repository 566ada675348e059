import { LocalDirSink } from '../adapters/local-dir-sink.js';
import { floorHour, formatHour, HOUR_MS } from '../core/hours.js';
import { LocalyticsSimulator, SIMULATOR_DEFAULT_CREDENTIALS } from '../simulator/server.js';
import { type CliIo, EXIT_OK } from './io.js';
import { formatBytes } from './report.js';
import { runSyncCommand } from './sync-command.js';

export interface DemoCommandOptions {
  dest?: string;
  hours?: string;
}

const DEMO_RATE = 600;

/**
 * `localytics-sync demo`: start the simulator, sync all three datasets into a local folder (with the Parquet
 * layer), show what landed.
 * No AWS account and no Localytics key needed. The simulated key allows 600 requests/minute so that the demo takes
 * seconds; against the real API the default budget is 50.
 */
export async function demoCommand(options: DemoCommandOptions, io: CliIo): Promise<number> {
  const dest = options.dest ?? 'localytics-demo';
  const hours = Math.max(1, Math.min(48, Number(options.hours ?? 12)));
  // The simulator keeps the CLI's clock, so that a demo at a given time always serves the same data.
  const simulator = new LocalyticsSimulator({
    ratePerMinute: DEMO_RATE,
    credentials: SIMULATOR_DEFAULT_CREDENTIALS,
    now: io.now,
  });
  const url = await simulator.start();
  io.stdout(`Started the Localytics API simulator on ${url}\n`);
  try {
    const to = floorHour(io.now());
    const from = to - hours * HOUR_MS;
    io.stdout(
      `Syncing logs (${simulator.dataset.apps.length} apps, ${formatHour(from)} .. ${formatHour(to)}), audiences and profiles into ./${dest}\n`,
    );
    const result = await runSyncCommand(
      {
        dest,
        apiUrl: url,
        apps: simulator.dataset.apps.join(','),
        from: formatHour(from),
        to: formatHour(to),
        rate: String(DEMO_RATE),
        parquet: true,
      },
      {
        ...io,
        env: {
          ...io.env,
          LOCALYTICS_API_KEY: SIMULATOR_DEFAULT_CREDENTIALS.apiKey,
          LOCALYTICS_API_SECRET: SIMULATOR_DEFAULT_CREDENTIALS.apiSecret,
        },
      },
    );
    const { summary } = result;
    io.stdout(
      `\nDone in ${(summary.durationMs / 1000).toFixed(1)} s: ${summary.copied} file(s) copied (${formatBytes(summary.bytes)}, ${summary.rows} rows), ` +
        `${summary.present} already present, ${summary.pending.length} hour(s) pending (not ready yet), ${summary.failed.length} failed; ` +
        `${result.apiRequests} API requests.\n`,
    );
    if (result.parquet) {
      io.stdout(
        `Parquet: ${result.parquet.converted} file(s) converted (${formatBytes(result.parquet.jsonBytes)} of gzip JSON -> ` +
          `${formatBytes(result.parquet.parquetBytes)} of typed Parquet, ${result.parquet.failed.length} failed), ` +
          `${result.parquet.present} already converted.\n`,
      );
    }
    io.stdout('\n');
    io.stdout(await describeTree(new LocalDirSink(dest)));
    io.stdout(
      `\nNext: run "npm start" again (nothing is copied twice), or\n` +
        `  node dist/localytics-sync.mjs status --dest ${dest} --apps ${simulator.dataset.apps.join(',')}\n` +
        `  node dist/localytics-sync.mjs query events-by-name --dest ${dest} --app ${simulator.dataset.apps[0]}\n` +
        '      (the first of the saved queries the stack adds to Athena; `query` alone lists them: docs/analytics.md)\n',
    );
    return result.exitCode === EXIT_OK ? EXIT_OK : result.exitCode;
  } finally {
    await simulator.stop();
  }
}

/** Group landed files by partition folder: one line per dataset export with its file count and one example. */
async function describeTree(sink: LocalDirSink): Promise<string> {
  const groups = new Map<string, { files: number; bytes: number; example: string }>();
  for await (const object of sink.list('')) {
    if (object.key.startsWith('_')) continue;
    const parts = object.key.split('/');
    const layer = parts[0] === 'parquet' ? 1 : 0;
    const dataset = parts[layer];
    const group = parts.slice(0, layer + (dataset === 'raw_logs' ? 2 : dataset === 'audiences' ? 3 : 2)).join('/');
    const entry = groups.get(group) ?? { files: 0, bytes: 0, example: object.key };
    entry.files++;
    entry.bytes += object.size;
    groups.set(group, entry);
  }
  const lines = [`What landed in ${sink.location}:`];
  for (const [group, entry] of groups) {
    lines.push(`  ${group}/  ${entry.files} file(s), ${formatBytes(entry.bytes)}`);
    lines.push(`      e.g. ${entry.example}`);
  }
  return `${lines.join('\n')}\n`;
}
