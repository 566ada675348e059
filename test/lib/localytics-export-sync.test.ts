import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, test } from 'vitest';
import { readStackConfig } from '../../lib/config.js';
import { LocalyticsExportSync, type LocalyticsExportSyncProps } from '../../lib/localytics-export-sync.js';
import { LocalyticsExportSyncStack } from '../../lib/localytics-export-sync-stack.js';
import { assetDirectories, testApp } from '../support/cdk.js';
import { syntheticApps } from '../support/synthetic-apps.js';

const APP_ID = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';

function stackFromContext(context: Record<string, unknown> = {}) {
  const app = testApp({ context: { secretName: 'localytics/api', apps: [APP_ID], ...context } });
  const stack = new LocalyticsExportSyncStack(app, 'Test', { config: readStackConfig(app.node) });
  return { app, stack, template: Template.fromStack(stack) };
}

type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

function statements(template: Template): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
    (policy) =>
      (policy as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument.Statement,
  );
}

const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** The S3 statements of the policy whose logical ID starts with `policy`, resources after the key prefix. */
function s3Statements(template: Template, policy: string) {
  const found = Object.entries(template.findResources('AWS::IAM::Policy')).find(([id]) =>
    id.startsWith(policy),
  )?.[1] as {
    Properties: { PolicyDocument: { Statement: (Statement & { Condition?: unknown })[] } };
  };
  return found.Properties.PolicyDocument.Statement.filter((statement) =>
    asArray(statement.Action).some((action) => action.startsWith('s3:')),
  ).map((statement) => ({
    actions: asArray(statement.Action).sort(),
    resources: asArray(statement.Resource).map(
      (resource) => /\/localytics\/([^"]*)"/.exec(JSON.stringify(resource))?.[1] ?? 'the bucket',
    ),
    ...(statement.Condition ? { condition: statement.Condition } : {}),
  }));
}

describe('the synthesized stack', () => {
  const { app, template } = stackFromContext();

  test('plans logs hourly in UTC and pulls audiences and profiles daily at 09:30 New York time', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(20 * * * ? *)',
      ScheduleExpressionTimezone: 'Etc/UTC',
      Target: Match.objectLike({ Input: JSON.stringify({ task: 'logs' }) }),
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 9 * * ? *)',
      ScheduleExpressionTimezone: 'America/New_York',
      Target: Match.objectLike({ Input: JSON.stringify({ task: 'exports' }) }),
    });
  });

  test('the job queue redrives to a dead-letter queue, with a visibility timeout 6x the copier timeout', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 1800,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
      SqsManagedSseEnabled: true,
    });
    // The copy jobs' queue and DLQ, and the Parquet converter's.
    template.resourceCountIs('AWS::SQS::Queue', 4);
  });

  test('the copier consumes the queue with partial batch responses and a maximum concurrency', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });

  test('both functions run Node.js 22 on arm64 and share one request budget table, whatever the concurrency', () => {
    const functions = template.findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'nodejs22.x', Architectures: ['arm64'], Environment: { Variables: { SECRET_ID: {} } } },
    });
    expect(Object.keys(functions)).toHaveLength(2);
    const tableId = Object.keys(template.findResources('AWS::DynamoDB::Table')).find((id) =>
      id.includes('RequestBudgetTable'),
    );
    expect(tableId).toBeDefined();
    for (const fn of Object.values(functions) as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    }[]) {
      expect(fn.Properties.Environment.Variables).toMatchObject({
        RATE_PER_MINUTE: '50',
        BUDGET_TABLE: { Ref: tableId },
      });
      expect(fn.Properties.Environment.Variables).not.toHaveProperty('BUDGET_SHARES');
    }
  });

  test('the budget table is on-demand, expires stale items, and is not kept when the stack goes', () => {
    // The budget table and the queued-job ledger.
    template.resourceCountIs('AWS::DynamoDB::Table', 2);
    const budgetTables = Object.entries(template.findResources('AWS::DynamoDB::Table')).filter(([id]) =>
      id.includes('RequestBudgetTable'),
    );
    expect(budgetTables).toHaveLength(1);
    expect(budgetTables[0]?.[1]).toMatchObject({
      DeletionPolicy: 'Delete',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        // AWS Control Tower's CT.DYNAMODB.PR.1 and PR.2: point-in-time recovery, the AWS managed KMS key.
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      },
    });
    expect(JSON.stringify(budgetTables[0]?.[1])).not.toContain('KMSMasterKeyId');
    template.hasOutput('RequestBudgetTable', { Value: { Ref: Match.stringLikeRegexp('RequestBudgetTable') } });
  });

  test('each function may only read and conditionally write budget items of the table: GetItem and PutItem', () => {
    const budget = statements(template).filter((s) => JSON.stringify(s.Resource).includes('RequestBudgetTable'));
    expect(budget).toHaveLength(2);
    for (const statement of budget) {
      expect(statement).toMatchObject({
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/RequestBudgetTable/), 'Arn'] },
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['apikey#*'] } },
      });
    }
  });

  test('no IAM statement lets anything write to S3 outside the key prefix', () => {
    const writes = /^s3:(Put|Delete|Abort|Restore|\*|Replicate)/;
    const writeStatements = statements(template).filter((s) => asArray(s.Action).some((a) => writes.test(a)));
    expect(writeStatements.length).toBeGreaterThan(0);
    for (const statement of writeStatements) {
      for (const resource of asArray(statement.Resource)) {
        expect(JSON.stringify(resource)).toMatch(
          /\/localytics\/((_state\/(profile_changes\/)?|parquet\/|raw_logs\/|audiences\/|profiles\/|profile_changes\/)\*|_state\/exports_seen\.json)"\]\]\}$/,
        );
      }
    }
  });

  test('the planner may delete nothing but change-set records (leftovers of a copy already done)', () => {
    const plannerPolicy = Object.entries(template.findResources('AWS::IAM::Policy')).find(([id]) =>
      id.startsWith('SyncPlanner'),
    )?.[1] as { Properties: { PolicyDocument: { Statement: Statement[] } } };
    const deletes = plannerPolicy.Properties.PolicyDocument.Statement.filter((s) =>
      asArray(s.Action).some((a) => /^s3:(Delete|Abort)/.test(a)),
    );
    expect(deletes).toHaveLength(1);
    expect(deletes[0]?.Action).toBe('s3:DeleteObject');
    expect(JSON.stringify(deletes[0]?.Resource)).toMatch(/\/localytics\/_state\/profile_changes\/\*"\]\]\}$/);
  });

  test('listing is allowed only under the prefix', () => {
    const lists = statements(template).filter((s) => asArray(s.Action).includes('s3:ListBucket'));
    expect(lists).toHaveLength(3);
    const prefixes = lists.map((statement) => (statement as { Condition?: unknown }).Condition);
    // The planner and the copier list under the prefix, the Parquet converter only under its folder and the JSON
    // folders it reads (to tell a missing JSON object from a denied one).
    expect(prefixes).toEqual([
      { StringLike: { 's3:prefix': ['localytics/*'] } },
      { StringLike: { 's3:prefix': ['localytics/*'] } },
      {
        StringLike: {
          's3:prefix': ['parquet', 'raw_logs', 'audiences', 'profiles', 'profile_changes'].map(
            (folder) => `localytics/${folder}/*`,
          ),
        },
      },
    ]);
  });

  test('S3, least privilege (issue 21, item 4): the planner reads and writes only its state; the copier reads only _state/ and only creates data objects', () => {
    expect(s3Statements(template, 'SyncPlanner')).toEqual([
      {
        actions: ['s3:ListBucket'],
        resources: ['the bucket'],
        condition: { StringLike: { 's3:prefix': ['localytics/*'] } },
      },
      { actions: ['s3:GetObject', 's3:PutObject'], resources: ['_state/exports_seen.json'] },
      { actions: ['s3:DeleteObject'], resources: ['_state/profile_changes/*'] },
    ]);
    const data = ['raw_logs/*', 'audiences/*', 'profiles/*', 'profile_changes/*'];
    expect(s3Statements(template, 'SyncCopier')).toEqual([
      {
        actions: ['s3:ListBucket'],
        resources: ['the bucket'],
        condition: { StringLike: { 's3:prefix': ['localytics/*'] } },
      },
      { actions: ['s3:ListBucketMultipartUploads'], resources: ['the bucket'] },
      { actions: ['s3:GetObject', 's3:PutObject'], resources: ['_state/*'] },
      { actions: ['s3:DeleteObject'], resources: ['_state/profile_changes/*'] },
      // PutObject and CompleteMultipartUpload only with If-None-Match; the multipart calls that create nothing.
      { actions: ['s3:PutObject'], resources: data, condition: { Null: { 's3:if-none-match': 'false' } } },
      { actions: ['s3:PutObject'], resources: data, condition: { Bool: { 's3:ObjectCreationOperation': 'false' } } },
      { actions: ['s3:AbortMultipartUpload'], resources: data },
    ]);
  });

  test('the secret is passed by ARN only and only the two functions may read it', () => {
    const readers = statements(template).filter((s) => asArray(s.Action).includes('secretsmanager:GetSecretValue'));
    expect(readers).toHaveLength(2);
    const variables = Object.values(template.findResources('AWS::Lambda::Function')).map((fn) =>
      JSON.stringify((fn as { Properties: { Environment?: unknown } }).Properties.Environment ?? {}),
    );
    for (const env of variables) expect(env).not.toMatch(/apiSecret|API_SECRET|API_KEY/);
  });

  test('a created bucket is encrypted, private, versioned, TLS-only and aborts stale multipart uploads', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          { ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' }, BucketKeyEnabled: true },
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } })]),
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
  });

  test('a created bucket has Object Lock without default retention, access logs and EventBridge notifications', () => {
    const buckets = template.findResources('AWS::S3::Bucket');
    const [dataId, data] = Object.entries(buckets).find(([id]) => /^SyncBucket/.test(id)) ?? [];
    const [logsId, logs] = Object.entries(buckets).find(([id]) => /^SyncAccessLogsBucket/.test(id)) ?? [];
    expect(Object.keys(buckets)).toHaveLength(2);
    // Nothing is locked unless someone locks it: the copier still deletes its _state records, lifecycle rules expire.
    expect(data?.Properties).toMatchObject({
      ObjectLockEnabled: true,
      LoggingConfiguration: { DestinationBucketName: { Ref: logsId }, LogFilePrefix: 'localytics/' },
      NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } },
    });
    expect(data?.Properties.ObjectLockConfiguration).toBeUndefined();
    // S3 delivers access logs only to SSE-S3 buckets without Object Lock, through the log bucket's policy.
    expect(logs).toMatchObject({
      DeletionPolicy: 'Retain',
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        VersioningConfiguration: { Status: 'Enabled' },
      },
    });
    expect(logs?.Properties.ObjectLockEnabled).toBeUndefined();
    expect(logs?.Properties.AccessControl).toBeUndefined();
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logsId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'logging.s3.amazonaws.com' },
            Action: 's3:PutObject',
            Condition: { ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [dataId, 'Arn'] } } },
          }),
        ]),
      },
    });
  });

  test("the functions' log groups are kept a year, encrypted with the stack's rotated key, which CloudWatch Logs may use", () => {
    const groups = Object.values(template.findResources('AWS::Logs::LogGroup'));
    expect(groups).toHaveLength(3);
    const [keyId] = Object.keys(template.findResources('AWS::KMS::Key'));
    for (const group of groups) {
      expect(group).toMatchObject({ Properties: { RetentionInDays: 365, KmsKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } } });
    }
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: Match.anyValue() },
            Action: Match.arrayWith(['kms:Decrypt*', 'kms:GenerateDataKey*']),
            Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': Match.anyValue() } },
          }),
          Match.objectLike({
            Effect: 'Deny',
            Action: 'kms:CreateGrant',
            Condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
          }),
        ]),
      },
    });
  });

  test('a queued-job ledger of its own: on-demand, entries expire by TTL, deleted with the stack', () => {
    const ledgers = Object.entries(template.findResources('AWS::DynamoDB::Table')).filter(([id]) =>
      id.startsWith('SyncJobLedgerTable'),
    );
    expect(ledgers).toHaveLength(1);
    expect(ledgers[0]?.[1]).toMatchObject({
      DeletionPolicy: 'Delete',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      },
    });
  });

  test('each function may use exactly the ledger actions it calls, on the ledger only', () => {
    const dynamo = statements(template).filter(
      (s) =>
        asArray(s.Action).some((a) => a.startsWith('dynamodb:')) &&
        !JSON.stringify(s.Resource).includes('RequestBudgetTable'),
    );
    expect(dynamo.map((s) => asArray(s.Action).sort())).toEqual(
      expect.arrayContaining([
        ['dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:Scan'],
        ['dynamodb:DeleteItem', 'dynamodb:PutItem'],
      ]),
    );
    expect(dynamo).toHaveLength(2);
    for (const statement of dynamo) {
      expect(statement.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^SyncJobLedgerTable/), 'Arn'] });
    }
    // The planner and the copier (the Parquet converter has no ledger).
    const fns = template.findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'nodejs22.x', Environment: { Variables: { SECRET_ID: {} } } },
    });
    expect(Object.keys(fns)).toHaveLength(2);
    for (const fn of Object.values(fns) as { Properties: { Environment: { Variables: Record<string, unknown> } } }[]) {
      expect(fn.Properties.Environment.Variables).toMatchObject({
        LEDGER_TABLE: { Ref: expect.stringMatching(/^SyncJobLedgerTable/) },
        BACKFILL_DAYS: '30',
        QUEUE_AHEAD_MINUTES: '30',
      });
    }
  });

  test('the planner runs once the deployment is in place, asynchronously, and again when it changes', () => {
    const triggers = template.findResources('Custom::Trigger');
    const [trigger] = Object.values(triggers) as {
      Properties: Record<string, unknown>;
      DependsOn: string[];
    }[];
    expect(Object.keys(triggers)).toHaveLength(1);
    expect(trigger?.Properties).toMatchObject({
      HandlerArn: { Ref: expect.stringMatching(/^SyncPlannerCurrentVersion/) },
      InvocationType: 'Event',
      ExecuteOnHandlerChange: true,
    });
    // After the queue, the ledger, both functions with their permissions and the copier's event source.
    for (const prefix of [
      'SyncJobsQueue',
      'SyncJobLedgerTable',
      'SyncPlannerServiceRoleDefaultPolicy',
      'SyncCopierServiceRoleDefaultPolicy',
      'SyncCopierSqsEventSource',
    ]) {
      expect(trigger?.DependsOn.some((id) => id.startsWith(prefix))).toBe(true);
    }
  });

  test('tops the queue up from the backlog every 15 minutes', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0/15 * * * ? *)',
      Target: Match.objectLike({ Input: JSON.stringify({ task: 'topup' }) }),
    });
  });

  test('cdk-nag AwsSolutions finds nothing unacknowledged', () => {
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(
      report.violations.map(
        (violation) => `${violation.ruleName}: ${violation.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    ).toEqual([]);
    expect(report.success).toBe(true);
  });
});

test('cdk-nag catches a wildcard write outside the prefix (the check can fail)', () => {
  const app = testApp();
  const stack = new Stack(app, 'Nag');
  const sync = new LocalyticsExportSync(stack, 'Sync', {
    secret: Secret.fromSecretNameV2(stack, 'S', 'x'),
    apps: [APP_ID],
  });
  sync.copier.addToRolePolicy(
    new PolicyStatement({ actions: ['s3:PutObject'], resources: [sync.bucket.arnForObjects('*')] }),
  );
  app.synth();
  const report = new AwsSolutionsChecks(app).validateScope(app);
  expect(report.violations.map((violation) => violation.ruleName)).toEqual([
    expect.stringMatching(/^AwsSolutions-IAM5\[Resource::<SyncBucket.*\.Arn>\/\*\]$/),
  ]);
});

test('an existing bucket is imported, not created, and writes are scoped to its prefix', () => {
  const { template } = stackFromContext({ bucketName: 'customer-lake', keyPrefix: 'vendors/localytics' });
  template.resourceCountIs('AWS::S3::Bucket', 0);
  const puts = statements(template).filter((s) => asArray(s.Action).includes('s3:PutObject'));
  for (const resource of puts.flatMap((statement) => asArray(statement.Resource))) {
    expect(JSON.stringify(resource)).toContain(':s3:::customer-lake/vendors/localytics/');
  }
});

test('a budget table shared with another deployment is imported, by name or by ARN, not created', () => {
  const byName = stackFromContext({ budgetTable: 'staging-request-budget' }).template;
  // Only the deployment's own queued-job ledger is created.
  byName.resourceCountIs('AWS::DynamoDB::Table', 1);
  expect(Object.keys(byName.findResources('AWS::DynamoDB::Table'))).toEqual([
    expect.stringMatching(/^SyncJobLedgerTable/),
  ]);
  expect(JSON.stringify(statements(byName))).toContain(':table/staging-request-budget');
  const arn = 'arn:aws:dynamodb:eu-west-1:123456789012:table/production-request-budget';
  const byArn = stackFromContext({ budgetTable: arn }).template;
  byArn.resourceCountIs('AWS::DynamoDB::Table', 1);
  const apiFunctions = byArn.findResources('AWS::Lambda::Function', {
    Properties: { Environment: { Variables: { SECRET_ID: {} } } },
  });
  expect(Object.keys(apiFunctions)).toHaveLength(2);
  for (const fn of Object.values(apiFunctions) as {
    Properties: { Environment: { Variables: Record<string, unknown> } };
  }[]) {
    expect(fn.Properties.Environment.Variables.BUDGET_TABLE).toBe(arn);
  }
  expect(statements(byArn).filter((s) => JSON.stringify(s.Resource) === JSON.stringify(arn))).toHaveLength(2);
});

/** Each function's KMS statements: the key, the actions, and the service it may use them through. */
function kmsGrants(template: Template): Record<string, { key: unknown; actions: string[]; via: unknown }[]> {
  const roles = Object.fromEntries(
    Object.entries(template.findResources('AWS::Lambda::Function')).map(([id, fn]) => [
      (fn as { Properties: { Role: { 'Fn::GetAtt': [string] } } }).Properties.Role['Fn::GetAtt'][0],
      id.replace(/^Sync(Parquet)?/, '').replace(/[0-9A-F]{8}$/, ''),
    ]),
  );
  const grants: Record<string, { key: unknown; actions: string[]; via: unknown }[]> = {};
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy')) as {
    Properties: { Roles: { Ref: string }[]; PolicyDocument: { Statement: (Statement & { Condition?: unknown })[] } };
  }[]) {
    const fn = roles[policy.Properties.Roles[0]?.Ref ?? ''] ?? 'unknown';
    for (const statement of policy.Properties.PolicyDocument.Statement) {
      const actions = asArray(statement.Action);
      if (!actions.some((action) => action.startsWith('kms:'))) continue;
      const via = (statement.Condition as { StringEquals?: Record<string, unknown> } | undefined)?.StringEquals?.[
        'kms:ViaService'
      ];
      grants[fn] = [...(grants[fn] ?? []), { key: statement.Resource, actions: actions.sort(), via }];
    }
  }
  for (const list of Object.values(grants)) list.sort((a, b) => String(a.via).localeCompare(String(b.via)));
  return grants;
}

test('customer-managed keys are granted to each function for exactly what its calls need, only through S3 or DynamoDB', () => {
  const bucketKey = 'arn:aws:kms:eu-west-1:123456789012:key/1111aaaa-2222-bbbb-3333-cccc4444dddd';
  const budgetKey = 'arn:aws:kms:eu-west-1:123456789012:key/5555eeee-6666-ffff-7777-000088889999';
  const { template } = stackFromContext({
    bucketName: 'customer-lake',
    bucketKmsKeyArn: bucketKey,
    budgetTable: 'arn:aws:dynamodb:eu-west-1:123456789012:table/shared-budget',
    budgetTableKmsKeyArn: budgetKey,
  });
  // S3 under SSE-KMS: reads Decrypt, writes GenerateDataKey (multipart also Decrypts); DynamoDB: every call Decrypts.
  const s3 = { key: bucketKey, actions: ['kms:Decrypt', 'kms:GenerateDataKey'], via: 's3.eu-west-1.amazonaws.com' };
  const dynamoDb = { key: budgetKey, actions: ['kms:Decrypt'], via: 'dynamodb.eu-west-1.amazonaws.com' };
  expect(kmsGrants(template)).toEqual({ Planner: [dynamoDb, s3], Copier: [dynamoDb, s3], Function: [s3] });
});

test('without customer-managed keys no function may use any KMS key (the created tables and bucket use AWS managed keys)', () => {
  expect(kmsGrants(stackFromContext().template)).toEqual({});
});

describe('functions in a VPC (vpcId, vpcSubnetIds)', () => {
  const subnets = ['subnet-0123456789abcdef0', 'subnet-0fedcba9876543210'];
  const network = { vpcId: 'vpc-0123456789abcdef0', vpcSubnetIds: subnets.join(',') };
  const vpcConfigs = (template: Template) =>
    Object.values(template.findResources('AWS::Lambda::Function')).map(
      (fn) => (fn as { Properties: { VpcConfig?: unknown } }).Properties.VpcConfig,
    );

  test("every function, CDK's trigger provider included, runs in the subnets, allowed HTTPS out and nothing else", () => {
    const { template } = stackFromContext(network);
    const [groupId] = Object.keys(template.findResources('AWS::EC2::SecurityGroup'));
    const configs = vpcConfigs(template);
    expect(configs).toHaveLength(4);
    for (const config of configs) {
      expect(config).toEqual({ SubnetIds: subnets, SecurityGroupIds: [{ 'Fn::GetAtt': [groupId, 'GroupId'] }] });
    }
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      VpcId: network.vpcId,
      SecurityGroupEgress: [Match.objectLike({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 })],
    });
    expect(JSON.stringify(template.findResources('AWS::EC2::SecurityGroup'))).not.toContain('Ingress');
    // Lambda manages the functions' network interfaces with the roles' AWSLambdaVPCAccessExecutionRole.
    const roles = Object.values(template.findResources('AWS::IAM::Role')).filter((role) =>
      JSON.stringify(role).includes('lambda.amazonaws.com'),
    );
    expect(roles).toHaveLength(4);
    for (const role of roles) expect(JSON.stringify(role)).toContain('AWSLambdaVPCAccessExecutionRole');
  });

  test('given security groups, the functions use them and none is created', () => {
    const { template } = stackFromContext({ ...network, vpcSecurityGroupIds: 'sg-0123456789abcdef0' });
    template.resourceCountIs('AWS::EC2::SecurityGroup', 0);
    for (const config of vpcConfigs(template)) {
      expect(config).toEqual({ SubnetIds: subnets, SecurityGroupIds: ['sg-0123456789abcdef0'] });
    }
  });

  test('without them nothing runs in a VPC', () => {
    expect(vpcConfigs(stackFromContext().template)).toEqual([undefined, undefined, undefined, undefined]);
  });
});

describe('the app list', () => {
  const [first, second, third] = syntheticApps(3) as [string, string, string];
  type FunctionResource = {
    Properties: { Code: { S3Key: string }; Environment: { Variables: Record<string, unknown> } };
  };
  const functionOf = (template: Template, name: 'Planner' | 'Copier') => {
    const [found] = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([id]) =>
      id.startsWith(`Sync${name}`),
    );
    if (!found) throw new Error(`no ${name}`);
    return found[1] as FunctionResource;
  };
  const bundledAppList = (app: ReturnType<typeof testApp>, stackName: string, template: Template) => {
    const dir = assetDirectories(app.outdir, stackName).get(functionOf(template, 'Planner').Properties.Code.S3Key);
    return JSON.parse(readFileSync(path.join(dir as string, 'apps.json'), 'utf8')) as string[];
  };
  const triggerVersion = (template: Template) =>
    (Object.values(template.findResources('Custom::Trigger'))[0] as { Properties: { HandlerArn: unknown } }).Properties
      .HandlerArn;

  test("travels in the planner's code, each app once, in lower case; the environment only names the file", () => {
    const { app, template } = stackFromContext({
      apps: [first, second.toUpperCase(), first, ` ${second} `],
      parquet: false,
    });
    expect(bundledAppList(app, 'Test', template)).toEqual([first, second].sort());
    const planner = functionOf(template, 'Planner').Properties.Environment.Variables;
    expect(planner).toMatchObject({ APPS_FILE: 'apps.json', LAG_ALARM_HOURS: '6' });
    expect(planner).not.toHaveProperty('APPS');
    // The copier copies what it is given: no list at all.
    const copier = functionOf(template, 'Copier');
    expect(copier.Properties.Environment.Variables).not.toHaveProperty('APPS');
    expect(copier.Properties.Environment.Variables).not.toHaveProperty('APPS_FILE');
    const copierDir = assetDirectories(app.outdir, 'Test').get(copier.Properties.Code.S3Key);
    expect(existsSync(path.join(copierDir as string, 'index.mjs'))).toBe(true);
    expect(existsSync(path.join(copierDir as string, 'apps.json'))).toBe(false);
  });

  test("a changed list changes the planner's code hash, hence the version the deployment trigger runs; not the copier's", () => {
    const before = stackFromContext({ apps: [first, second], parquet: false }).template;
    const added = stackFromContext({ apps: [first, second, third], parquet: false }).template;
    expect(functionOf(added, 'Planner').Properties.Code.S3Key).not.toBe(
      functionOf(before, 'Planner').Properties.Code.S3Key,
    );
    expect(triggerVersion(added)).not.toEqual(triggerVersion(before));
    expect(functionOf(added, 'Copier').Properties.Code.S3Key).toBe(functionOf(before, 'Copier').Properties.Code.S3Key);
    // The same list in another order or case is the same list: nothing re-plans.
    const same = stackFromContext({ apps: [second.toUpperCase(), first, second], parquet: false }).template;
    expect(functionOf(same, 'Planner').Properties.Code.S3Key).toBe(functionOf(before, 'Planner').Properties.Code.S3Key);
  });

  test('two stacks of one app with different lists each bundle their own', () => {
    const app = testApp({ context: { secretName: 'localytics/api' } });
    const lists = [[first], [second, third]];
    const stacks = lists.map((apps, index) => {
      const stack = new Stack(app, `Lists${index}`);
      new LocalyticsExportSync(stack, 'Sync', {
        secret: Secret.fromSecretNameV2(stack, 'S', 'x'),
        apps,
        parquet: false,
      });
      return stack;
    });
    for (const [index, stack] of stacks.entries()) {
      expect(bundledAppList(app, stack.stackName, Template.fromStack(stack))).toEqual(lists[index]?.sort());
    }
  });
});

describe('apps from a file (context appsFile)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lsync-apps-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const appsFile = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const configOf = (context: Record<string, unknown>) =>
    readStackConfig(testApp({ context: { secretName: 'localytics/api', ...context } }).node);
  const [first, second] = syntheticApps(2) as [string, string];

  test('one ID a line; blank lines and # comments (whole or end of line) are left out', () => {
    const file = appsFile('apps.txt', `# production apps\n${first}\n\n  ${second.toUpperCase()}  # the web app\r\n`);
    expect(configOf({ appsFile: file }).apps).toEqual([first, second]);
  });

  test('a bad line names the file and the line', () => {
    const file = appsFile('bad.txt', `${first}\n# next\nnot-an-app\n`);
    expect(() => configOf({ appsFile: file })).toThrow(
      `context "appsFile" ${file} line 3: "not-an-app" is not a Localytics app ID`,
    );
  });

  test.each([
    ['both apps and appsFile', { apps: [first], appsFile: 'apps.txt' }, /context "apps" and "appsFile" are both set/],
    [
      'a missing file',
      { appsFile: '/nonexistent/apps.txt' },
      /context "appsFile" \/nonexistent\/apps\.txt cannot be read/,
    ],
  ])('%s is an error', (_, context, message) => {
    expect(() => configOf(context)).toThrow(message);
  });

  test('a file with no ID is an error', () => {
    const file = appsFile('empty.txt', '# none yet\n\n');
    expect(() => configOf({ appsFile: file })).toThrow(`context "appsFile" ${file} lists no app ID`);
  });

  test('`-c apps=` takes a comma list of any length', () => {
    const apps = syntheticApps(3000);
    expect(configOf({ apps: apps.join(',') }).apps).toEqual(apps);
  });
});

describe('configuration errors name what is wrong', () => {
  test.each([
    [{ apps: ['not-an-app'] }, /apps: "not-an-app" is not a Localytics app ID/],
    [{ apps: [] }, /apps must list at least one Localytics app ID when the logs dataset is synced/],
    [{ copierConcurrency: 1 }, /context "copierConcurrency"/],
    [{ requestsPerMinute: 12.5 }, /context "requestsPerMinute" must be a positive whole number/],
    [{ requestsPerMinute: '0' }, /context "requestsPerMinute" must be a positive whole number/],
    // Not read as numbers by accident (a review found these accepted as 1 and 50).
    [{ requestsPerMinute: true }, /context "requestsPerMinute" must be a whole number/],
    [{ requestsPerMinute: '0x32' }, /context "requestsPerMinute" must be a whole number/],
    [{ requestsPerMinute: [50] }, /context "requestsPerMinute" must be a whole number/],
    [{ requestsPerMinute: 1e6 }, /context "requestsPerMinute" must be at most 1000/],
    [{ budgetTable: 'a' }, /context "budgetTable" must be a DynamoDB table name or table ARN/],
    [{ datasets: 'logs,events' }, /context "datasets"/],
    [{ bucketName: 'Bad_Bucket' }, /context "bucketName" is not a valid S3 bucket name/],
    [{ exportsScheduleTimeZone: 'Mars/Olympus' }, /exportsScheduleTimeZone" Mars\/Olympus is not an IANA time zone/],
    [{ keyPrefix: '../x' }, /keyPrefix "..\/x" must be/],
    // An IAM wildcard in the prefix would widen every permission scoped to it (issue 10, item 9).
    [{ keyPrefix: 'data/*' }, /keyPrefix "data\/\*" must be/],
    [{ keyPrefix: 'a?c' }, /keyPrefix "a\?c" must be/],
    [{ lagAlarmHours: 7 }, /lagAlarmHours \(7\) must be less than lookbackHours \+ logLagHours \(7\)/],
    [{ queueAheadMinutes: 200 }, /context "queueAheadMinutes"/],
    [
      { bucketKmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:alias/lake' },
      /context "bucketKmsKeyArn" must be a KMS key ARN/,
    ],
    [
      { budgetTableKmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/abcd' },
      /context "budgetTableKmsKeyArn" needs context "budgetTable"/,
    ],
    [{ vpcSubnetIds: 'subnet-0123456789abcdef0' }, /context "vpcSubnetIds" needs context "vpcId"/],
    [{ vpcId: 'vpc-0123456789abcdef0' }, /context "vpcId" needs context "vpcSubnetIds"/],
    [{ vpcId: 'vpc-1' }, /context "vpcId" must be a VPC ID/],
    [
      { vpcId: 'vpc-0123456789abcdef0', vpcSubnetIds: 'subnet-0123456789abcdef0,sg-01234567' },
      /context "vpcSubnetIds.1" must be a subnet ID/,
    ],
    [
      { vpcId: 'vpc-0123456789abcdef0', vpcSubnetIds: 'subnet-0123456789abcdef0', vpcSecurityGroupIds: 'sg-1' },
      /context "vpcSecurityGroupIds.0" must be a security group ID/,
    ],
    [{ vpcSecurityGroupIds: 'sg-0123456789abcdef0' }, /context "vpcSecurityGroupIds" needs context "vpcSubnetIds"/],
    // The Basic credentials would travel in clear (issue 21, item 2).
    [{ apiUrl: 'http://api.example.com' }, /context "apiUrl" must use https \(plain http is allowed only on loopback/],
  ])('%j', (context, message) => {
    expect(() => stackFromContext(context)).toThrow(message);
  });

  test('a missing secret name', () => {
    const app = testApp({ context: { apps: [APP_ID] } });
    expect(() => readStackConfig(app.node)).toThrow(/context "secretName"/);
  });

  test('construct props are checked too', () => {
    const stack = new Stack(testApp(), 'Props');
    const props: LocalyticsExportSyncProps = {
      secret: Secret.fromSecretNameV2(stack, 'S', 'x'),
      apps: [APP_ID],
      batchSize: 11,
    };
    expect(() => new LocalyticsExportSync(stack, 'Sync', props)).toThrow(
      /batchSize must be a whole number from 1 to 10, got 11/,
    );
    expect(
      () =>
        new LocalyticsExportSync(stack, 'Sync2', {
          ...props,
          batchSize: 5,
          bucket: Bucket.fromBucketName(stack, 'B', 'b-b-b'),
          backfillDays: 31,
        }),
    ).toThrow(/backfillDays must be from 1 to 30/);
    expect(() => new LocalyticsExportSync(stack, 'Sync3', { ...props, batchSize: 5, requestsPerMinute: 2.5 })).toThrow(
      /requestsPerMinute must be a positive whole number, got 2.5/,
    );
    expect(
      () => new LocalyticsExportSync(stack, 'Sync4', { ...props, batchSize: 5, apiUrl: 'http://api.example.com' }),
    ).toThrow(/apiUrl must use https \(plain http is allowed only on loopback/);
  });
});

test('parked jobs outlive the job queue: the dead-letter queue keeps messages longer (SQS keeps the first enqueue time)', () => {
  const { template } = stackFromContext();
  const queues = Object.values(template.findResources('AWS::SQS::Queue')) as {
    Properties: { MessageRetentionPeriod: number; RedrivePolicy?: unknown };
  }[];
  const jobQueue = queues.find((queue) => queue.Properties.RedrivePolicy);
  const deadLetterQueue = queues.find((queue) => !queue.Properties.RedrivePolicy);
  expect(jobQueue?.Properties.MessageRetentionPeriod).toBe(7 * 86_400);
  expect(deadLetterQueue?.Properties.MessageRetentionPeriod).toBe(14 * 86_400);
});

test('a created bucket expires old versions of _state records (they hold presigned URLs)', () => {
  const { template } = stackFromContext({ keyPrefix: 'lake' });
  template.hasResourceProperties('AWS::S3::Bucket', {
    LifecycleConfiguration: {
      Rules: Match.arrayWith([
        Match.objectLike({
          Prefix: 'lake/_state/',
          NoncurrentVersionExpiration: { NoncurrentDays: 1 },
          ExpiredObjectDeleteMarker: true,
          Status: 'Enabled',
        }),
      ]),
    },
  });
});
