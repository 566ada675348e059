import type { PinnedPackage } from '../lib/native-packages.mjs';

export { CACHE, DUCKDB_BINDING, duckDbLayerDir, lockedPackage, REPO } from '../lib/native-packages.mjs';
export type { PinnedPackage };
export function fetchPackage(pkg: PinnedPackage, dir: string): string;
export function fetchDuckDbLayer(): string;
