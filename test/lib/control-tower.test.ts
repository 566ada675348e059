import { readFileSync } from 'node:fs';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, test } from 'vitest';
import { readStackConfig } from '../../lib/config.js';
import { ControlTowerValidation, LAMBDA_INSIDE_VPC_RULE_FILE } from '../../lib/control-tower-validation.js';
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
  if (!command)
    throw new Error('README: no "npx cdk deploy" line in "Deploy in an account with AWS Control Tower controls"');
  return Object.fromEntries(
    [...command.matchAll(/-c ([A-Za-z]+)=(\S+)/g)].map((match) => [match[1] as string, match[2] as string]),
  );
}

/** Synthesize the stack as `cdk deploy` would with `context` over cdk.json's (bundling skipped: not what is judged). */
function synthesize(context: Record<string, unknown>, plugin?: ControlTowerValidation) {
  const app = testApp({ context: { ...CDK_CONTEXT, ...context, 'aws:cdk:bundling-stacks': [] } });
  const config = readStackConfig(app.node);
  const stack = new LocalyticsExportSyncStack(app, config.stackName, { config });
  if (plugin) Validations.of(app).addPlugins(plugin);
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).templateFullPath;
  return { app, template, resources: (JSON.parse(readFileSync(template, 'utf8')) as Template).Resources };
}

type Template = { Resources: Record<string, { Type: string; Metadata?: Record<string, unknown> }> };

async function rulesFailed(template: string): Promise<Record<string, string[]>> {
  return failingRules((guard as { binary: string }).binary, template);
}

describeWithGuard('AWS Control Tower proactive controls', () => {
  test('the default deployment fails only lambda_inside_vpc_check, which needs subnets only the user has', async () => {
    const { template, resources } = synthesize({});
    const failing = await rulesFailed(template);
    expect(Object.keys(failing)).toEqual(['lambda_inside_vpc_check']);
    // Every function: the planner, the copier, the converter and CDK's trigger provider.
    const functions = Object.keys(resources).filter((id) => resources[id]?.Type === 'AWS::Lambda::Function');
    expect(failing.lambda_inside_vpc_check).toEqual(functions.sort());
    expect(functions).toHaveLength(4);
    // Suppressions, each with its reason, only where a rule cannot hold: the server access log bucket.
    const suppressions = Object.entries(resources).flatMap(([id, resource]) => {
      const guard = resource.Metadata?.guard as { SuppressedRules: string[]; SuppressionReasons: object } | undefined;
      return guard ? [{ id, rules: guard.SuppressedRules, reasons: Object.keys(guard.SuppressionReasons) }] : [];
    });
    expect(suppressions).toEqual([
      {
        id: expect.stringMatching(/^SyncAccessLogsBucket/),
        rules: [
          's3_bucket_default_encryption_kms_check',
          's3_bucket_logging_enabled_check',
          's3_bucket_object_lock_enabled_check',
        ],
        reasons: [
          's3_bucket_default_encryption_kms_check',
          's3_bucket_logging_enabled_check',
          's3_bucket_object_lock_enabled_check',
        ],
      },
    ]);
  }, 120_000);

  test('the README command for a Control Tower account fails no rule, and cdk-nag finds nothing', async () => {
    const options = controlTowerCommand();
    expect(Object.keys(options)).toEqual(expect.arrayContaining(['vpcSubnetIds']));
    const { app, template } = synthesize(options);
    expect(await rulesFailed(template)).toEqual({});
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
  }, 120_000);

  test('synth runs the rules too (bin/app.ts): it stops on a function outside a VPC unless that rule is off', () => {
    const all = ControlTowerValidation.forPlatform();
    expect(() => synthesize({}, all)).toThrow(/CT\.LAMBDA\.PR\.3/);
    const withoutVpcRule = ControlTowerValidation.forPlatform({ disabledRuleFiles: [LAMBDA_INSIDE_VPC_RULE_FILE] });
    expect(() => synthesize({}, withoutVpcRule)).not.toThrow();
  }, 180_000);
});
