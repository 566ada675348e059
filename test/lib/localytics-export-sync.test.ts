import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, test } from 'vitest';
import { readStackConfig } from '../../lib/config.js';
import { LocalyticsExportSync, type LocalyticsExportSyncProps } from '../../lib/localytics-export-sync.js';
import { LocalyticsExportSyncStack } from '../../lib/localytics-export-sync-stack.js';
import { testApp } from '../support/cdk.js';

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
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false },
      },
    });
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
          /\/localytics\/((_state\/(profile_changes\/)?|parquet\/)?\*|_state\/exports_seen\.json)"\]\]\}$/,
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
    // The planner and the copier list under the prefix, the Parquet converter only under its folder.
    expect(prefixes).toEqual([
      { StringLike: { 's3:prefix': ['localytics/*'] } },
      { StringLike: { 's3:prefix': ['localytics/*'] } },
      { StringLike: { 's3:prefix': ['localytics/parquet/*'] } },
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
      BucketEncryption: Match.objectLike({}),
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
  expect(JSON.stringify(puts)).toContain(':s3:::customer-lake/vendors/localytics/*');
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

test('a customer-managed bucket key gets grants: encrypt for the copier, decrypt for the planner', () => {
  const { template } = stackFromContext({
    bucketName: 'customer-lake',
    bucketKmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/abcd',
  });
  const kms = statements(template).filter((s) => asArray(s.Action).some((a) => a.startsWith('kms:')));
  expect(kms.map((s) => asArray(s.Action).sort())).toEqual(
    expect.arrayContaining([
      expect.arrayContaining(['kms:Decrypt']),
      expect.arrayContaining(['kms:Encrypt', 'kms:GenerateDataKey*']),
    ]),
  );
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
