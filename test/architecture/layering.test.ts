import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { importCycles, importsOf, layeringViolations, readSources } from './import-graph.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PRODUCT_FOLDERS = ['bin', 'lib', 'functions', 'scripts'];

describe('the project layout', () => {
  const files = readSources(ROOT, PRODUCT_FOLDERS);

  test('reads the product code (the check is not vacuous)', () => {
    expect([...files.keys()].filter((file) => file.startsWith('functions/core/')).length).toBeGreaterThan(20);
    expect(files.has('lib/localytics-export-sync.ts')).toBe(true);
  });

  test('every import points down: core imports only itself, nothing under functions/ imports lib/', () => {
    expect(layeringViolations(files)).toEqual([]);
  });

  test('no import cycles', () => {
    expect(importCycles(files)).toEqual([]);
  });
});

describe('the layering check', () => {
  const core = (name: string, source: string) => [`functions/core/${name}.ts`, source] as const;

  test('fails when a core module imports the CDK side', () => {
    const files = new Map([
      core('planner', "import { TABLES } from '../../lib/catalog/tables.js';\n"),
      ['lib/catalog/tables.ts', 'export const TABLES = [];\n'],
    ]);
    expect(layeringViolations(files)).toEqual([
      'functions/core/planner.ts imports lib/catalog/tables.ts (functions/core/ may import only functions/core/)',
    ]);
  });

  test('fails when a core module imports an adapter or an AWS SDK package', () => {
    const files = new Map([
      core(
        'copy-job',
        "import { S3Sink } from '../adapters/s3-sink.js';\nimport { S3Client } from '@aws-sdk/client-s3';\n",
      ),
      ['functions/adapters/s3-sink.ts', 'export class S3Sink {}\n'],
    ]);
    expect(layeringViolations(files)).toHaveLength(2);
  });

  test('fails when a handler imports the CLI, and when the CDK side imports tooling', () => {
    const files = new Map([
      ['functions/handlers/copier.ts', "export { run } from '../cli/program.js';\n"],
      ['functions/cli/program.ts', 'export const run = 1;\n'],
      ['lib/parquet-converter.ts', "import { CACHE } from '../scripts/fetch-native.mjs';\n"],
      ['scripts/fetch-native.mjs', 'export const CACHE = 1;\n'],
    ]);
    expect(layeringViolations(files).map((violation) => violation.split(' ')[0])).toEqual([
      'functions/handlers/copier.ts',
      'lib/parquet-converter.ts',
    ]);
  });

  test('accepts imports that point down and package imports outside the core', () => {
    const files = new Map([
      core('jobs', "import { z } from 'zod/mini';\nimport { createHash } from 'node:crypto';\n"),
      [
        'functions/adapters/s3-sink.ts',
        "import type { SyncJob } from '../core/jobs.js';\nimport '@aws-sdk/client-s3';\n",
      ],
      ['lib/stack.ts', "import { S3Sink } from '../functions/adapters/s3-sink.js';\n"],
    ]);
    expect(layeringViolations(files)).toEqual([]);
  });

  test('finds a cycle of two modules, a longer one, and a module importing itself', () => {
    const files = new Map([
      core('copy-job', "import { claim } from './change-set.js';\n"),
      core('change-set', "import type { CopyOutcome } from './copy-job.js';\n"),
      core('a', "import './b.js';\n"),
      core('b', "export * from './c.js';\n"),
      core('c', "const a = await import('./a.js');\n"),
      core('self', "import './self.js';\n"),
      core('leaf', 'export const x = 1;\n'),
    ]);
    expect(importCycles(files)).toEqual(
      expect.arrayContaining([
        ['functions/core/change-set.ts', 'functions/core/copy-job.ts'],
        ['functions/core/a.ts', 'functions/core/b.ts', 'functions/core/c.ts'],
        ['functions/core/self.ts'],
      ]),
    );
    expect(importCycles(files)).toHaveLength(3);
  });

  test('reads type-only imports, re-exports and dynamic imports', () => {
    expect(
      importsOf("import type { A } from './a.js';\nexport { B } from './b.js';\nawait import('./c.js');\n"),
    ).toEqual(['./a.js', './b.js', './c.js']);
  });
});
