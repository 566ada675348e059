import { DEFAULT_API_URL, LocalyticsClient } from '../adapters/localytics-client.js';
import type { ConvertSummary } from '../core/convert-layer.js';
import { jobId } from '../core/jobs.js';
import { planSync } from '../core/planner.js';
import type { ObjectSink } from '../core/ports.js';
import { runSync, type SyncSummary } from '../core/sync.js';
import { previewSync, type SyncPreview } from '../core/sync-preview.js';
import { convertCopied, formatConvertSummary } from './convert-command.js';
import { type CliIo, EXIT_FAILURES, EXIT_OK } from './io.js';
import {
  parseApiUrl,
  parseApps,
  parseDatasets,
  parseDestination,
  parsePositiveInteger,
  parseWindow,
  UsageError,
} from './options.js';
import { formatBytes, formatSyncPreview, formatSyncSummary } from './report.js';
import { checkDestination, createLogger, createRequestBudget, createSink, loadCredentials } from './wiring.js';

export interface SyncCommandOptions {
  dest?: string;
  apiUrl?: string;
  datasets?: string;
  apps?: string;
  from?: string;
  to?: string;
  rate?: string;
  concurrency?: string;
  secretId?: string;
  allowFileHost?: string[];
  json?: boolean;
  verbose?: boolean;
  checkJson?: string;
  budgetTable?: string;
  /** Also convert each file copied to its Parquet twin, in the same run. */
  parquet?: boolean;
  /** Make only the list requests and print what a sync would copy, the requests it would make and their floor time. */
  dryRun?: boolean;
}

export interface SyncRunResult {
  readonly exitCode: number;
  readonly summary: SyncSummary;
  readonly apiRequests: number;
  readonly throttled: number;
  /** With `parquet`: the conversion of what was copied. */
  readonly parquet?: ConvertSummary;
}

/** `localytics-sync sync`: validate everything, then plan and copy. Usage errors throw `UsageError` (exit 2). */
export async function syncCommand(options: SyncCommandOptions, io: CliIo): Promise<number> {
  if (options.dryRun) {
    const preview = await previewSyncCommand(options, io);
    io.stdout(options.json ? `${JSON.stringify(preview, null, 2)}\n` : formatSyncPreview(preview));
    return preview.listFailures.length > 0 ? EXIT_FAILURES : EXIT_OK;
  }
  const result = await runSyncCommand(options, io);
  if (options.json) {
    io.stdout(
      `${JSON.stringify({ ...result.summary, apiRequests: result.apiRequests, throttled: result.throttled, parquet: result.parquet }, null, 2)}\n`,
    );
  } else {
    io.stdout(formatSyncSummary(result.summary, result));
    if (result.parquet) io.stdout(formatConvertSummary(result.parquet));
  }
  return result.exitCode;
}

/** Everything `sync` and `sync --dry-run` validate and open before their first API call (usage errors exit 2). */
async function prepareSync(options: SyncCommandOptions, io: CliIo, overrides: { sink?: ObjectSink } = {}) {
  const destination = parseDestination(options.dest);
  const datasets = parseDatasets(options.datasets);
  const apps = parseApps(options.apps ?? io.env.LOCALYTICS_APPS);
  if (datasets.has('logs') && apps.length === 0) {
    throw new UsageError('--apps is required for the logs dataset (the API cannot list apps); or set LOCALYTICS_APPS');
  }
  const window = parseWindow(options.from, options.to, io.now());
  const rate = parsePositiveInteger('--rate', options.rate, 50, 100_000);
  const concurrency = parsePositiveInteger('--concurrency', options.concurrency, 4, 64);
  const apiUrl = parseApiUrl(options.apiUrl ?? io.env.LOCALYTICS_API_URL, DEFAULT_API_URL);
  const extraHosts = (options.allowFileHost ?? [])
    .flatMap((value) => value.split(','))
    .map((host) => host.trim())
    .filter(Boolean);
  const checkJson = options.checkJson ?? 'plain';
  if (checkJson !== 'plain' && checkJson !== 'all' && checkJson !== 'off') {
    throw new UsageError(`--check-json "${checkJson}" must be plain, all or off`);
  }
  const credentials = await loadCredentials(options.secretId, io);
  const sink = overrides.sink ?? createSink(destination, io);
  await checkDestination(sink, { writes: true });

  const logger = createLogger(Boolean(options.verbose), io);
  const client = new LocalyticsClient({
    apiUrl,
    credentials,
    budget: await createRequestBudget(options.budgetTable, rate, credentials.apiKey, logger),
    locationPolicy: { extraHosts },
  });
  const request = { destination, datasets, apps, window, rate, concurrency };
  return { request, sink, client, logger, checkJson } as const;
}

/** `sync --dry-run`: the plan of the window, made with the list requests only; nothing is written or removed. */
export async function previewSyncCommand(options: SyncCommandOptions, io: CliIo): Promise<SyncPreview> {
  const { request, sink, client, logger } = await prepareSync(options, io);
  const interrupt = new AbortController();
  const stopListening = io.onInterrupt?.(() => interrupt.abort());
  try {
    const { datasets, apps, window } = request;
    const plan = await planSync(
      { datasets, apps, from: window.from, to: window.to, now: io.now(), signal: interrupt.signal, readOnly: true },
      { source: client, sink, logger },
    );
    return previewSync(plan, {
      destination: sink.location,
      from: window.from,
      to: window.to,
      rate: request.rate,
      listRequests: client.stats.apiRequests,
    });
  } finally {
    stopListening?.();
    client.close();
  }
}

export async function runSyncCommand(
  options: SyncCommandOptions,
  io: CliIo,
  overrides: { sink?: ObjectSink } = {},
): Promise<SyncRunResult> {
  const { request, sink, client, logger, checkJson } = await prepareSync(options, io, overrides);
  const { destination, datasets, apps, window, concurrency } = request;
  const progress = io.interactive && !options.json ? createProgress(io) : undefined;
  // Ctrl-C: stop starting jobs and abort the ones in flight (their uploads are aborted, temp files removed).
  const interrupt = new AbortController();
  const stopListening = io.onInterrupt?.(() => {
    io.stderr('\ninterrupted: aborting copies in flight (nothing partial is left behind)...\n');
    interrupt.abort();
  });
  const copiedKeys: string[] = [];
  try {
    const summary = await runSync(
      { datasets, apps, from: window.from, to: window.to, now: io.now() },
      { source: client, sink, logger },
      {
        concurrency,
        signal: interrupt.signal,
        copyOptions: { checkJson },
        onPlanned: (plan) => progress?.planned(plan.jobs.length),
        onReport: (report) => {
          if (options.parquet && (report.outcome.status === 'copied' || report.outcome.status === 'present')) {
            copiedKeys.push(report.outcome.key);
          }
          progress?.report(
            jobId(report.job),
            report.outcome.status,
            'bytes' in report.outcome ? report.outcome.bytes : 0,
          );
        },
      },
    );
    progress?.done();
    const parquet = options.parquet
      ? await convertCopied(copiedKeys, destination, sink, logger, io, interrupt.signal)
      : undefined;
    const parquetFailed = parquet !== undefined && (parquet.failed.length > 0 || parquet.interrupted > 0);
    return {
      exitCode: summary.failed.length > 0 || parquetFailed ? EXIT_FAILURES : EXIT_OK,
      summary,
      parquet,
      apiRequests: client.stats.apiRequests,
      throttled: client.stats.throttled,
    };
  } finally {
    stopListening?.();
    client.close();
  }
}

/** One self-rewriting status line on a terminal. */
function createProgress(io: CliIo) {
  let total = 0;
  let finished = 0;
  let bytes = 0;
  const counts: Record<string, number> = {};
  const render = (last: string) => {
    const parts = Object.entries(counts).map(([status, count]) => `${count} ${status}`);
    io.stderr(`\r\x1b[2K[${finished}/${total}] ${formatBytes(bytes)} ${parts.join(', ')}  ${last}`.slice(0, 200));
  };
  return {
    planned(jobs: number) {
      total = jobs;
      render('planned');
    },
    report(job: string, status: string, copiedBytes: number) {
      finished++;
      bytes += copiedBytes;
      counts[status] = (counts[status] ?? 0) + 1;
      render(job);
    },
    done() {
      io.stderr('\r\x1b[2K');
    },
  };
}
