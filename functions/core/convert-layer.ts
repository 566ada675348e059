import { type ConvertDependencies, type ConvertOutcome, convertFile } from './convert-file.js';
import { parquetTableFolder, parquetTargetOf } from './parquet-layer.js';
import { TABLES, type TableDefinition } from './tables.js';

export interface ConvertSummary {
  readonly destination: string;
  /** JSON data objects considered. */
  readonly files: number;
  readonly converted: number;
  /** Parquet object already there (not rebuilt). */
  readonly present: number;
  readonly failed: readonly { readonly key: string; readonly reason: string }[];
  /** Stopped (Ctrl-C) before they were converted; the next run converts them. */
  readonly interrupted: number;
  readonly warnings: readonly string[];
  readonly rows: number;
  /** Bytes of the JSON objects read (gzip) and of the Parquet objects written. */
  readonly jsonBytes: number;
  readonly parquetBytes: number;
  readonly durationMs: number;
}

export interface ConvertRunOptions {
  readonly rebuild?: boolean;
  readonly onReport?: (outcome: ConvertOutcome) => void;
}

/**
 * Convert the given JSON data objects one after the other (the encoder uses every core it is given and a memory
 * limit of its own, so one file at a time keeps peak memory flat). `present` holds the Parquet keys known to exist.
 */
export async function convertKeys(
  jsonKeys: readonly string[],
  deps: ConvertDependencies,
  options: ConvertRunOptions & { readonly present?: ReadonlySet<string> } = {},
): Promise<ConvertSummary> {
  const now = deps.now ?? Date.now;
  const started = now();
  const outcomes: ConvertOutcome[] = [];
  for (const jsonKey of jsonKeys) {
    const target = parquetTargetOf(jsonKey);
    let outcome: ConvertOutcome;
    if (deps.signal?.aborted) outcome = { status: 'interrupted', jsonKey };
    else if (target && !options.rebuild && options.present?.has(target.parquetKey)) {
      outcome = { status: 'present', jsonKey, parquetKey: target.parquetKey };
    } else {
      outcome = await convertFile(jsonKey, deps, { rebuild: options.rebuild, checkExisting: !options.present });
    }
    outcomes.push(outcome);
    options.onReport?.(outcome);
  }
  return summarize(deps.sink.location, outcomes, now() - started);
}

/**
 * `convert`: build the Parquet layer for every JSON data object at the destination that has no Parquet twin yet, or
 * for all of them with `rebuild` (after a column was added to the schema). One listing per table and layer.
 */
export async function convertDestination(
  deps: ConvertDependencies,
  options: ConvertRunOptions & { readonly tables?: readonly TableDefinition['name'][] } = {},
): Promise<ConvertSummary> {
  const jsonKeys: string[] = [];
  const present = new Set<string>();
  for (const table of TABLES.filter((candidate) => !options.tables || options.tables.includes(candidate.name))) {
    for await (const object of deps.sink.list(`${table.folder}/`)) {
      if (parquetTargetOf(object.key)) jsonKeys.push(object.key);
    }
    if (!options.rebuild) {
      for await (const object of deps.sink.list(parquetTableFolder(table))) present.add(object.key);
    }
  }
  return convertKeys(jsonKeys, deps, { ...options, present });
}

function summarize(destination: string, outcomes: readonly ConvertOutcome[], durationMs: number): ConvertSummary {
  let converted = 0;
  let present = 0;
  let interrupted = 0;
  let rows = 0;
  let jsonBytes = 0;
  let parquetBytes = 0;
  const failed: { key: string; reason: string }[] = [];
  const warnings: string[] = [];
  for (const outcome of outcomes) {
    switch (outcome.status) {
      case 'converted':
        converted++;
        rows += outcome.rows;
        jsonBytes += outcome.jsonBytes;
        parquetBytes += outcome.bytes;
        for (const warning of outcome.warnings) warnings.push(`${outcome.jsonKey}: ${warning}`);
        break;
      case 'present':
        present++;
        break;
      case 'interrupted':
        interrupted++;
        break;
      case 'failed':
        failed.push({ key: outcome.jsonKey, reason: outcome.reason });
        break;
    }
  }
  return {
    destination,
    files: outcomes.length,
    converted,
    present,
    failed,
    interrupted,
    warnings,
    rows,
    jsonBytes,
    parquetBytes,
    durationMs,
  };
}
