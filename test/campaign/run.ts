/**
 * `npm run campaign -- --seeds 200 [--first 1]`: runs many seeds of the fault campaign against s3rver and fauxqs
 * (started here, on random loopback ports) and prints a table. Exits 1 if any seed broke a promise; a failing seed
 * should become a regression test in test/campaign/campaign.int.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type SynthesizedDeployment, synthesizeDeployment } from '../support/deployment/synth.js';
import { startEmulators } from '../support/emulators.js';
import { passed, runSeed, type SeedResult } from './campaign.js';
import { campaignServers } from './servers.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};
const seeds = option('seeds', 20);
const first = option('first', 1);

const emulators = await startEmulators();
// The Lambda path runs the bundled handlers of the stack, synthesized once for the whole campaign.
const cdkOut = await mkdtemp(path.join(os.tmpdir(), 'cdk.out-lsync-campaign-'));
let synthesized: Promise<SynthesizedDeployment> | undefined;
const servers = campaignServers(emulators, () => {
  synthesized ??= synthesizeDeployment(cdkOut);
  return synthesized;
});

const results: SeedResult[] = [];
const started = Date.now();
try {
  for (let seed = first; seed < first + seeds; seed++) {
    const result = await runSeed(seed, servers);
    results.push(result);
    process.stderr.write(
      `seed ${seed} ${result.path.padEnd(6)} ${passed(result) ? 'ok  ' : 'FAIL'} rounds ${result.rounds} ${result.faults.join(',')}${passed(result) ? '' : ` -> ${result.problems.join('; ')}`}\n`,
    );
  }
} finally {
  await emulators.stop();
  await rm(cdkOut, { recursive: true, force: true });
}

const sum = (pick: (result: SeedResult) => number) => results.reduce((total, result) => total + pick(result), 0);
const faultCounts = new Map<string, number>();
for (const result of results)
  for (const fault of result.faults) faultCounts.set(fault, (faultCounts.get(fault) ?? 0) + 1);
const table = [
  `| seeds | CLI / Lambda | files expected | landed (+ awaiting next change set) | lost | reported lost (change sets) | duplicated | corrupted | orphaned uploads | leaks | unfinished without reason | failing seeds |`,
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
  `| ${results.length} | ${results.filter((r) => r.path === 'cli').length} / ${results.filter((r) => r.path === 'lambda').length} | ${sum((r) => r.expected)} | ${sum((r) => r.landed)} (+${sum((r) => r.missingButReported)}) | ${sum((r) => r.lost)} | ${sum((r) => r.reportedLost)} | ${sum((r) => r.duplicated)} | ${sum((r) => r.corrupted)} | ${sum((r) => r.orphanedUploads)} | ${sum((r) => r.leaks)} | ${sum((r) => r.unexplained)} | ${
    results
      .filter((r) => !passed(r))
      .map((r) => r.seed)
      .join(', ') || 'none'
  } |`,
  '',
  `Faults injected (seeds that had each): ${[...faultCounts]
    .sort()
    .map(([fault, count]) => `${fault} ${count}`)
    .join(', ')}.`,
  `Sync rounds to converge: max ${Math.max(...results.map((r) => r.rounds))}. Wall time ${Math.round((Date.now() - started) / 1000)} s.`,
];
process.stdout.write(`${table.join('\n')}\n`);
process.exitCode = results.every(passed) ? 0 : 1;
