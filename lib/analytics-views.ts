import { Stack } from 'aws-cdk-lib';
import { CfnNamedQuery } from 'aws-cdk-lib/aws-athena';
import { CfnTable } from 'aws-cdk-lib/aws-glue';
import { Construct } from 'constructs';
import {
  ANALYTICS_VIEWS,
  type AnalyticsView,
  type Layer,
  layerTableName,
  QUERY_PARAMETERS,
  SAVED_QUERIES,
  type ViewColumnType,
  type ViewName,
} from '../functions/core/analytics.js';
import type { Catalog } from './catalog.js';

export interface AnalyticsViewsProps {
  /** The catalog whose tables the views read. */
  readonly catalog: Catalog;
  /** Read the Parquet layer's tables (`<table>_parquet`), else the JSON tables. The catalog must have them. */
  readonly parquet: boolean;
}

/**
 * Athena views in the catalog's database (`fact_events`, `fact_sessions`, `fact_session_closes`, `app_profiles`) and
 * the everyday queries on them as Athena saved queries, created with the stack: no manual step after a deployment.
 * Their number is fixed (it does not grow with the apps). Views exist only over tables the catalog has.
 *
 * An Athena view is a Glue table of type VIRTUAL_VIEW whose `ViewOriginalText` carries the view as Athena (Trino)
 * stores it: `/* Presto View: <base64 of {originalSql, catalog, schema, columns: [{name, type}]}> *\/`, with
 * `ViewExpandedText` `/* Presto View *\/` and the parameter `presto_view: true`. This is the format Trino's Hive
 * connector writes and reads (trinodb/trino, plugin/trino-hive .../ViewReaderUtil.java: VIEW_PREFIX, VIEW_SUFFIX,
 * PRESTO_VIEW_FLAG; HiveMetadata.java: PRESTO_VIEW_EXPANDED_TEXT_MARKER, PRESTO_VIEW_COMMENT), and the one
 * mapbox/cloudfriend's GluePrestoView and iconara/terraform-aws-athena-view create. Athena answers "view is stale"
 * when the declared column types are not what the SQL returns, so both come from one definition
 * (functions/core/analytics.ts) and the tests check them against what DuckDB finds.
 */
export class AnalyticsViews extends Construct {
  /** The views created, by name. */
  readonly views: Partial<Record<ViewName, CfnTable>> = {};
  /** The saved queries created, by their short name. */
  readonly savedQueries: Record<string, CfnNamedQuery> = {};

  constructor(scope: Construct, id: string, props: AnalyticsViewsProps) {
    super(scope, id);
    const { catalog } = props;
    const layer: Layer = props.parquet ? 'parquet' : 'json';
    const tables = props.parquet ? catalog.parquetTables : catalog.tables;
    for (const view of ANALYTICS_VIEWS) {
      const table = tables[view.table.name];
      if (!table) continue;
      const cfn = new CfnTable(this, pascal(view.name), {
        catalogId: Stack.of(this).account,
        databaseName: catalog.databaseName,
        tableInput: viewTableInput(view, catalog.databaseName, layerTableName(view.table, layer)),
      });
      cfn.addResourceDependency(table);
      this.views[view.name] = cfn;
    }
    for (const query of SAVED_QUERIES) {
      if (!query.views.every((name) => this.views[name])) continue;
      const parameters = query.parameters.map((name, index) => `${index + 1}. ${QUERY_PARAMETERS[name]}`);
      const named = new CfnNamedQuery(this, `Query${pascal(query.name)}`, {
        name: query.title,
        database: catalog.databaseName,
        description: `${query.description} Parameters (Athena asks for each ?): ${parameters.join('; ')}.`.slice(
          0,
          1024,
        ),
        queryString: query.sql,
      });
      for (const name of query.views) named.addResourceDependency(this.views[name] as CfnTable);
      this.savedQueries[query.name] = named;
    }
  }
}

/** The Glue table input of an Athena view over `source` in `database`. */
export function viewTableInput(view: AnalyticsView, database: string, source: string): CfnTable.TableInputProperty {
  const definition = {
    originalSql: view.sql(source),
    catalog: 'awsdatacatalog',
    schema: database,
    columns: view.columns.map((column) => ({ name: column.name, type: prestoType(column.type) })),
  };
  return {
    name: view.name,
    description: view.description,
    tableType: 'VIRTUAL_VIEW',
    parameters: { presto_view: 'true', comment: 'Presto View' },
    viewOriginalText: `/* Presto View: ${Buffer.from(JSON.stringify(definition)).toString('base64')} */`,
    viewExpandedText: '/* Presto View */',
    partitionKeys: [],
    storageDescriptor: {
      // Glue keeps at most 255 characters of a column comment (attribute_key's lists the profile columns).
      columns: view.columns.map((column) => ({
        name: column.name,
        type: column.type,
        comment: column.source.slice(0, 255),
      })),
      serdeInfo: {},
    },
  };
}

/** Athena's (Trino's) spelling of a Hive type: varchar for string, integer for int, row(...) for struct<...>. */
export function prestoType(type: ViewColumnType): string {
  return type
    .replace(/\bstring\b/g, 'varchar')
    .replace(/\bint\b/g, 'integer')
    .replace(/struct</g, 'row<')
    .replace(/(\w+):/g, '$1 ')
    .replace(/</g, '(')
    .replace(/>/g, ')');
}

function pascal(name: string): string {
  return name.replace(/(^|[_-])([a-z])/g, (_, __, letter: string) => letter.toUpperCase());
}
