import { Aspects, type IAspect, Stack, Validations } from 'aws-cdk-lib';
import { CfnPolicy } from 'aws-cdk-lib/aws-iam';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';

export interface ExpectedWildcard {
  /** Matched against cdk-nag's finding, e.g. `Resource::<SyncBucket.Arn>/localytics/*`. */
  readonly finding: RegExp;
  readonly reason: string;
}

/**
 * cdk-nag's AwsSolutions-IAM5 reports each wildcard of a policy as its own finding, named after resolved logical IDs.
 * This aspect acknowledges exactly the wildcards we intend (each with its reason) on the policies under `scope`;
 * any other wildcard stays a finding and fails the synth.
 */
export function acknowledgeExpectedWildcards(scope: IConstruct, expected: readonly ExpectedWildcard[]): void {
  Aspects.of(scope).add(new AcknowledgeWildcards(expected));
}

class AcknowledgeWildcards implements IAspect {
  constructor(private readonly expected: readonly ExpectedWildcard[]) {}

  visit(node: IConstruct): void {
    if (!(node instanceof CfnPolicy)) return;
    const document = Stack.of(node).resolve(node.policyDocument) as {
      Statement?: { Effect: string; Action: unknown; Resource: unknown }[];
    };
    for (const statement of document.Statement ?? []) {
      if (statement.Effect !== 'Allow') continue;
      const findings = [
        ...asArray(statement.Action)
          .filter((action) => String(action).includes('*'))
          .map((action) => `Action::${action}`),
        ...asArray(statement.Resource)
          .map((resource) => flattenCfnReference(resource))
          .filter((resource) => resource.includes('*'))
          .map((resource) => `Resource::${resource}`),
      ];
      for (const finding of findings) {
        const match = this.expected.find((candidate) => candidate.finding.test(finding));
        if (match) Validations.of(node).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason: match.reason });
      }
    }
  }
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}
