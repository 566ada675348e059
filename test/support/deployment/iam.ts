/**
 * A small IAM policy evaluator for identity policies as the CDK synthesizes them: Allow and Deny statements,
 * wildcard actions and resources, and the condition operators our policies use. Anything else (NotAction, an
 * unknown operator) throws, so that a policy this cannot judge never passes silently.
 */

export interface PolicyStatement {
  readonly Effect: 'Allow' | 'Deny';
  readonly Action?: string | readonly string[];
  readonly Resource?: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
  readonly NotAction?: unknown;
  readonly NotResource?: unknown;
}

/** One AWS API call as IAM sees it: the action, the resource ARN, and the request's condition keys. */
export interface AwsAction {
  readonly action: string;
  readonly resource: string;
  readonly context: Readonly<Record<string, string | readonly string[]>>;
}

const asArray = <T>(value: T | readonly T[] | undefined): readonly T[] =>
  value === undefined ? [] : Array.isArray(value) ? (value as readonly T[]) : [value as T];

function wildcard(pattern: string, caseInsensitive = false): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, caseInsensitive ? 'i' : '');
}

function matchesCondition(operator: string, key: string, expected: readonly string[], action: AwsAction): boolean {
  const actual = action.context[key];
  switch (operator) {
    case 'StringEquals':
      return typeof actual === 'string' && expected.includes(actual);
    case 'StringLike':
      return typeof actual === 'string' && expected.some((pattern) => wildcard(pattern).test(actual));
    case 'ForAllValues:StringLike':
      // Every value of the request (none is vacuously true, as in IAM) matches one of the patterns.
      return asArray(actual).every((value) => expected.some((pattern) => wildcard(pattern).test(value)));
    case 'Bool':
      return typeof actual === 'string' && expected.includes(actual);
    case 'Null':
      // "true": the request has no such key; "false": it has one (e.g. an If-None-Match header).
      return expected.includes(actual === undefined ? 'true' : 'false');
    default:
      throw new Error(`condition operator ${operator} is not supported by the test policy evaluator`);
  }
}

function statementMatches(statement: PolicyStatement, action: AwsAction): boolean {
  if (statement.NotAction !== undefined || statement.NotResource !== undefined) {
    throw new Error('NotAction/NotResource are not supported by the test policy evaluator');
  }
  if (!asArray(statement.Action).some((pattern) => wildcard(pattern, true).test(action.action))) return false;
  if (!asArray(statement.Resource).some((pattern) => wildcard(pattern).test(action.resource))) return false;
  for (const [operator, keys] of Object.entries(statement.Condition ?? {})) {
    for (const [key, expected] of Object.entries(keys)) {
      if (!matchesCondition(operator, key, asArray(expected), action)) return false;
    }
  }
  return true;
}

/** IAM's decision for one call: an explicit Deny wins, else any matching Allow, else implicitly denied. */
export function isAllowed(statements: readonly PolicyStatement[], action: AwsAction): boolean {
  if (statements.some((statement) => statement.Effect === 'Deny' && statementMatches(statement, action))) {
    return false;
  }
  return statements.some((statement) => statement.Effect === 'Allow' && statementMatches(statement, action));
}
