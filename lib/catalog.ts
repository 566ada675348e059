import { Stack } from 'aws-cdk-lib';
import { CfnDatabase, CfnTable } from 'aws-cdk-lib/aws-glue';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { PARQUET_FOLDER, type PartitionDefinition, TABLES, type TableDefinition } from '../functions/core/tables.js';

/** The longest value of a Glue table parameter. */
const GLUE_PARAMETER_VALUE_LIMIT = 512_000;

export interface CatalogProps {
  readonly bucket: IBucket;
  readonly keyPrefix: string;
  /** App IDs: the values of the raw-log `app_uuid` partition. */
  readonly apps: readonly string[];
  /** @default 'localytics' */
  readonly databaseName?: string;
  /** First `dt` the date projections cover (yyyy-MM-dd). @default '2020-01-01' */
  readonly startDate?: string;
  /** Tables to create. @default all four */
  readonly tables?: readonly TableDefinition['name'][];
  /** Also a `<table>_parquet` table over the Parquet layer (`<keyPrefix>/parquet/<table>/`) for each. @default false */
  readonly parquet?: boolean;
}

/**
 * A Glue database and one table per dataset, with partition projection: Athena computes partitions from the key
 * layout, so data is queryable the moment it lands (no crawler, no MSCK REPAIR).
 */
export class Catalog extends Construct {
  readonly database: CfnDatabase;
  readonly databaseName: string;
  readonly tables: Partial<Record<TableDefinition['name'], CfnTable>>;
  /** The Parquet layer's tables, by the name of their JSON twin. */
  readonly parquetTables: Partial<Record<TableDefinition['name'], CfnTable>> = {};

  constructor(scope: Construct, id: string, props: CatalogProps) {
    super(scope, id);
    this.databaseName = props.databaseName ?? 'localytics';
    if (!/^[a-z0-9_]{1,255}$/.test(this.databaseName)) {
      throw new Error(`databaseName "${this.databaseName}" must be lower-case letters, digits and underscores`);
    }
    const startDate = props.startDate ?? '2020-01-01';
    if (!/^\d{4}-\d{2}-\d{2}$/.test(startDate)) throw new Error(`startDate "${startDate}" must be yyyy-MM-dd`);
    // The raw-log tables project app_uuid from an enum of every app ID, one Glue table parameter.
    const appValues = props.apps.join(',').length;
    if (appValues > GLUE_PARAMETER_VALUE_LIMIT) {
      throw new Error(
        `apps: ${props.apps.length} app IDs make the app_uuid projection ${appValues} characters; a Glue table parameter holds ${GLUE_PARAMETER_VALUE_LIMIT}`,
      );
    }
    const account = Stack.of(this).account;
    this.database = new CfnDatabase(this, 'Database', {
      catalogId: account,
      databaseInput: { name: this.databaseName, description: 'Localytics exports, synced by Localytics Export Sync' },
    });
    const tables: Partial<Record<TableDefinition['name'], CfnTable>> = {};
    for (const table of TABLES.filter((candidate) => !props.tables || props.tables.includes(candidate.name))) {
      const location = `s3://${props.bucket.bucketName}/${props.keyPrefix}/${table.folder}/`;
      const cfn = new CfnTable(this, pascal(table.name), {
        catalogId: account,
        databaseName: this.databaseName,
        tableInput: {
          name: table.name,
          description: table.description,
          tableType: 'EXTERNAL_TABLE',
          parameters: {
            classification: 'json',
            compressionType: 'gzip',
            EXTERNAL: 'TRUE',
            ...projectionParameters(table, location, props.apps, startDate),
          },
          partitionKeys: table.partitions.map((partition) => ({ name: partition.name, type: partition.type })),
          storageDescriptor: {
            location,
            inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
            outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
            compressed: true,
            columns: table.columns.map((column) => ({ name: column.name, type: column.type, comment: column.comment })),
            serdeInfo: {
              serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
              parameters: {
                // A malformed line reads as nulls instead of failing the query (files are copied byte for byte).
                'ignore.malformed.json': 'true',
                'case.insensitive': 'true',
                ...Object.fromEntries(
                  table.columns
                    .filter((column) => column.jsonKey)
                    .map((column) => [`mapping.${column.name}`, column.jsonKey as string]),
                ),
              },
            },
          },
        },
      });
      cfn.addResourceDependency(this.database);
      tables[table.name] = cfn;
      if (props.parquet) this.parquetTables[table.name] = this.parquetTable(table, props, account, startDate);
    }
    this.tables = tables;
  }

  /** The table's Parquet twin: the same columns and partition projection over the Parquet layer, read by column. */
  private parquetTable(table: TableDefinition, props: CatalogProps, account: string, startDate: string): CfnTable {
    const location = `s3://${props.bucket.bucketName}/${props.keyPrefix}/${PARQUET_FOLDER}/${table.folder}/`;
    const cfn = new CfnTable(this, `${pascal(table.name)}Parquet`, {
      catalogId: account,
      databaseName: this.databaseName,
      tableInput: {
        name: `${table.name}_parquet`,
        description: `${table.description} (typed Parquet copy, ZSTD)`,
        tableType: 'EXTERNAL_TABLE',
        parameters: {
          classification: 'parquet',
          EXTERNAL: 'TRUE',
          ...projectionParameters(table, location, props.apps, startDate),
        },
        partitionKeys: table.partitions.map((partition) => ({ name: partition.name, type: partition.type })),
        storageDescriptor: {
          location,
          inputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
          columns: table.columns.map((column) => ({ name: column.name, type: column.type, comment: column.comment })),
          serdeInfo: { serializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
        },
      },
    });
    cfn.addResourceDependency(this.database);
    return cfn;
  }
}

/** Athena partition projection: the partition values follow from the key layout, never from a crawler. */
export function projectionParameters(
  table: TableDefinition,
  location: string,
  apps: readonly string[],
  startDate: string,
): Record<string, string> {
  const parameters: Record<string, string> = { 'projection.enabled': 'true' };
  for (const partition of table.partitions) Object.assign(parameters, projectionOf(partition, apps, startDate));
  const template = table.partitions.map((partition) => `${partition.name}=\${${partition.name}}/`).join('');
  parameters['storage.location.template'] = `${location}${template}`;
  return parameters;
}

function projectionOf(
  partition: PartitionDefinition,
  apps: readonly string[],
  startDate: string,
): Record<string, string> {
  const key = `projection.${partition.name}`;
  const projection = partition.projection;
  switch (projection.type) {
    case 'apps':
      return { [`${key}.type`]: 'enum', [`${key}.values`]: apps.join(',') };
    case 'enum':
      return { [`${key}.type`]: 'enum', [`${key}.values`]: projection.values.join(',') };
    case 'date':
      return {
        [`${key}.type`]: 'date',
        [`${key}.format`]: 'yyyy-MM-dd',
        [`${key}.range`]: `${startDate},NOW`,
        [`${key}.interval`]: '1',
        [`${key}.interval.unit`]: 'DAYS',
      };
    case 'hour':
      return { [`${key}.type`]: 'integer', [`${key}.range`]: '0,23', [`${key}.digits`]: '2' };
    case 'injected':
      return { [`${key}.type`]: 'injected' };
  }
}

function pascal(name: string): string {
  return name.replace(/(^|_)([a-z])/g, (_, __, letter: string) => letter.toUpperCase());
}
