/**
 * Helper programs that a benchmark runs as child processes (so `/usr/bin/time` sees only them), bundled by esbuild
 * into plain ESM files: no TypeScript loader in the measured process.
 */
import path from 'node:path';
import { build } from 'esbuild';
import { REPO } from './services.js';

export const CHILDREN = ['upload-file', 'write-file', 'download', 'plan'] as const;
export type ChildName = (typeof CHILDREN)[number];

/** Bundle every child into `outDir`; returns the path of each bundle. */
export async function bundleChildren(outDir: string): Promise<Record<ChildName, string>> {
  await build({
    entryPoints: CHILDREN.map((name) => path.join(REPO, 'bench/children', `${name}.ts`)),
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    logLevel: 'warning',
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  return Object.fromEntries(CHILDREN.map((name) => [name, path.join(outDir, `${name}.mjs`)])) as Record<
    ChildName,
    string
  >;
}
