import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { isSuppressed } from '../../lib/control-tower.js';

const PACKAGE = path.resolve('node_modules/@cdklabs/cdk-validator-cfnguard');
/** AWS Control Tower's proactive controls as cfn-guard rules, as `@cdklabs/cdk-validator-cfnguard` ships them. */
export const CONTROL_TOWER_RULES = path.join(PACKAGE, 'rules/control-tower/cfn-guard');

/**
 * The cfn-guard binary the package ships for this machine (Linux or macOS, x86_64 or aarch64), or why there is none.
 */
export function cfnGuardBinary(): { binary: string } | { missing: string } {
  const platform = { linux: 'ubuntu', darwin: 'macos' }[process.platform as string];
  const arch = { x64: 'x86_64', arm64: 'aarch64' }[process.arch as string];
  if (!platform || !arch) {
    return { missing: `@cdklabs/cdk-validator-cfnguard ships no cfn-guard for ${process.platform}/${process.arch}` };
  }
  const binary = path.join(PACKAGE, 'bin', platform, arch, 'cfn-guard');
  if (!existsSync(binary)) return { missing: `${binary} is missing (run npm ci)` };
  return { binary };
}

interface GuardRuleResult {
  readonly Rule?: { readonly name: string };
}

interface GuardReport {
  readonly not_compliant: readonly GuardRuleResult[];
}

/**
 * Every rule of `rules` that `template` fails, with the logical IDs of the resources that fail it, less those a
 * resource suppresses in `Metadata.guard.SuppressedRules` (the Control Tower rules themselves ignore it).
 */
export async function failingRules(
  binary: string,
  template: string,
  rules = CONTROL_TOWER_RULES,
): Promise<Record<string, string[]>> {
  const args = ['validate', '--data', template, '--rules', rules, '--output-format', 'json'];
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)(binary, [...args, '--show-summary', 'none', '--structured'], {
      maxBuffer: 256 * 1024 * 1024,
    }));
  } catch (error) {
    // cfn-guard exits 19 when a rule fails (5 in older versions), with the report on stdout.
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    if ((failed.code !== 19 && failed.code !== 5) || !failed.stdout) {
      throw new Error(`cfn-guard failed (exit ${failed.code}): ${failed.stderr}`);
    }
    stdout = failed.stdout;
  }
  const parsed = JSON.parse(readFileSync(template, 'utf8')) as unknown;
  const failing: Record<string, string[]> = {};
  for (const report of JSON.parse(stdout) as GuardReport[]) {
    for (const result of report.not_compliant) {
      const name = result.Rule?.name ?? 'unnamed rule';
      const resources = [...JSON.stringify(result).matchAll(/"path":"\/Resources\/([^/"]+)/g)]
        .map((m) => m[1] ?? '')
        .filter((id) => !isSuppressed(parsed, id, name));
      if (resources.length > 0) failing[name] = [...new Set([...(failing[name] ?? []), ...resources])].sort();
    }
  }
  return failing;
}
