// Bundles the CLI into dist/localytics-sync.mjs (runs on `npm ci` via "prepare", and before `npm start`).
import { build } from 'esbuild';

await build({
  entryPoints: ['bin/localytics-sync.ts'],
  outfile: 'dist/localytics-sync.mjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  logLevel: 'warning',
  // Native code (the Parquet writer) cannot be bundled: it is imported from node_modules when first used.
  external: ['@duckdb/node-api'],
  // Some AWS SDK dependencies are CommonJS and call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
