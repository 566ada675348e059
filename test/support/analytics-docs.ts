import { ANALYTICS_VIEWS, type AnalyticsView, type ViewColumn } from '../../functions/core/analytics.js';
import { prestoType } from '../../lib/analytics-views.js';

const row = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
const header = (cells: readonly string[]) => [row(cells), row(cells.map(() => '---'))];

/**
 * The Markdown table of the views' columns in docs/analytics.md: name, Athena type, source field, note; for views
 * over the same table, one table with the views each column is in.
 */
export function viewColumnsTable(views: readonly AnalyticsView[]): string {
  const columns = new Map<string, { column: ViewColumn; in: string[] }>();
  for (const view of views) {
    for (const column of view.columns) {
      const entry = columns.get(column.name) ?? { column, in: [] };
      entry.in.push(`\`${view.name}\``);
      columns.set(column.name, entry);
    }
  }
  const several = views.length > 1;
  const lines = header(['column', 'type', 'source', ...(several ? ['in'] : []), 'note']);
  for (const { column, in: inViews } of columns.values()) {
    const where = inViews.length === views.length ? 'all' : inViews.join(', ');
    lines.push(
      row([
        `\`${column.name}\``,
        prestoType(column.type),
        column.source,
        ...(several ? [where] : []),
        column.note ?? '',
      ]),
    );
  }
  return lines.join('\n');
}

/** The views of docs/analytics.md's two tables: the fact views (raw logs), then app_profiles. */
export function documentedViewGroups(): AnalyticsView[][] {
  return [
    ANALYTICS_VIEWS.filter((view) => view.name.startsWith('fact_')),
    ANALYTICS_VIEWS.filter((view) => !view.name.startsWith('fact_')),
  ];
}
