import type { CfnResource } from 'aws-cdk-lib';

/** A rule of AWS Control Tower's proactive controls (its cfn-guard rule name) that is wrong for one resource. */
export interface ControlTowerSuppression {
  /** e.g. `s3_bucket_logging_enabled_check` */
  readonly rule: string;
  readonly reason: string;
}

interface GuardMetadata {
  SuppressedRules?: string[];
  SuppressionReasons?: Record<string, string>;
}

/**
 * Record on `resource` that these Control Tower rules do not apply to it, each with its reason: `Metadata.guard.
 * SuppressedRules` (the AWS Guard Rules Registry's convention) plus `SuppressionReasons`. Control Tower's own rules
 * and hooks do not read it; this project's checks do (`isSuppressed`): a suppression here documents a resource that
 * an account enforcing that control would refuse.
 */
export function suppressControlTowerRules(
  resource: CfnResource,
  suppressions: readonly ControlTowerSuppression[],
): void {
  const guard: GuardMetadata = (resource.getMetadata('guard') as GuardMetadata | undefined) ?? {};
  guard.SuppressedRules = [...(guard.SuppressedRules ?? []), ...suppressions.map((s) => s.rule)];
  guard.SuppressionReasons = {
    ...guard.SuppressionReasons,
    ...Object.fromEntries(suppressions.map((s) => [s.rule, s.reason])),
  };
  resource.addMetadata('guard', guard);
}

/** Whether the resource `logicalId` of a synthesized `template` suppresses `rule` (see suppressControlTowerRules). */
export function isSuppressed(template: unknown, logicalId: string, rule: string): boolean {
  const resources = (template as { Resources?: Record<string, { Metadata?: { guard?: GuardMetadata } }> }).Resources;
  return resources?.[logicalId]?.Metadata?.guard?.SuppressedRules?.includes(rule) ?? false;
}
