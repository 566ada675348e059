import { Command, CommanderError, Option } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { ConfigError } from '../core/errors.js';
import { describeError } from '../core/redact.js';
import { convertCommand } from './convert-command.js';
import { demoCommand } from './demo-command.js';
import { type CliIo, EXIT_FAILURES, EXIT_USAGE } from './io.js';
import { queryCommand } from './query-command.js';
import { simulateCommand } from './simulate-command.js';
import { statusCommand } from './status-command.js';
import { syncCommand } from './sync-command.js';

/** Run the CLI; resolves to the exit code. Never calls `process.exit` itself. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const run = (action: () => Promise<number>) => async () => {
    exitCode = await action();
  };
  const program = new Command('localytics-sync')
    .description('Copy Localytics exports (raw logs, audiences, profiles) into S3 or a local directory.')
    .version(`localytics-sync ${packageJson.version}`, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run with --help for usage)');

  const window = (command: Command) =>
    command
      .requiredOption('--dest <destination>', 's3://bucket/prefix or a local directory')
      .option('--apps <uuids>', 'comma-separated Localytics app IDs (default: $LOCALYTICS_APPS)')
      .option('--from <YYYY-MM-DDTHH>', 'first UTC hour, inclusive (default: 24 hours before --to)')
      .option('--to <YYYY-MM-DDTHH>', 'UTC hour to stop before, exclusive (default: the current hour)')
      .option('--json', 'print a machine-readable summary');

  window(
    program.command('sync').description('copy everything planned in the window that is not at the destination yet'),
  )
    .option('--api-url <url>', 'Localytics API base URL (default: https://api.localytics.com or $LOCALYTICS_API_URL)')
    .option('--datasets <list>', 'any of logs,audiences,profiles (default: all)')
    .option('--rate <n>', 'API requests per minute for this key (default: 50)')
    .option('--concurrency <n>', 'files copied at once (default: 4)')
    .option(
      '--budget-table <name>',
      "share a deployment's request budget: its DynamoDB table (standard AWS SDK environment)",
    )
    .option('--secret-id <id>', 'read {"apiKey","apiSecret"} from this Secrets Manager secret')
    .addOption(
      new Option('--allow-file-host <host...>', 'also download from these hosts (besides Amazon S3 and the API host)'),
    )
    .option(
      '--check-json <which>',
      'parse rows to count malformed JSON lines: plain (audiences, profiles), all, off',
      'plain',
    )
    .option('--parquet', 'also write the typed Parquet copy of each file copied (parquet/<table>/...)')
    .option('--verbose', 'structured logs on stderr')
    .option('--dry-run', 'make only the list requests; print the files, API requests and floor time a sync would take')
    .action(async (options) => {
      await run(() => syncCommand(options, io))();
    });

  program
    .command('convert')
    .description('build the Parquet layer (parquet/<table>/...) for the JSON files already at the destination')
    .requiredOption('--dest <destination>', 's3://bucket/prefix or a local directory')
    .option('--rebuild', 'convert every file again, replacing its Parquet file (after a column was added)')
    .option('--json', 'print a machine-readable summary')
    .option('--verbose', 'structured logs on stderr')
    .action(async (options) => {
      await run(() => convertCommand(options, io))();
    });

  window(
    program.command('status').description('what the destination holds: present, pending and missing hours'),
  ).action(async (options) => {
    await run(() => statusCommand(options, io))();
  });

  program
    .command('simulate')
    .description('run the Localytics API simulator')
    .option('--port <n>', 'port to listen on (default: 8080)')
    .option('--rate <n>', 'requests per minute per key before 429 (default: 50)')
    .option(
      '--large-hour <spec...>',
      'serve <app>/<YYYY-MM-DDTHH>=<size, e.g. 1GiB> as a big file (memory and speed runs)',
    )
    .action(async (options) => {
      await run(() => simulateCommand(options, io))();
    });

  program
    .command('query')
    .description(
      'run a saved query (the stack saves the same ones in Athena) with DuckDB over a local destination; without a name, list them',
    )
    .argument('[name]', 'events-by-name, event-trend, devices-per-day, sessions-per-day or profile-attribute')
    .option('--dest <dir>', 'a local destination directory (e.g. localytics-demo)')
    .option('--app <uuid>', 'the app (default: the only app at the destination)')
    .option('--from <YYYY-MM-DD>', 'first UTC day (default: 29 days before --to)')
    .option('--to <YYYY-MM-DD>', 'last UTC day (default: today)')
    .option('--event <name>', 'event name (event-trend)')
    .option('--profiledb <id>', 'profile database (default: the only one at the destination)')
    .option('--day <YYYY-MM-DD>', 'profile snapshot day (default: the newest)')
    .option('--attribute <key>', 'profile attribute key, e.g. favorite_place (profile-attribute)')
    .option('--parquet', 'read the Parquet layer instead of the JSON files')
    .option('--json', 'print the rows as JSON')
    .action(async (name: string | undefined, options) => {
      await run(() => queryCommand(name, options, io))();
    });

  program
    .command('demo')
    .description('start the simulator and sync all three datasets into ./localytics-demo')
    .option('--dest <dir>', 'local directory (default: localytics-demo)')
    .option('--hours <n>', 'log hours to sync (default: 12)')
    .action(async (options) => {
      await run(() => demoCommand(options, io))();
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end with code 0; anything else commander rejects is a usage error.
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (error instanceof ConfigError) {
      io.stderr(`error: ${describeError(error)}\n`);
      return EXIT_USAGE;
    }
    io.stderr(`error: ${describeError(error)}\n`);
    return EXIT_FAILURES;
  }
}
