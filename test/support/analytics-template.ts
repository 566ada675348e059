import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import type { TableDefinition } from '../../functions/core/tables.js';
import { AnalyticsViews } from '../../lib/analytics-views.js';
import { Catalog } from '../../lib/catalog.js';
import { testApp } from './cdk.js';

/** A template of just a catalog and its analytics views, as the stack makes them (no functions to bundle: fast). */
export function synthCatalogViews(
  options: { parquet?: boolean; tables?: TableDefinition['name'][]; apps?: readonly string[] } = {},
): Template {
  const stack = new Stack(testApp(), 'Views');
  const parquet = options.parquet ?? true;
  const catalog = new Catalog(stack, 'Catalog', {
    bucket: Bucket.fromBucketName(stack, 'Lake', 'lake-bucket'),
    keyPrefix: 'localytics',
    apps: options.apps ?? ['1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8'],
    tables: options.tables,
    parquet,
  });
  new AnalyticsViews(stack, 'Analytics', { catalog, parquet });
  return Template.fromStack(stack);
}

export interface ViewTableInput {
  Name: string;
  TableType: string;
  Parameters: Record<string, string>;
  ViewOriginalText: string;
  ViewExpandedText: string;
  StorageDescriptor: { Columns: { Name: string; Type: string; Comment?: string }[] };
}

/** What Athena (Trino) reads from `ViewOriginalText`. */
export interface PrestoViewDefinition {
  originalSql: string;
  catalog: string;
  schema: string;
  columns: { name: string; type: string }[];
}

export interface DecodedView {
  readonly name: string;
  readonly databaseName: string;
  readonly input: ViewTableInput;
  readonly definition: PrestoViewDefinition;
}

const PREFIX = '/* Presto View: ';
const SUFFIX = ' */';

/** Decode a view's original text the way Trino's Hive connector does (ViewReaderUtil.PrestoViewReader). */
export function decodePrestoView(text: string): PrestoViewDefinition {
  if (!text.startsWith(PREFIX) || !text.endsWith(SUFFIX)) throw new Error(`not a Presto view: ${text.slice(0, 40)}`);
  const base64 = text.slice(PREFIX.length, text.length - SUFFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw new Error('the view data is not base64');
  return JSON.parse(Buffer.from(base64, 'base64').toString('utf8')) as PrestoViewDefinition;
}

/** The template's Athena views (Glue tables of type VIRTUAL_VIEW), decoded, in template order. */
export function decodedViews(template: Template): DecodedView[] {
  const found = template.findResources('AWS::Glue::Table', {
    Properties: { TableInput: { TableType: 'VIRTUAL_VIEW' } },
  });
  return Object.values(found).map((resource) => {
    const properties = (resource as { Properties: { DatabaseName: string; TableInput: ViewTableInput } }).Properties;
    return {
      name: properties.TableInput.Name,
      databaseName: properties.DatabaseName,
      input: properties.TableInput,
      definition: decodePrestoView(properties.TableInput.ViewOriginalText),
    };
  });
}

export interface SavedQueryProperties {
  Name: string;
  Database: string;
  Description: string;
  QueryString: string;
}

/** The template's Athena saved queries, in template order. */
export function savedQueries(template: Template): SavedQueryProperties[] {
  return Object.values(template.findResources('AWS::Athena::NamedQuery')).map(
    (resource) => (resource as { Properties: SavedQueryProperties }).Properties,
  );
}
