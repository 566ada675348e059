/**
 * Just enough of CloudFormation's intrinsic functions to read a synthesized template as a deployment would see it:
 * `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub` and the pseudo parameters, with physical names supplied by the test.
 */

export const TEST_ACCOUNT = '123456789012';
export const TEST_REGION = 'us-east-1';

export interface PhysicalResources {
  /** What `Ref` of a logical ID gives (a queue URL, a table name, ...). */
  readonly refs: Readonly<Record<string, string>>;
  /** What `Fn::GetAtt` gives, by logical ID and attribute. */
  readonly attributes: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Pseudo parameters (`AWS::Region`, ...) over the test deployment's. */
  readonly pseudo?: Readonly<Record<string, string>>;
}

const PSEUDO: Record<string, string> = {
  'AWS::Partition': 'aws',
  'AWS::Region': TEST_REGION,
  'AWS::AccountId': TEST_ACCOUNT,
  'AWS::URLSuffix': 'amazonaws.com',
};

/** Resolve every intrinsic in `value`; an unknown function or an unmapped resource throws, naming it. */
export function resolveCfn(value: unknown, resources: PhysicalResources): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveCfn(item, resources));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  const [key, argument] = entries[0] ?? [];
  if (entries.length === 1 && key !== undefined && (key === 'Ref' || key.startsWith('Fn::'))) {
    return intrinsic(key, argument, resources);
  }
  return Object.fromEntries(entries.map(([name, item]) => [name, resolveCfn(item, resources)]));
}

function intrinsic(name: string, argument: unknown, resources: PhysicalResources): string {
  switch (name) {
    case 'Ref': {
      const id = String(argument);
      const resolved = resources.pseudo?.[id] ?? PSEUDO[id] ?? resources.refs[id];
      if (resolved === undefined) throw new Error(`no physical resource for Ref ${id}`);
      return resolved;
    }
    case 'Fn::GetAtt': {
      const [id, attribute] = argument as [string, string];
      const resolved = resources.attributes[id]?.[attribute];
      if (resolved === undefined) throw new Error(`no physical resource for Fn::GetAtt ${id}.${attribute}`);
      return resolved;
    }
    case 'Fn::Join': {
      const [separator, parts] = argument as [string, unknown[]];
      return parts.map((part) => String(resolveCfn(part, resources))).join(separator);
    }
    case 'Fn::Sub': {
      const text = typeof argument === 'string' ? argument : String((argument as [string])[0]);
      return text.replace(/\$\{([^}]+)\}/g, (_, id: string) => {
        const [logical, attribute] = id.split('.');
        return attribute === undefined
          ? intrinsic('Ref', logical, resources)
          : intrinsic('Fn::GetAtt', [logical, attribute], resources);
      });
    }
    default:
      throw new Error(`intrinsic ${name} is not supported by the test deployment`);
  }
}
