import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { describe, expect, test } from 'vitest';
import { TABLES } from '../../functions/core/tables.js';
import { readStackConfig } from '../../lib/config.js';
import { LocalyticsExportSyncStack } from '../../lib/localytics-export-sync-stack.js';
import { ParquetConverter } from '../../lib/parquet-converter.js';
import { testApp } from '../support/cdk.js';
import { tempDir } from '../support/temp.js';

const APP_ID = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';
function synth(context: Record<string, unknown> = {}) {
  const app = testApp({
    context: {
      // As the CDK CLI sets it: resources name their asset directories (aws:asset:path).
      'aws:cdk:enable-asset-metadata': true,
      secretName: 'localytics/api',
      apps: [APP_ID],
      bucketName: 'lake-bucket',
      ...context,
    },
  });
  const stack = new LocalyticsExportSyncStack(app, 'Test', { config: readStackConfig(app.node) });
  return { app, stack, outdir: app.outdir, template: Template.fromStack(stack) };
}

type Resource = { Properties: Record<string, unknown>; Metadata?: Record<string, string> };
type TableInput = {
  Name: string;
  Parameters: Record<string, string>;
  PartitionKeys: unknown[];
  StorageDescriptor: Record<string, unknown> & { Columns: unknown[]; Location: string };
};

const tables = (template: Template): Record<string, TableInput> =>
  Object.fromEntries(
    Object.values(template.findResources('AWS::Glue::Table')).map((resource) => {
      const input = (resource as { Properties: { TableInput: TableInput } }).Properties.TableInput;
      return [input.Name, input];
    }),
  );

function converter(template: Template): [string, Resource] {
  const found = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([, fn]) =>
    JSON.stringify((fn as Resource).Properties.Environment ?? {}).includes('DUCKDB_MEMORY_LIMIT_MB'),
  );
  expect(found).toHaveLength(1);
  return found[0] as [string, Resource];
}

/** The IAM statements of the policies attached to a function's role. */
function statementsOf(template: Template, functionId: string): { Action: unknown; Resource: unknown }[] {
  const fn = template.toJSON().Resources[functionId] as { Properties: { Role: { 'Fn::GetAtt': [string] } } };
  const role = fn.Properties.Role['Fn::GetAtt'][0];
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => JSON.stringify((policy as Resource).Properties.Roles).includes(role))
    .flatMap(
      (policy) =>
        ((policy as Resource).Properties.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] })
          .Statement,
    );
}

describe('the Parquet layer (on by default)', () => {
  const { template, outdir } = synth();
  const [converterId, fn] = converter(template);

  test('each table has a <table>_parquet twin: Parquet SerDe, same columns, same partition projection', () => {
    const byName = tables(template);
    for (const table of TABLES) {
      const json = byName[table.name] as TableInput;
      const parquet = byName[`${table.name}_parquet`] as TableInput;
      const location = `s3://lake-bucket/localytics/parquet/${table.folder}/`;
      expect(parquet.StorageDescriptor).toMatchObject({
        Location: location,
        InputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
        OutputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
        SerdeInfo: { SerializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
        Columns: json.StorageDescriptor.Columns,
      });
      expect(parquet.PartitionKeys).toEqual(json.PartitionKeys);
      const { classification, compressionType, ...jsonProjection } = json.Parameters;
      expect(parquet.Parameters).toEqual({
        ...jsonProjection,
        classification: 'parquet',
        'storage.location.template': jsonProjection['storage.location.template']?.replace(
          `s3://lake-bucket/localytics/${table.folder}/`,
          location,
        ),
      });
      expect(classification).toBe('json');
      expect(compressionType).toBe('gzip');
    }
  });

  test('the converter runs on arm64 with 1 GiB, 10 GiB of /tmp and the DuckDB binding layer, one file per invocation', () => {
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      MemorySize: 1024,
      EphemeralStorage: { Size: 10240 },
      Layers: [{ Ref: expect.stringMatching(/DuckDbBinding/) }],
      Environment: { Variables: expect.objectContaining({ DUCKDB_MEMORY_LIMIT_MB: '409', DUCKDB_THREADS: '1' }) },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: converterId },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 3600,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    });
    template.hasResourceProperties('AWS::Lambda::LayerVersion', { CompatibleArchitectures: ['arm64'] });
  });

  test('the copier gets the conversion queue URL and may only send to it', () => {
    const copier = Object.entries(template.findResources('AWS::Lambda::Function')).find(([, resource]) =>
      JSON.stringify((resource as Resource).Properties.Description ?? '').includes('Copies'),
    ) as [string, Resource];
    const variables = (copier[1].Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables.CONVERT_QUEUE_URL).toEqual({ Ref: expect.stringMatching(/ParquetQueue/) });
    const sends = statementsOf(template, copier[0]).filter((s) => JSON.stringify(s.Resource).includes('ParquetQueue'));
    expect(sends).toEqual([expect.objectContaining({ Action: expect.arrayContaining(['sqs:SendMessage']) })]);
  });

  test('IAM: the converter reads the JSON folders and only creates objects under parquet/, nothing else in S3', () => {
    const s3 = statementsOf(template, converterId).filter((s) => JSON.stringify(s.Action).includes('s3:'));
    const shapes = s3.map((statement) => ({
      actions: [statement.Action].flat().sort(),
      resources: [statement.Resource]
        .flat()
        .map((resource) => JSON.stringify(resource).replace(/.*lake-bucket(\/localytics\/[^"]*)?".*/, '$1')),
      condition: (statement as { Condition?: unknown }).Condition,
    }));
    expect(shapes).toEqual([
      {
        actions: ['s3:GetObject'],
        resources: TABLES.map((table) => `/localytics/${table.folder}/*`),
        condition: undefined,
      },
      {
        actions: ['s3:ListBucket'],
        resources: [''],
        condition: {
          StringLike: {
            's3:prefix': ['localytics/parquet/*', ...TABLES.map((table) => `localytics/${table.folder}/*`)],
          },
        },
      },
      { actions: ['s3:ListBucketMultipartUploads'], resources: [''], condition: undefined },
      // PutObject and CompleteMultipartUpload only with If-None-Match: a Parquet object is created, never replaced.
      {
        actions: ['s3:PutObject'],
        resources: ['/localytics/parquet/*'],
        condition: { Null: { 's3:if-none-match': 'false' } },
      },
      {
        actions: ['s3:PutObject'],
        resources: ['/localytics/parquet/*'],
        condition: { Bool: { 's3:ObjectCreationOperation': 'false' } },
      },
      { actions: ['s3:AbortMultipartUpload'], resources: ['/localytics/parquet/*'], condition: undefined },
    ]);
    expect(JSON.stringify(statementsOf(template, converterId))).not.toMatch(/secretsmanager|s3:DeleteObject/);
  });

  test('alarms on conversion failures, converter errors and a non-empty conversion DLQ; the dashboard shows it', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'conversionFailures',
      Namespace: 'LocalyticsExportSync',
      Threshold: 0,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: converterId } }],
    });
    const dashboard = JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'));
    for (const text of ['Parquet layer', 'filesConverted', 'Conversion duration']) expect(dashboard).toContain(text);
  });

  test('the synthesized layer carries the linux-arm64 binding, and the bundle loads it from there', () => {
    const resources = template.toJSON().Resources as Record<string, Resource & { Type: string }>;
    const layer = Object.values(resources).find((resource) => resource.Type === 'AWS::Lambda::LayerVersion');
    const layerDir = path.join(outdir, layer?.Metadata?.['aws:asset:path'] as string);
    const binding = path.join(layerDir, 'nodejs/node_modules/@duckdb/node-bindings-linux-arm64');
    for (const file of ['duckdb.node', 'libduckdb.so']) {
      const header = readFileSync(path.join(binding, file)).subarray(0, 20);
      expect(header.subarray(0, 4).toString('latin1'), file).toBe('\x7fELF');
      // e_machine 183: AArch64
      expect(header.readUInt16LE(18), file).toBe(183);
    }
    const bundleDir = path.join(outdir, fn.Metadata?.['aws:asset:path'] as string);
    const bundle = readFileSync(path.join(bundleDir, 'index.mjs'), 'utf8');
    expect(bundle).toContain('"@duckdb/node-bindings-linux-arm64/duckdb.node"');
    expect(readdirSync(bundleDir).filter((file) => file.endsWith('.node') || file.endsWith('.so'))).toEqual([]);
  });
});

test('parquet=false leaves out the converter, its queues and the Parquet tables', () => {
  const { template } = synth({ parquet: 'false' });
  expect(JSON.stringify(template.toJSON())).not.toMatch(/DUCKDB|CONVERT_QUEUE_URL|_parquet|DuckDbBinding/);
  template.resourceCountIs('AWS::SQS::Queue', 2);
});

test('without the fetched binding, synthesis stops with what to run', async () => {
  const stack = new Stack(testApp(), 'Missing');
  const missing = path.join(await tempDir('lsync-no-layer-'), 'nothing-here');
  expect(existsSync(missing)).toBe(false);
  expect(
    () =>
      new ParquetConverter(stack, 'Parquet', {
        bucket: Bucket.fromBucketName(stack, 'Bucket', 'lake-bucket'),
        keyPrefix: 'localytics',
        duckDbLayerDir: missing,
      }),
  ).toThrow(/run "node scripts\/fetch-native\.mjs".*context parquet=false/);
});
