import path from 'node:path';
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
  const shownAs = path.isAbsolute(dest) ? dest : `./${dest}`;
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
      `Syncing logs (${simulator.dataset.apps.length} apps, ${formatHour(from)} .. ${formatHour(to)}), audiences and profiles into ${shownAs}\n`,
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
    io.stdout(await describeLanding(new LocalDirSink(dest), shownAs));
    io.stdout(
      `\nNext: run "npm start" again (nothing is copied twice), or\n` +
        // The window the demo synced: status over any other window would show hours the demo never asked for.
        `  node dist/localytics-sync.mjs status --dest ${dest} --apps ${simulator.dataset.apps.join(',')} --from ${formatHour(from)} --to ${formatHour(to)}\n` +
        `  node dist/localytics-sync.mjs query events-by-name --dest ${dest} --app ${simulator.dataset.apps[0]}\n` +
        '      (the first of the saved queries the stack adds to Athena; `query` alone lists them: docs/analytics.md)\n',
    );
    return result.exitCode === EXIT_OK ? EXIT_OK : result.exitCode;
  } finally {
    await simulator.stop();
  }
}

const DATASET_FOLDERS = ['raw_logs', 'audiences', 'profiles', 'profile_changes'] as const;

/** What landed, one line per dataset (its JSON files and their Parquet twins), and one example key. */
async function describeLanding(sink: LocalDirSink, shownAs: string): Promise<string> {
  const totals = new Map<string, { files: number; bytes: number; parquetFiles: number; parquetBytes: number }>();
  let example: string | undefined;
  for await (const object of sink.list('')) {
    const parts = object.key.split('/');
    const parquet = parts[0] === 'parquet';
    const dataset = parts[parquet ? 1 : 0] ?? '';
    if (!(DATASET_FOLDERS as readonly string[]).includes(dataset)) continue;
    const entry = totals.get(dataset) ?? { files: 0, bytes: 0, parquetFiles: 0, parquetBytes: 0 };
    if (parquet) {
      entry.parquetFiles++;
      entry.parquetBytes += object.size;
    } else {
      entry.files++;
      entry.bytes += object.size;
      if (dataset === 'raw_logs') example ??= object.key;
    }
    totals.set(dataset, entry);
  }
  const lines = [
    `What landed in ${shownAs} (one object per file, Hive-style partitions; Parquet twins under parquet/):`,
  ];
  for (const dataset of DATASET_FOLDERS) {
    const entry = totals.get(dataset);
    if (!entry) continue;
    lines.push(
      `  ${dataset.padEnd(16)} ${String(entry.files).padStart(4)} file(s) ${formatBytes(entry.bytes).padStart(10)}` +
        `   Parquet ${String(entry.parquetFiles).padStart(4)} file(s) ${formatBytes(entry.parquetBytes).padStart(10)}`,
    );
  }
  if (example) lines.push(`  e.g. ${example}`);
  return `${lines.join('\n')}\n`;
}
