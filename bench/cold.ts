/**
 * Group 3: cold start of the two Lambda handlers, bundled the way `lib/sync-function.ts` has CDK bundle them
 * (esbuild, minified ESM for node22, source map, the AWS SDK bundled), and with the SDK left external as if the
 * runtime's copy were used: bundle sizes and the time to import each handler module in a fresh Node process.
 */
import { execFile } from 'node:child_process';
import { mkdir, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { fixed, type GroupResult, infoRow, newGroup, table, targetRow } from './report.js';
import { REPO } from './services.js';
import { median, progress, rotate } from './support.js';

const run = promisify(execFile);

const HANDLERS = ['planner', 'copier'] as const;
type Handler = (typeof HANDLERS)[number];
const VARIANTS = ['bundled', 'sdk-external'] as const;
type Variant = (typeof VARIANTS)[number];
const MODES = ['plain', 'source-maps'] as const;
type Mode = (typeof MODES)[number];

/** kB as in the target: 10^3 bytes. */
const KB = 1000;

/** Imports the module given as argument and prints how long the import took. */
const IMPORT_SCRIPT = [
  'const started = performance.now();',
  'const module = await import(process.argv[1]);',
  'const ms = performance.now() - started;',
  "if (typeof module.handler !== 'function') throw new Error('the module exports no handler function');",
  'process.stdout.write(JSON.stringify({ ms }));',
].join('\n');

export interface ColdBenchOptions {
  /** Imports measured per bundle and mode. */
  readonly runs: number;
  readonly tmpRoot: string;
}

interface Bundle {
  readonly handler: Handler;
  readonly variant: Variant;
  readonly file: string;
  readonly bytes: number;
  readonly mapBytes: number;
  /** Bytes of the output by npm scope or package (project code on its own), largest first. */
  readonly contributors: { readonly name: string; readonly bytes: number }[];
  /** Bytes of zod's locale files (the `z` namespace re-exports them all, so they cannot be tree-shaken). */
  readonly zodLocaleBytes: number;
}

interface ImportSample {
  /** Time of `await import(...)` inside the fresh process. */
  readonly importMs: number;
  /** The whole process: Node start-up, the import, exit. */
  readonly processMs: number;
}

export async function benchCold(options: ColdBenchOptions): Promise<GroupResult> {
  const group = newGroup('3. Cold start');
  const root = path.join(options.tmpRoot, 'cold');
  const bundles: Bundle[] = [];
  for (const variant of VARIANTS) {
    const variantDir = path.join(root, variant);
    await mkdir(variantDir, { recursive: true });
    // The external SDK resolves from node_modules, as the Lambda runtime's own copy would.
    if (variant === 'sdk-external')
      await symlink(path.join(REPO, 'node_modules'), path.join(variantDir, 'node_modules'));
    for (const handler of HANDLERS) {
      progress(`cold: bundling ${handler} (${variant})`);
      const file = path.join(variantDir, handler, 'index.mjs');
      const metafile = await bundleHandler(handler, variant, file);
      bundles.push({
        handler,
        variant,
        file,
        bytes: (await stat(file)).size,
        mapBytes: (await stat(`${file}.map`)).size,
        contributors: contributors(metafile),
        zodLocaleBytes: inputBytes(metafile, /node_modules\/zod\/.*\/locales\//),
      });
    }
  }

  const samples = new Map<string, ImportSample[]>();
  const failures: string[] = [];
  const keyOf = (bundle: Bundle, mode: Mode) => `${bundle.variant}/${bundle.handler}/${mode}`;
  const cases = bundles.flatMap((bundle) => MODES.map((mode) => ({ bundle, mode })));
  for (let rep = 0; rep < options.runs; rep++) {
    progress(`cold: import run ${rep + 1}/${options.runs}`);
    for (const { bundle, mode } of rotate(cases, rep)) {
      try {
        const list = samples.get(keyOf(bundle, mode)) ?? [];
        list.push(await importOnce(bundle.file, mode));
        samples.set(keyOf(bundle, mode), list);
      } catch (error) {
        failures.push(`${keyOf(bundle, mode)}: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}`);
      }
    }
  }
  const importMs = (bundle: Bundle, mode: Mode) =>
    median((samples.get(keyOf(bundle, mode)) ?? []).map((sample) => sample.importMs));
  const processMs = (bundle: Bundle, mode: Mode) =>
    median((samples.get(keyOf(bundle, mode)) ?? []).map((sample) => sample.processMs));

  for (const bundle of bundles.filter((candidate) => candidate.variant === 'bundled')) {
    group.rows.push(
      targetRow(
        `${bundle.handler} bundle size (SDK bundled, as deployed)`,
        `${fixed(bundle.bytes / KB)} kB`,
        bundle.bytes / KB,
        '<',
        300,
        '< 300 kB',
      ),
      targetRow(
        `${bundle.handler} import time (fresh process)`,
        `${fixed(importMs(bundle, 'plain'))} ms`,
        importMs(bundle, 'plain'),
        '<',
        150,
        '< 150 ms',
      ),
      targetRow(
        `${bundle.handler} import time with --enable-source-maps (the deployed NODE_OPTIONS)`,
        `${fixed(importMs(bundle, 'source-maps'))} ms`,
        importMs(bundle, 'source-maps'),
        '<',
        150,
        '< 150 ms',
      ),
    );
  }
  for (const bundle of bundles.filter((candidate) => candidate.variant === 'sdk-external')) {
    group.rows.push(
      infoRow(
        `${bundle.handler} with the SDK external: size / import`,
        `${fixed(bundle.bytes / KB)} kB / ${fixed(importMs(bundle, 'plain'))} ms`,
      ),
    );
  }
  const attempts = cases.length * options.runs;
  group.rows.push(
    targetRow(
      'imports that succeed with an empty environment (config read lazily)',
      `${attempts - failures.length} of ${attempts}`,
      failures.length,
      '==',
      0,
      'all',
    ),
  );
  for (const failure of [...new Set(failures)].slice(0, 5)) group.notes.push(`Import failed: ${failure}`);
  group.details.push(
    table(
      [
        'Handler',
        'SDK',
        'index.mjs kB',
        'index.mjs.map kB',
        'Import ms',
        'Import ms, --enable-source-maps',
        'Process ms (start + import + exit)',
        'Process ms, --enable-source-maps',
      ],
      bundles.map((bundle) => [
        bundle.handler,
        bundle.variant === 'bundled' ? 'bundled' : 'external (node_modules)',
        fixed(bundle.bytes / KB),
        fixed(bundle.mapBytes / KB),
        fixed(importMs(bundle, 'plain')),
        fixed(importMs(bundle, 'source-maps')),
        fixed(processMs(bundle, 'plain')),
        fixed(processMs(bundle, 'source-maps')),
      ]),
    ),
  );
  group.details.push(
    table(
      ['Bundle', 'Largest contributors to index.mjs (kB, from esbuild’s metafile)', 'of which zod locales (kB)'],
      bundles.map((bundle) => [
        `${bundle.handler}, SDK ${bundle.variant === 'bundled' ? 'bundled' : 'external'}`,
        bundle.contributors
          .slice(0, 6)
          .map((entry) => `${entry.name} ${fixed(entry.bytes / KB)}`)
          .join(', '),
        fixed(bundle.zodLocaleBytes / KB),
      ]),
    ),
  );
  group.notes.push(
    'Bundled with esbuild as CDK does for `SyncFunction`: ESM, `--minify`, target node22, linked source map without sources content, main fields module,main, the `createRequire` banner, no external modules; the variant marks `@aws-sdk/*` external and resolves it from this repository’s node_modules (the runtime’s SDK version would differ).',
    `Each figure is the median of ${options.runs} fresh \`node\` processes per bundle and mode, run with an environment holding only PATH: importing needs no configuration.`,
    `Measured with ${process.version} on this machine; Lambda runs Node.js 22 on arm64 and adds its own runtime start-up.`,
  );
  return group;
}

async function bundleHandler(handler: Handler, variant: Variant, outfile: string): Promise<Metafile> {
  const result = await build({
    entryPoints: [path.join(REPO, 'functions/handlers', `${handler}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ['module', 'main'],
    external: variant === 'sdk-external' ? ['@aws-sdk/*'] : [],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
    metafile: true,
  });
  return result.metafile;
}

function outputInputs(metafile: Metafile): Record<string, { bytesInOutput: number }> {
  return Object.entries(metafile.outputs).find(([file]) => file.endsWith('.mjs'))?.[1].inputs ?? {};
}

/** Bytes in the output that come from inputs whose path matches `pattern`. */
function inputBytes(metafile: Metafile, pattern: RegExp): number {
  return Object.entries(outputInputs(metafile))
    .filter(([input]) => pattern.test(input))
    .reduce((sum, [, { bytesInOutput }]) => sum + bytesInOutput, 0);
}

/** Where a bundle's bytes come from: grouped by npm scope (`@aws-sdk`, `@smithy`, …) or package, else project code. */
function contributors(metafile: Metafile): { name: string; bytes: number }[] {
  const totals = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(outputInputs(metafile))) {
    const match = /node_modules\/(@[^/]+|[^/]+)/.exec(input);
    const name = match ? (match[1] as string) : 'project code';
    totals.set(name, (totals.get(name) ?? 0) + bytesInOutput);
  }
  return [...totals].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
}

async function importOnce(file: string, mode: Mode): Promise<ImportSample> {
  const flags = mode === 'source-maps' ? ['--enable-source-maps'] : [];
  const started = process.hrtime.bigint();
  const { stdout } = await run(
    process.execPath,
    [...flags, '--input-type=module', '-e', IMPORT_SCRIPT, pathToFileURL(file).href],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
  );
  const processMs = Number(process.hrtime.bigint() - started) / 1e6;
  return { importMs: (JSON.parse(stdout) as { ms: number }).ms, processMs };
}
