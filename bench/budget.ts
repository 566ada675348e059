/**
 * Group 2: request-budget efficiency of a backfill through the real `sync` CLI against the simulator, with the
 * limit scaled up (the same rate on both sides): wall time against the floor N ÷ rate, 429s, requests per file.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { floorHour, formatHour, HOUR_MS } from '../functions/core/hours.js';
import { DEMO_APPS } from '../functions/simulator/dataset.js';
import { fixed, type GroupResult, infoRow, newGroup, ratio, table, targetRow } from './report.js';
import { API_ENV, CLI, simulatorRequests, startSimulator } from './services.js';
import { median, progress, timedOk } from './support.js';

export interface BudgetBenchOptions {
  /** Hours per app, ending with the current hour (never ready), so each app also has not-ready hours. */
  readonly hoursPerApp: number;
  readonly ratePerMinute: number;
  readonly runs: number;
  readonly tmpRoot: string;
}

interface BudgetRun {
  readonly planned: number;
  readonly copied: number;
  readonly pending: number;
  readonly failed: number;
  readonly clientRequests: number;
  readonly clientThrottled: number;
  readonly serverRequests: number;
  readonly server429: number;
  readonly seconds: number;
  readonly durationMs: number;
  readonly floorSeconds: number;
}

interface SyncJson {
  planned: number;
  copied: number;
  pending: string[];
  failed: unknown[];
  apiRequests: number;
  throttled: number;
  durationMs: number;
}

export async function benchBudget(options: BudgetBenchOptions): Promise<GroupResult> {
  const group = newGroup('2. Request budget');
  const apps = [...DEMO_APPS];
  const runs: BudgetRun[] = [];
  for (let rep = 0; rep < options.runs; rep++) {
    // A fresh simulator per run: its 60 s rate window must not carry the previous run's requests.
    const simulator = await startSimulator({
      ratePerMinute: options.ratePerMinute,
      tmpDir: path.join(options.tmpRoot, 'budget-simulator'),
    });
    const dest = await mkdtemp(path.join(options.tmpRoot, 'budget-dest-'));
    try {
      // `--to` is exclusive and at most the current hour: the window ends with the last complete hour.
      const to = floorHour(Date.now());
      const from = to - options.hoursPerApp * HOUR_MS;
      progress(`budget: run ${rep + 1}/${options.runs}, ${apps.length} apps × ${options.hoursPerApp} hours`);
      const run = await timedOk(
        process.execPath,
        [
          CLI,
          'sync',
          '--dest',
          dest,
          '--api-url',
          simulator.url,
          '--datasets',
          'logs',
          '--apps',
          apps.join(','),
          '--from',
          formatHour(from),
          '--to',
          formatHour(to),
          '--rate',
          String(options.ratePerMinute),
          '--json',
        ],
        API_ENV,
      );
      const summary = JSON.parse(run.stdout) as SyncJson;
      const api = (await simulatorRequests(simulator.url)).filter((request) => request.kind === 'api');
      runs.push({
        planned: summary.planned,
        copied: summary.copied,
        pending: summary.pending.length,
        failed: summary.failed.length,
        clientRequests: summary.apiRequests,
        clientThrottled: summary.throttled,
        serverRequests: api.length,
        server429: api.filter((request) => request.status === 429).length,
        seconds: run.seconds,
        durationMs: summary.durationMs,
        floorSeconds: (api.length * 60) / options.ratePerMinute,
      });
    } finally {
      await simulator.stop();
      await rm(dest, { recursive: true, force: true });
    }
  }

  const wallRatio = median(runs.map((run) => run.seconds / run.floorSeconds));
  const perFile = median(runs.map((run) => run.serverRequests / run.copied));
  const worst429 = Math.max(...runs.map((run) => Math.max(run.server429, run.clientThrottled)));
  const planned = median(runs.map((run) => run.planned));
  const copied = median(runs.map((run) => run.copied));
  const requests = median(runs.map((run) => run.serverRequests));
  group.rows.push(
    infoRow(
      'backfill size',
      `${planned} app-hours planned (${apps.length} apps × ${options.hoursPerApp} h), ${copied} files landed`,
    ),
    targetRow(
      `wall time ÷ floor (N ÷ ${options.ratePerMinute}/min)`,
      `${fixed(median(runs.map((run) => run.seconds)))} s vs ${fixed(median(runs.map((run) => run.floorSeconds)))} s for ${requests} requests = ${ratio(wallRatio)}`,
      wallRatio,
      '<=',
      1.1,
      '≤ 1.10×',
    ),
    targetRow('429 answers (worst run, server and client counts)', String(worst429), worst429, '==', 0, '0'),
    targetRow(
      'API requests per file landed (not-ready hours included)',
      `${requests} ÷ ${copied} = ${fixed(perFile, 3)}`,
      perFile,
      '<=',
      1.05,
      '≤ 1.05',
    ),
  );
  group.details.push(
    table(
      [
        'Run',
        'Planned',
        'Copied',
        'Pending (not ready)',
        'Failed',
        'API requests (server / client)',
        '429 (server / client)',
        'Wall s',
        'sync durationMs',
        'Floor s',
        'Wall ÷ floor',
      ],
      runs.map((run, index) => [
        String(index + 1),
        String(run.planned),
        String(run.copied),
        String(run.pending),
        String(run.failed),
        `${run.serverRequests} / ${run.clientRequests}`,
        `${run.server429} / ${run.clientThrottled}`,
        fixed(run.seconds, 2),
        String(run.durationMs),
        fixed(run.floorSeconds, 2),
        ratio(run.seconds / run.floorSeconds),
      ]),
    ),
  );
  group.notes.push(
    `Simulator \`--rate ${options.ratePerMinute}\` and \`sync --rate ${options.ratePerMinute}\` (default concurrency 4) into a fresh local directory; a fresh simulator per run, so no run inherits the previous one's rate window.`,
    'The window ends with the current hour, which the API answers 404 (not ready): those requests count against the budget and in requests per file.',
    'Floor = API requests counted by the simulator × 60 s ÷ rate; wall = the whole `sync` process (start-up and planning included). `--datasets logs` makes no list call.',
  );
  return group;
}
