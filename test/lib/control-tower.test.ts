import { readFileSync } from 'node:fs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, test } from 'vitest';
import { readStackConfig } from '../../lib/config.js';
import { LocalyticsExportSyncStack } from '../../lib/localytics-export-sync-stack.js';
import { testApp } from '../support/cdk.js';
import { cfnGuardBinary, failingRules } from '../support/cfn-guard.js';

/**
 * AWS Control Tower's proactive controls (the cfn-guard rules `@cdklabs/cdk-validator-cfnguard` ships), run on the
 * template of the default deployment and of the one the README documents for an account that enforces them.
 */
const guard = cfnGuardBinary();
if ('missing' in guard && process.env.CI) throw new Error(`CI must run the Control Tower rules: ${guard.missing}`);
const describeWithGuard = 'binary' in guard ? describe : describe.skip;
if ('missing' in guard) console.warn(`SKIPPED the Control Tower rule tests: ${guard.missing}`);

/** cdk.json's context, as `cdk deploy` reads it. */
const CDK_CONTEXT = (JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> }).context;

/** The `-c key=value` pairs of the README's command for a Control Tower account. */
export function controlTowerCommand(readme = readFileSync('README.md', 'utf8')): Record<string, string> {
  const section = readme.split(/^### Deploy in an account with AWS Control Tower controls$/m)[1]?.split(/^#/m)[0];
  const command = section?.match(/^\s*(npx cdk deploy .*)$/m)?.[1];
  if (!command) throw new Error('README: no "npx cdk deploy" line in "Deploy in an account with AWS Control Tower controls"');
  return Object.fromEntries(
    [...command.matchAll(/-c ([A-Za-z]+)=(\S+)/g)].map((match) => [match[1] as string, match[2] as string]),
  );
}

/** Synthesize the stack as `cdk deploy` would with `context` over cdk.json's (bundling skipped: not what is judged). */
function synthesize(context: Record<string, unknown>) {
  const app = testApp({ context: { ...CDK_CONTEXT, ...context, 'aws:cdk:bundling-stacks': [] } });
  const config = readStackConfig(app.node);
  const stack = new LocalyticsExportSyncStack(app, config.stackName, { config });
  const assembly = app.synth();
  return { app, template: assembly.getStackByName(stack.stackName).templateFullPath };
}

async function rulesFailed(template: string): Promise<Record<string, string[]>> {
  return failingRules((guard as { binary: string }).binary, template);
}

describeWithGuard('AWS Control Tower proactive controls', () => {
  test('the default deployment fails only lambda_inside_vpc_check, which needs subnets only the user has', async () => {
    const { template } = synthesize({});
    const failing = await rulesFailed(template);
    expect(Object.keys(failing)).toEqual(['lambda_inside_vpc_check']);
  }, 120_000);

  test('the README command for a Control Tower account fails no rule, and cdk-nag finds nothing', async () => {
    const options = controlTowerCommand();
    expect(Object.keys(options)).toEqual(expect.arrayContaining(['vpcSubnetIds']));
    const { app, template } = synthesize(options);
    expect(await rulesFailed(template)).toEqual({});
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
  }, 120_000);
});
