// Fetches native npm packages built for a platform other than this machine's, with the npm client, and checks each
// tarball against a known integrity. npm installs only the host's optional binding of @duckdb/node-bindings (e.g.
// linux-x64 here, darwin-arm64 on a Mac), but the Parquet converter runs on Lambda's linux-arm64 whatever machine
// runs `cdk deploy`: its layer is the linux-arm64 package, at the version and integrity of package-lock.json.
// Runs on `npm ci` (the "prepare" script) so that `cdk synth` works offline; run it by hand with
// `node scripts/fetch-native.mjs`.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DUCKDB_BINDING, duckDbLayerDir, lockedPackage, REPO } from '../lib/native-packages.mjs';

export { CACHE, DUCKDB_BINDING, duckDbLayerDir, lockedPackage, REPO } from '../lib/native-packages.mjs';

/**
 * The package's files under `dir` (the tarball's `package/` folder), fetched once: a directory that exists holds a
 * verified copy (it is renamed into place only after the check).
 */
export function fetchPackage({ name, version, integrity }, dir) {
  if (existsSync(dir)) return dir;
  mkdirSync(path.dirname(dir), { recursive: true });
  const work = mkdtempSync(`${dir}.partial-`);
  try {
    const npm = process.env.npm_execpath;
    const args = ['pack', `${name}@${version}`, '--pack-destination', work, '--silent'];
    if (npm?.endsWith('.js'))
      execFileSync(process.execPath, [npm, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    else execFileSync('npm', args, { stdio: ['ignore', 'ignore', 'inherit'], shell: process.platform === 'win32' });
    const tarball = readdirSync(work).find((file) => file.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack ${name}@${version} produced no tarball`);
    const [algorithm, expected] = integrity.split('-', 2);
    const actual = createHash(algorithm)
      .update(readFileSync(path.join(work, tarball)))
      .digest('base64');
    if (actual !== expected) throw new Error(`${name}@${version}: integrity mismatch (expected ${integrity})`);
    const extracted = path.join(work, 'extracted');
    mkdirSync(extracted);
    execFileSync('tar', ['-xzf', path.join(work, tarball), '-C', extracted, '--strip-components=1']);
    writeFileSync(path.join(extracted, '.integrity'), `${integrity}\n`);
    renameSync(extracted, dir);
    return dir;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function fetchDuckDbLayer() {
  const pkg = lockedPackage(DUCKDB_BINDING);
  const layer = duckDbLayerDir(pkg);
  fetchPackage(pkg, path.join(layer, 'nodejs', 'node_modules', ...DUCKDB_BINDING.split('/')));
  return layer;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    console.log(`Parquet converter layer (${DUCKDB_BINDING}): ${path.relative(REPO, fetchDuckDbLayer())}`);
  } catch (error) {
    console.error(`could not fetch the Parquet converter's linux-arm64 DuckDB binding: ${error.message}`);
    process.exit(1);
  }
}
