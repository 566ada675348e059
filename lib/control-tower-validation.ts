import { readFileSync } from 'node:fs';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import type {
  IPolicyValidationContextBeta1,
  IPolicyValidationPluginBeta1,
  PolicyValidationPluginReportBeta1,
} from 'aws-cdk-lib';
import { isSuppressed } from './control-tower.js';

/** The Control Tower rule a function outside a VPC fails: only the user has subnets to give (context vpcSubnetIds). */
export const LAMBDA_INSIDE_VPC_RULE_FILE = 'ct-lambda-pr-3';

/**
 * AWS Control Tower's proactive controls at synth time: `@cdklabs/cdk-validator-cfnguard`'s rules, run by its
 * cfn-guard, with the resources' `Metadata.guard.SuppressedRules` honoured (the rules themselves ignore it). Available
 * where the package ships a cfn-guard binary (Linux and macOS, x86_64 and arm64).
 */
export class ControlTowerValidation implements IPolicyValidationPluginBeta1 {
  readonly name = 'AWS Control Tower proactive controls (cfn-guard)';
  readonly version: string | undefined;
  readonly ruleIds: string[] | undefined;
  private readonly guard: CfnGuardValidator;

  /** `undefined` where no cfn-guard binary exists for this platform. */
  static forPlatform(props: { disabledRuleFiles?: string[] } = {}): ControlTowerValidation | undefined {
    const supported = ['linux', 'darwin'].includes(process.platform) && ['x64', 'arm64'].includes(process.arch);
    return supported ? new ControlTowerValidation(props) : undefined;
  }

  private constructor(props: { disabledRuleFiles?: string[] }) {
    this.guard = new CfnGuardValidator({ disabledRules: props.disabledRuleFiles ?? [] });
    this.version = this.guard.version;
    this.ruleIds = this.guard.ruleIds;
  }

  validate(context: IPolicyValidationContextBeta1): PolicyValidationPluginReportBeta1 {
    const report = this.guard.validate(context);
    const templates = new Map<string, unknown>();
    const template = (templatePath: string) => {
      if (!templates.has(templatePath)) templates.set(templatePath, JSON.parse(readFileSync(templatePath, 'utf8')));
      return templates.get(templatePath);
    };
    const violations = report.violations
      .map((violation) => ({
        ...violation,
        violatingResources: violation.violatingResources.filter(
          (resource) => !isSuppressed(template(resource.templatePath), resource.resourceLogicalId, violation.ruleName),
        ),
      }))
      .filter((violation) => violation.violatingResources.length > 0);
    return { ...report, success: violations.length === 0, violations };
  }
}
