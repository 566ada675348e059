/**
 * The benchmark suite: copy throughput and memory, request-budget efficiency, Lambda cold start, planner scale and
 * the deployment's backfill through the shared request budget, Parquet conversion, the saved queries' bytes read.
 * Prints a markdown report and writes it to bench/RESULTS.md (a run with --only or --quick writes
 * bench/RESULTS.partial.md instead, so that it never replaces the full results).
 *
 * Usage: npm run bench [-- options] (builds the CLI first), or npx tsx bench/run.ts [options] with options
 * [--only copy,budget,cold,planner,lambda-budget,convert,analytics] [--quick] [--runs N] [--out FILE]. Needs the built CLI
 * (dist/localytics-sync.mjs), curl, rclone (Debian package `rclone`) and /usr/bin/time. Takes about 10 minutes.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchAnalytics } from './analytics.js';
import { benchBudget } from './budget.js';
import { bundleChildren } from './children.js';
import { benchCold } from './cold.js';
import { benchConvert } from './convert.js';
import { benchCopy } from './copy.js';
import { benchLambdaBudget } from './lambda-budget.js';
import { describeMachine } from './machine.js';
import { benchPlanner } from './planner.js';
import { type GroupResult, newGroup, renderResults } from './report.js';
import { CLI, REPO } from './services.js';
import { progress } from './support.js';

const GROUPS = ['copy', 'budget', 'cold', 'planner', 'lambda-budget', 'convert', 'analytics'] as const;
type GroupName = (typeof GROUPS)[number];
/** Groups that run the built CLI; the others bundle what they measure from the working tree when they run. */
const USES_CLI: ReadonlySet<GroupName> = new Set(['copy', 'budget', 'lambda-budget', 'convert', 'analytics']);

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});

const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 3) throw new Error('--runs must be a whole number of at least 3');
const selected = (values.only ?? GROUPS.join(',')).split(',').map((name) => name.trim());
for (const name of selected) {
  if (!(GROUPS as readonly string[]).includes(name)) throw new Error(`--only: unknown group "${name}"`);
}
const only = new Set(selected as GroupName[]);
const quick = values.quick;
const complete = !quick && only.size === GROUPS.length;
const out = path.resolve(values.out ?? path.join(REPO, 'bench', complete ? 'RESULTS.md' : 'RESULTS.partial.md'));
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build the CLI first (npm run build)`);
if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time is missing (Debian package `time`)');
for (const tool of only.has('copy') ? ['curl', 'rclone'] : []) {
  if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error) {
    throw new Error(`the copy group needs ${tool} (apt-get install -y ${tool})`);
  }
}

const sizes = {
  copyMiB: quick ? [16, 64] : [100, 1024],
  budgetHoursPerApp: quick ? 16 : 152,
  plannerApps: quick ? 50 : 1000,
  plannerDenseApps: quick ? 10 : 100,
  // 2 apps × (14 × 24 − 1) hours = 670 app-hours, about 2¼ minutes at the bench's 300/min (quick: 94).
  lambdaBackfillDays: quick ? 2 : 14,
  convertHourJsonBytes: quick ? 100e6 : 2.2e9,
  convertDayRowsPerHour: quick ? 2_000 : 10_000,
};

/** Build time and hash of the CLI bundle, to tie the figures to a build. */
function cliIdentity(): string {
  const built = statSync(CLI).mtime.toISOString().slice(0, 16).replace('T', ' ');
  return `built ${built} UTC (sha256 ${createHash('sha256').update(readFileSync(CLI)).digest('hex').slice(0, 12)}…)`;
}
/** The CLI build each CLI group saw, and the groups during which it was rebuilt. */
const cliSeen = new Set<string>();
const rebuiltDuring: GroupName[] = [];

/** Source files changed after the CLI bundle was built (the figures would not be theirs). */
function sourcesNewerThanCli(): string[] {
  const built = statSync(CLI).mtimeMs;
  return ['functions', 'bin'].flatMap((dir) =>
    readdirSync(path.join(REPO, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && statSync(path.join(REPO, dir, file)).mtimeMs > built)
      .map((file) => `${dir}/${file}`),
  );
}
const stale = sourcesNewerThanCli();
if (stale.length > 0) progress(`warning: ${stale.length} source file(s) changed after dist was built: npm run build`);

const tmpRoot = await mkdtemp(path.join(os.tmpdir(), 'lsync-bench-'));
const cleanUp = () => rmSync(tmpRoot, { recursive: true, force: true });
process.once('SIGINT', () => {
  cleanUp();
  process.exit(130);
});

const started = Date.now();
const loadAtStart = os.loadavg()[0] ?? Number.NaN;
const results: GroupResult[] = [];
let failed = false;
try {
  const children = await bundleChildren(path.join(tmpRoot, 'children'));
  const benches: Record<GroupName, () => Promise<GroupResult>> = {
    copy: () => benchCopy({ sizesMiB: sizes.copyMiB, runs, tmpRoot, children }),
    budget: () => benchBudget({ hoursPerApp: sizes.budgetHoursPerApp, ratePerMinute: 600, runs, tmpRoot }),
    cold: () => benchCold({ runs: runs * 3, tmpRoot }),
    planner: () =>
      benchPlanner({ apps: sizes.plannerApps, denseApps: sizes.plannerDenseApps, runs, tmpRoot, children }),
    'lambda-budget': () =>
      benchLambdaBudget({
        backfillDays: sizes.lambdaBackfillDays,
        ratePerMinute: 300,
        concurrencies: [2, 10],
        runs,
        tmpRoot,
      }),
    convert: () =>
      benchConvert({
        hourJsonBytes: sizes.convertHourJsonBytes,
        dayRowsPerHour: sizes.convertDayRowsPerHour,
        runs,
        tmpRoot,
      }),
    analytics: () => benchAnalytics({ dayRowsPerHour: sizes.convertDayRowsPerHour, tmpRoot }),
  };
  for (const name of GROUPS.filter((group) => only.has(group))) {
    const groupStarted = Date.now();
    const cliBefore = USES_CLI.has(name) ? cliIdentity() : undefined;
    progress(`${name}: starting`);
    try {
      results.push(await benches[name]());
    } catch (error) {
      failed = true;
      const group = newGroup(name);
      group.rows.push({
        measurement: 'group failed',
        value: String((error as Error).message).split('\n')[0] ?? 'error',
        target: 'completes',
        verdict: 'not met',
      });
      group.notes.push(`Error: ${String((error as Error).stack ?? error)}`);
      results.push(group);
    }
    if (cliBefore) {
      cliSeen.add(cliBefore);
      if (cliIdentity() !== cliBefore) rebuiltDuring.push(name);
    }
    progress(`${name}: done in ${((Date.now() - groupStarted) / 1000).toFixed(0)} s`);
  }
} finally {
  cleanUp();
}

const minutes = (Date.now() - started) / 60_000;
const cliNote =
  cliSeen.size === 0
    ? 'No group ran the built CLI.'
    : `The CLI measured (copy, request budget; its simulator for the deployment backfill) is dist/localytics-sync.mjs ${[...cliSeen].join(', then ')}.` +
      `${cliSeen.size > 1 || rebuiltDuring.length > 0 ? ` **Warning: dist was rebuilt during the run${rebuiltDuring.length ? ` (while ${rebuiltDuring.join(', ')} ran)` : ''}; rerun.**` : ''}` +
      `${stale.length === 0 ? '' : ` **Warning: it is older than ${stale.length} source file(s) (${stale.slice(0, 3).join(', ')}…): rebuild and rerun.**`}`;
const header = [
  '# Benchmark results',
  '',
  `Written by \`bench/run.ts\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC` +
    `${quick ? ' with --quick (smaller sizes: not the targets’ sizes)' : ''}` +
    `${complete ? '' : `, groups: ${[...only].join(', ')}`}; ${runs} runs per figure` +
    ` (cold start: ${runs * 3}), every figure a median; the whole run took ${minutes.toFixed(1)} min.`,
  '',
  `${cliNote} Cold start, planner scale and the deployment backfill bundle the working tree when they run.`,
  '',
  `1-minute load average at the start / end: ${loadAtStart.toFixed(2)} / ${(os.loadavg()[0] ?? Number.NaN).toFixed(2)} (other work on this shared machine adds noise).`,
  '',
  '## Machine',
  '',
  ...(await describeMachine()),
];
const markdown = renderResults(header, results);
await writeFile(out, markdown);
process.stdout.write(markdown);
progress(`written to ${path.relative(process.cwd(), out) || out}`);
if (failed) process.exitCode = 1;
