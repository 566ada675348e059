import { type PhysicalResources, resolveCfn } from './deployment/cfn.js';

/**
 * What each CloudFormation token of a template can become on AWS, at its longest: a check of a size limit that
 * counts `{"Ref": "Queue"}` as 16 characters would pass templates AWS refuses. Names CloudFormation generates are
 * `<stack>-<logical id>-<random>` cut to the service's maximum, so every generated name is taken at that maximum.
 * The pseudo parameters take the longest value any partition has (together they form no real region: an upper bound).
 */
export const LONGEST_PSEUDO = {
  'AWS::Partition': 'aws-us-gov', // aws, aws-cn, aws-us-gov (10), aws-iso, aws-iso-b, aws-eusc
  'AWS::Region': 'ap-southeast-5', // 14, as long as any region name (cn-northwest-1, us-isob-east-1)
  'AWS::AccountId': '123456789012',
  'AWS::URLSuffix': 'amazonaws.com.cn', // 16: amazonaws.com, amazonaws.com.cn, c2s.ic.gov, sc2s.sgov.gov
  'AWS::StackName': 'S'.repeat(128),
  'AWS::StackId': `arn:aws-us-gov:cloudformation:ap-southeast-5:123456789012:stack/${'S'.repeat(128)}/${'0'.repeat(36)}`,
} as const;

/** Service maxima of the names CloudFormation generates (characters). */
export const NAME_LENGTH = {
  queue: 80, // SQS queue name
  table: 255, // DynamoDB table name
  bucket: 63, // S3 bucket name
  function: 64, // Lambda function name
  layer: 140, // Lambda layer name
  role: 64, // IAM role name
  topic: 256, // SNS topic name
  logGroup: 512, // CloudWatch Logs log group name
  dashboard: 255, // CloudWatch dashboard name
  glue: 255, // Glue database and table names
} as const;

const { 'AWS::Partition': partition, 'AWS::Region': region, 'AWS::AccountId': account } = LONGEST_PSEUDO;
const arn = (service: string, resource: string, regional = true) =>
  `arn:${partition}:${service}:${regional ? region : ''}:${regional ? account : ''}:${resource}`;
const name = (kind: keyof typeof NAME_LENGTH, id: string) =>
  id.slice(0, NAME_LENGTH[kind]).padEnd(NAME_LENGTH[kind], 'x');

type Physical = { ref: string; attributes: Record<string, string> };

/** `Ref` and `Fn::GetAtt` of one resource at their longest, by type; an unknown type gets none (and fails to resolve). */
function longestPhysical(type: string, id: string): Physical | undefined {
  switch (type) {
    case 'AWS::SQS::Queue': {
      const queue = name('queue', id);
      const url = `https://sqs.${region}.${LONGEST_PSEUDO['AWS::URLSuffix']}/${account}/${queue}`;
      return { ref: url, attributes: { Arn: arn('sqs', queue), QueueName: queue, QueueUrl: url } };
    }
    case 'AWS::DynamoDB::Table': {
      const table = name('table', id);
      const tableArn = arn('dynamodb', `table/${table}`);
      return { ref: table, attributes: { Arn: tableArn, StreamArn: `${tableArn}/stream/2026-01-01T00:00:00.000` } };
    }
    case 'AWS::S3::Bucket': {
      const bucket = name('bucket', id);
      return { ref: bucket, attributes: { Arn: arn('s3', bucket, false) } };
    }
    case 'AWS::Lambda::Function': {
      const fn = name('function', id);
      return { ref: fn, attributes: { Arn: arn('lambda', `function:${fn}`) } };
    }
    case 'AWS::Lambda::Version': {
      // Versions are numbered from 1; ten digits is more than any function reaches.
      const versionArn = arn('lambda', `function:${name('function', id)}:9999999999`);
      return { ref: versionArn, attributes: { Version: '9999999999', FunctionArn: versionArn } };
    }
    case 'AWS::Lambda::LayerVersion':
      return { ref: arn('lambda', `layer:${name('layer', id)}:9999999999`), attributes: {} };
    case 'AWS::IAM::Role': {
      const role = name('role', id);
      return { ref: role, attributes: { Arn: arn('iam', `role/${role}`, false), RoleId: `AROA${'X'.repeat(17)}` } };
    }
    case 'AWS::SNS::Topic': {
      const topic = name('topic', id);
      return { ref: arn('sns', topic), attributes: { TopicArn: arn('sns', topic), TopicName: topic } };
    }
    case 'AWS::Logs::LogGroup': {
      const group = name('logGroup', id);
      return { ref: group, attributes: { Arn: arn('logs', `log-group:${group}:*`) } };
    }
    case 'AWS::CloudWatch::Dashboard':
      return { ref: name('dashboard', id), attributes: {} };
    case 'AWS::Glue::Database':
    case 'AWS::Glue::Table':
      return { ref: name('glue', id), attributes: {} };
    default:
      return undefined;
  }
}

export interface Template {
  readonly Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  readonly Outputs?: Record<string, unknown>;
  readonly Parameters?: Record<string, unknown>;
}

/**
 * A resolver of every intrinsic in a part of `template` to its longest value on AWS. A token it does not know
 * throws, naming it: a limit check must not skip what it cannot size.
 */
export function longestResolver(template: Template): (value: unknown) => unknown {
  const refs: Record<string, string> = {};
  const attributes: Record<string, Record<string, string>> = {};
  for (const [id, resource] of Object.entries(template.Resources)) {
    const physical = longestPhysical(resource.Type, id);
    if (!physical) continue;
    refs[id] = physical.ref;
    attributes[id] = physical.attributes;
  }
  const resources: PhysicalResources = { refs, attributes, pseudo: LONGEST_PSEUDO };
  return (value) => resolveCfn(value, resources);
}
