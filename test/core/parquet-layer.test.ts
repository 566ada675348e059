import { describe, expect, test } from 'vitest';
import { dataKey } from '../../functions/core/jobs.js';
import { parquetTargetOf } from '../../functions/core/parquet-layer.js';

const APP = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';
const generatedAt = Date.parse('2026-11-19T13:00:00Z');

describe('the Parquet key of a JSON data object', () => {
  test('keeps the partition folders and base name under parquet/<table>/', () => {
    const cases = [
      [
        dataKey({ kind: 'log_hour', appUuid: APP, hour: Date.parse('2026-11-19T07:00:00Z') }),
        `parquet/raw_logs/app_uuid=${APP}/dt=2026-11-19/hour=07/${APP}_2026-11-19_07.parquet`,
        'raw_logs',
      ],
      [
        dataKey({ kind: 'audience', audienceId: '153829', identifierType: 'idfa', generatedAt }),
        'parquet/audiences/audience_id=153829/identifier_type=idfa/dt=2026-11-19/audience_153829_idfa_20261119T130000Z.parquet',
        'audiences',
      ],
      [
        dataKey({ kind: 'profile', profileDbId: '6012', generatedAt }),
        'parquet/profiles/profiledb_id=6012/dt=2026-11-19/profile_6012_20261119T130000Z.parquet',
        'profiles',
      ],
      [
        dataKey({ kind: 'profile_changes', profileDbId: '6012', generatedAt }),
        'parquet/profile_changes/profiledb_id=6012/dt=2026-11-19/profile_changes_6012_20261119T130000Z.parquet',
        'profile_changes',
      ],
    ] as const;
    for (const [jsonKey, parquetKey, table] of cases) {
      expect(parquetTargetOf(jsonKey)).toEqual({
        jsonKey,
        parquetKey,
        table: expect.objectContaining({ name: table }),
      });
    }
  });

  test('is undefined for anything that is not a data object of a table', () => {
    for (const key of [
      '_state/profile_changes/profiledb_id=6012/20261119T130000Z.json',
      'parquet/raw_logs/app_uuid=a/dt=2026-11-19/hour=07/a.parquet',
      `raw_logs/app_uuid=${APP}/dt=2026-11-19/x.json.gz`,
      `raw_logs/app_uuid=${APP}/hour=07/dt=2026-11-19/x.json.gz`,
      `raw_logs/app_uuid=${APP}/dt=2026-11-19/hour=07/.x.json.gz.partial-abc`,
      `raw_logs/app_uuid=${APP}/dt=2026-11-19/hour=07/x.json`,
      `raw_logs/app_uuid=${APP}/dt=2026-11-19/hour=07/.json.gz`,
      'profiles/profiledb_id=../dt=2026-11-19/p.json.gz',
      'profiles/profiledb_id=6012/dt=2026-11-19/sub/p.json.gz',
    ]) {
      expect(parquetTargetOf(key), key).toBeUndefined();
    }
  });
});
