export interface PinnedPackage {
  readonly name: string;
  readonly version: string;
  /** `sha512-<base64>`, as in package-lock.json. */
  readonly integrity: string;
}
export const REPO: string;
export const CACHE: string;
export const DUCKDB_BINDING: string;
export function lockedPackage(name: string): PinnedPackage;
export function duckDbLayerDir(pkg?: PinnedPackage): string;
