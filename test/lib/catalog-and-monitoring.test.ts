import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, test } from 'vitest';
import { TABLES } from '../../functions/core/tables.js';
import { Catalog } from '../../lib/catalog.js';
import { readStackConfig } from '../../lib/config.js';
import { LocalyticsExportSyncStack } from '../../lib/localytics-export-sync-stack.js';
import { testApp } from '../support/cdk.js';
import { syntheticApps } from '../support/synthetic-apps.js';

const APPS = [
  '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8',
  '91e6f7bf1c6004b029c3082-602f5774-ae2b-11e2-0c2c-004a77f8b47f',
];

function synth(context: Record<string, unknown> = {}) {
  const app = testApp({ context: { secretName: 'localytics/api', apps: APPS, bucketName: 'lake-bucket', ...context } });
  const stack = new LocalyticsExportSyncStack(app, 'Test', { config: readStackConfig(app.node) });
  return { app, template: Template.fromStack(stack) };
}

type TableInput = {
  Name: string;
  Parameters: Record<string, string>;
  PartitionKeys: { Name: string; Type: string }[];
  StorageDescriptor: {
    Location: string;
    Columns: { Name: string; Type: string }[];
    SerdeInfo: { SerializationLibrary: string; Parameters: Record<string, string> };
  };
};

/** The data tables (the analytics views, Glue tables too, are checked in analytics-views.test.ts). */
function tables(template: Template): Record<string, TableInput> {
  const found = template.findResources('AWS::Glue::Table', {
    Properties: { TableInput: { TableType: 'EXTERNAL_TABLE' } },
  });
  return Object.fromEntries(
    Object.values(found).map((resource) => {
      const input = (resource as { Properties: { TableInput: TableInput } }).Properties.TableInput;
      return [input.Name, input];
    }),
  );
}

describe('the Glue catalog', () => {
  const { template } = synth();
  const byName = tables(template);

  test('has a database and the four tables, and their Parquet twins', () => {
    template.hasResourceProperties('AWS::Glue::Database', { DatabaseInput: { Name: 'localytics' } });
    expect(Object.keys(byName).sort()).toEqual([
      'audiences',
      'audiences_parquet',
      'profile_changes',
      'profile_changes_parquet',
      'profiles',
      'profiles_parquet',
      'raw_logs',
      'raw_logs_parquet',
    ]);
  });

  test('raw_logs projects app_uuid from the configured apps, dt as dates and hour as two-digit integers, like the keys', () => {
    const raw = byName.raw_logs as TableInput;
    expect(raw.PartitionKeys).toEqual([
      { Name: 'app_uuid', Type: 'string' },
      { Name: 'dt', Type: 'string' },
      { Name: 'hour', Type: 'int' },
    ]);
    expect(raw.Parameters).toMatchObject({
      'projection.enabled': 'true',
      'projection.app_uuid.type': 'enum',
      'projection.app_uuid.values': APPS.join(','),
      'projection.dt.type': 'date',
      'projection.dt.format': 'yyyy-MM-dd',
      'projection.dt.range': '2020-01-01,NOW',
      'projection.hour.type': 'integer',
      'projection.hour.range': '0,23',
      'projection.hour.digits': '2',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Athena's location template syntax, not a JS template
      'storage.location.template': 's3://lake-bucket/localytics/raw_logs/app_uuid=${app_uuid}/dt=${dt}/hour=${hour}/',
    });
  });

  test('every table projects exactly the partition folders the sync writes', () => {
    expect(byName.audiences?.Parameters['storage.location.template']).toBe(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Athena's location template syntax, not a JS template
      's3://lake-bucket/localytics/audiences/audience_id=${audience_id}/identifier_type=${identifier_type}/dt=${dt}/',
    );
    expect(byName.audiences?.Parameters['projection.identifier_type.values']).toBe('idfa,gaid,email,customer_id');
    expect(byName.profiles?.Parameters['storage.location.template']).toBe(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Athena's location template syntax, not a JS template
      's3://lake-bucket/localytics/profiles/profiledb_id=${profiledb_id}/dt=${dt}/',
    );
    expect(byName.profile_changes?.Parameters['projection.profiledb_id.type']).toBe('injected');
  });

  test('reads JSON lines with the OpenX SerDe, tolerating malformed lines and mapping dotted keys', () => {
    const profiles = byName.profiles as TableInput;
    expect(profiles.StorageDescriptor.SerdeInfo).toEqual({
      SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
      Parameters: expect.objectContaining({ 'ignore.malformed.json': 'true', 'mapping.ll_language': '_ll.language' }),
    });
  });

  test('raw_logs has the documented sample fields including at_millis and push_status, from the shared definition', () => {
    const columns = (byName.raw_logs as TableInput).StorageDescriptor.Columns.map((column) => column.Name);
    expect(columns).toEqual(TABLES[0]?.columns.map((column) => column.name));
    expect(columns).toEqual(
      expect.arrayContaining(['at_millis', 'push_status', 'advertising_id', 'session_uuid', 'customer_ids']),
    );
  });
});

type Widget = { type: string; properties: { title?: string; metrics?: unknown; query?: string } };

/** The dashboard's widgets, each token of its body shown as its JSON (`{"Ref":"..."}`). */
function dashboardWidgets(template: Template): Widget[] {
  const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as {
    Properties: { DashboardBody: { 'Fn::Join': [string, unknown[]] } };
  }[];
  const parts = dashboard?.Properties.DashboardBody['Fn::Join'][1] ?? [];
  const body = parts
    .map((part) => (typeof part === 'string' ? part : JSON.stringify(JSON.stringify(part)).slice(1, -1)))
    .join('');
  return (JSON.parse(body) as { widgets: Widget[] }).widgets;
}

test("an app list longer than a Glue table parameter holds stops the synth, naming Glue's limit", () => {
  const stack = new Stack(testApp(), 'Catalog');
  const bucket = Bucket.fromBucketName(stack, 'Lake', 'lake-bucket');
  // 8,393 app IDs of 60 characters fit in 512,000; 9,000 do not.
  expect(() => new Catalog(stack, 'Fits', { bucket, keyPrefix: 'l', apps: syntheticApps(8393) })).not.toThrow();
  expect(() => new Catalog(stack, 'TooMany', { bucket, keyPrefix: 'l', apps: syntheticApps(9000) })).toThrow(
    'apps: 9000 app IDs make the app_uuid projection 548999 characters; a Glue table parameter holds 512000',
  );
});

describe('monitoring', () => {
  test('alarms on a non-empty DLQ, copier and planner errors, the worst lag, nothing copied in 24 h, throttling and stale exports', () => {
    const { template } = synth();
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (alarm) => (alarm as { Properties: Record<string, unknown> }).Properties,
    );
    // + the Parquet converter's failures, errors and dead-letter queue
    expect(alarms).toHaveLength(7 + 3);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    // The worst lag of any app, missing data breaching: a planner that stops reporting alarms.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'maxLagHours',
      Namespace: 'LocalyticsExportSync',
      Dimensions: [{ Name: 'service', Value: 'localytics-export-sync' }],
      Statistic: 'Maximum',
      Period: 3600,
      Threshold: 6,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'breaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'filesCopied',
      Period: 86_400,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([Match.objectLike({ Expression: 'IF(requests > 0, throttled / requests, 0)' })]),
      Threshold: 0.2,
    });
    // Audience and profile exports that vanish or stop refreshing (issue 10, item 10).
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'exportConcerns',
      Namespace: 'LocalyticsExportSync',
      Statistic: 'Maximum',
      Period: 86_400,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    // Every alarm notifies the alarm topic, even with nobody subscribed (AWS Control Tower's CT.CLOUDWATCH.PR.1).
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    const topic = Object.keys(template.findResources('AWS::SNS::Topic'))[0];
    expect(alarms.map((alarm) => alarm.AlarmActions)).toEqual(alarms.map(() => [{ Ref: topic }]));
  });

  test('without audiences and profiles there is no export alarm', () => {
    const { template } = synth({ datasets: 'logs' });
    expect(JSON.stringify(template.findResources('AWS::CloudWatch::Alarm'))).not.toContain('exportConcerns');
  });

  test('the alarms and the dashboard do not grow with the number of apps', () => {
    const counts = (template: Template) => ({
      alarms: Object.keys(template.findResources('AWS::CloudWatch::Alarm')).length,
      resources: Object.keys(template.toJSON().Resources).length,
      dashboard: JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard')).length,
    });
    const few = counts(synth().template);
    const many = counts(synth({ apps: syntheticApps(300) }).template);
    expect(many).toEqual(few);
    expect(few.alarms).toBe(10);
  });

  test('a dashboard shows throughput, the lag, throttling, failures, queue depth and the most lagging apps', () => {
    const { template } = synth();
    const widgets = dashboardWidgets(template);
    const titles = widgets.map((widget) => widget.properties.title);
    expect(titles).toEqual(
      expect.arrayContaining([
        'Throughput',
        'Raw logs lag (hours)',
        'API requests and throttling',
        'Failures',
        'Queue depth',
        'Most lagging apps (hours behind, latest planner run)',
      ]),
    );
    const lag = widgets.find((widget) => widget.properties.title === 'Raw logs lag (hours)');
    expect(JSON.stringify(lag?.properties.metrics)).toContain('"maxLagHours"');
    expect(JSON.stringify(lag?.properties.metrics)).toContain('"appsLagging"');
    // A Logs Insights table over the planner's log group: the latest lag of each app, worst first.
    const plannerLogs = Object.keys(template.findResources('AWS::Logs::LogGroup')).find((id) =>
      id.startsWith('SyncPlanner'),
    );
    const apps = widgets.find((widget) => widget.type === 'log');
    expect(apps?.properties.query).toBe(
      `SOURCE '{"Ref":"${plannerLogs}"}' | filter message = "app lag"\n| stats latest(lagHours) as lagHours by app\n| sort lagHours desc\n| limit 50`,
    );
  });

  test('an alarm email subscribes to the alarm topic, which every alarm notifies and requires TLS; cdk-nag stays clean', () => {
    const { app, template } = synth({ alarmEmail: 'data-team@example.com' });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'data-team@example.com' });
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as {
      Properties: { AlarmActions?: unknown[] };
    }[];
    expect(alarms.every((alarm) => (alarm.Properties.AlarmActions ?? []).length === 1)).toBe(true);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    expect(new AwsSolutionsChecks(app).validateScope(app).violations).toEqual([]);
  });

  test('without raw logs there is no raw_logs table and no lag alarm', () => {
    const { template } = synth({ datasets: 'audiences,profiles', apps: [] });
    expect(Object.keys(tables(template)).sort()).toEqual([
      'audiences',
      'audiences_parquet',
      'profile_changes',
      'profile_changes_parquet',
      'profiles',
      'profiles_parquet',
    ]);
    expect(JSON.stringify(template.findResources('AWS::CloudWatch::Alarm'))).not.toContain('LagHours');
    expect(JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'))).not.toContain('app lag');
  });
});
