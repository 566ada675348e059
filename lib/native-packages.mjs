// Where the native npm packages that the Lambda functions need for another platform are kept, and at which version:
// the CDK side reads this to build the Parquet converter's layer, and scripts/fetch-native.mjs (run on `npm ci`)
// fetches them there. Plain JavaScript, so that the fetch script runs with Node.js alone.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CACHE = path.join(REPO, 'node_modules', '.cache', 'localytics-export-sync');
export const DUCKDB_BINDING = '@duckdb/node-bindings-linux-arm64';

/** Name, version and integrity of a package as package-lock.json pins it (optional platform packages included). */
export function lockedPackage(name) {
  const lock = JSON.parse(readFileSync(path.join(REPO, 'package-lock.json'), 'utf8'));
  const entry = lock.packages?.[`node_modules/${name}`];
  if (!entry?.version || !entry.integrity) throw new Error(`package-lock.json does not pin ${name}`);
  return { name, version: entry.version, integrity: entry.integrity };
}

/** The Lambda layer directory holding the linux-arm64 DuckDB binding (`nodejs/node_modules/...`, on NODE_PATH). */
export function duckDbLayerDir(pkg = lockedPackage(DUCKDB_BINDING)) {
  return path.join(CACHE, `duckdb-layer-${pkg.version}-linux-arm64`);
}
