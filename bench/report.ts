/** Result rows of the benchmark groups, and the markdown they become. */

export type Verdict = 'met' | 'not met' | 'info';

export interface ResultRow {
  readonly measurement: string;
  /** The measured figure, formatted (medians; ratios say what they compare). */
  readonly value: string;
  readonly target: string;
  readonly verdict: Verdict;
}

export interface GroupResult {
  readonly title: string;
  readonly rows: ResultRow[];
  /** Extra markdown (detail tables) shown under the summary table. */
  readonly details: string[];
  readonly notes: string[];
}

export function newGroup(title: string): GroupResult {
  return { title, rows: [], details: [], notes: [] };
}

export type Comparison = '<' | '<=' | '>' | '>=' | '==';

/** A row whose verdict comes from comparing `measured` with `limit`. */
export function targetRow(
  measurement: string,
  value: string,
  measured: number,
  comparison: Comparison,
  limit: number,
  target: string,
): ResultRow {
  const ok =
    comparison === '<'
      ? measured < limit
      : comparison === '<='
        ? measured <= limit
        : comparison === '>'
          ? measured > limit
          : comparison === '>='
            ? measured >= limit
            : measured === limit;
  return { measurement, value, target, verdict: Number.isFinite(measured) && ok ? 'met' : 'not met' };
}

export function infoRow(measurement: string, value: string): ResultRow {
  return { measurement, value, target: '—', verdict: 'info' };
}

export function fixed(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

export function ratio(value: number): string {
  return `${fixed(value, 2)}×`;
}

/** A markdown table; cells are escaped for pipes. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
  return [
    `| ${headers.map(cell).join(' | ')} |`,
    `| ${headers.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ].join('\n');
}

const VERDICT_TEXT: Record<Verdict, string> = { met: '**met**', 'not met': '**NOT MET**', info: '—' };

export function renderResults(header: string[], groups: readonly GroupResult[]): string {
  const summary = table(
    ['Group', 'Measurement', 'Result (median)', 'Target', 'Verdict'],
    groups.flatMap((group) =>
      group.rows.map((row) => [group.title, row.measurement, row.value, row.target, VERDICT_TEXT[row.verdict]]),
    ),
  );
  const sections = groups.map((group) =>
    [`### ${group.title}`, '', ...group.details.flatMap((detail) => [detail, '']), ...group.notes.map((n) => `- ${n}`)]
      .join('\n')
      .trimEnd(),
  );
  return `${[...header, '', '## Summary', '', summary, '', '## Details', '', sections.join('\n\n')].join('\n')}\n`;
}
