import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, test } from 'vitest';
import { readStackConfig } from '../../lib/config.js';
import { LocalyticsExportSyncStack } from '../../lib/localytics-export-sync-stack.js';
import { decodedViews, savedQueries, synthCatalogViews } from '../support/analytics-template.js';
import { testApp } from '../support/cdk.js';
import { syntheticApps } from '../support/synthetic-apps.js';

const APPS = [
  '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8',
  '91e6f7bf1c6004b029c3082-602f5774-ae2b-11e2-0c2c-004a77f8b47f',
];

/** The deployable stack, as `cdk deploy` makes it (bundles the functions: slow, so synthesized once). */
function synthStack() {
  const app = testApp({ context: { secretName: 'localytics/api', apps: APPS, bucketName: 'lake-bucket' } });
  return Template.fromStack(new LocalyticsExportSyncStack(app, 'Test', { config: readStackConfig(app.node) }));
}

const synthViews = synthCatalogViews;

/** The table names a view's SQL reads (after FROM or JOIN). */
const tablesRead = (sql: string) => [...new Set([...sql.matchAll(/\b(?:FROM|JOIN)\s+"?(\w+)"?/gi)].map((m) => m[1]))];

describe('the analytics views and saved queries', () => {
  const template = synthStack();

  test('the deployed stack has the four views as Athena (Presto) views in the catalog database', () => {
    const views = decodedViews(template);
    expect(views.map((view) => view.name).sort()).toEqual([
      'app_profiles',
      'fact_events',
      'fact_session_closes',
      'fact_sessions',
    ]);
    for (const view of views) {
      expect(view.input.Parameters).toEqual({ presto_view: 'true', comment: 'Presto View' });
      expect(view.input.ViewExpandedText).toBe('/* Presto View */');
      expect(view.definition).toMatchObject({ catalog: 'awsdatacatalog', schema: 'localytics' });
      expect(view.databaseName).toBe('localytics');
      // The Glue columns (Hive types) and the view's columns (Athena types) are the same list.
      expect(view.input.StorageDescriptor.Columns.map((column) => column.Name)).toEqual(
        view.definition.columns.map((column) => column.name),
      );
    }
  });

  test("the stack's views and queries are the catalog views' (the ones the DuckDB tests run)", () => {
    const alone = synthViews();
    expect(decodedViews(template).map((view) => view.definition)).toEqual(
      decodedViews(alone).map((view) => view.definition),
    );
    expect(savedQueries(template)).toEqual(savedQueries(alone));
  });

  test('with the Parquet layer on, the views read the Parquet tables', () => {
    const reads = Object.fromEntries(
      decodedViews(template).map((view) => [view.name, tablesRead(view.definition.originalSql)]),
    );
    expect(reads).toEqual({
      fact_events: ['raw_logs_parquet'],
      fact_sessions: ['raw_logs_parquet'],
      fact_session_closes: ['raw_logs_parquet'],
      app_profiles: ['profiles_parquet'],
    });
  });

  test('with the Parquet layer off, the views read the JSON tables', () => {
    const reads = decodedViews(synthViews({ parquet: false })).map((view) => tablesRead(view.definition.originalSql));
    expect(reads.flat().sort()).toEqual(['profiles', 'raw_logs', 'raw_logs', 'raw_logs']);
  });

  test('the five everyday queries are saved in the catalog database, each naming its parameters', () => {
    const queries = savedQueries(template);
    expect(queries.map((query) => query.Name)).toEqual([
      'Events by name over 30 days',
      "An event's trend per day",
      'Unique devices per day',
      'Sessions per day and their median length',
      "A profile attribute's distribution",
    ]);
    for (const query of queries) {
      expect(query.Database).toBe('localytics');
      expect(query.QueryString.startsWith(`-- ${query.Name}\n`)).toBe(true);
      const marks = query.QueryString.split('?').length - 1;
      expect(query.Description.match(/\d\. /g)?.length ?? 0, query.Name).toBe(marks);
    }
  });

  test('without profiles there is no profile view and no profile query; without logs, no fact views', () => {
    const logsOnly = synthViews({ tables: ['raw_logs'] });
    expect(decodedViews(logsOnly).map((view) => view.name)).toEqual([
      'fact_events',
      'fact_sessions',
      'fact_session_closes',
    ]);
    expect(savedQueries(logsOnly)).toHaveLength(4);
    const profilesOnly = synthViews({ tables: ['profiles', 'profile_changes'], apps: [] });
    expect(decodedViews(profilesOnly).map((view) => view.name)).toEqual(['app_profiles']);
    expect(savedQueries(profilesOnly).map((query) => query.Name)).toEqual(["A profile attribute's distribution"]);
  });

  test('the views and queries do not grow with the number of apps', () => {
    const count = (apps: readonly string[]) => {
      const synthesized = synthViews({ apps });
      return decodedViews(synthesized).length + savedQueries(synthesized).length;
    };
    expect(count(syntheticApps(1))).toBe(9);
    expect(count(syntheticApps(60))).toBe(9);
  });
});
