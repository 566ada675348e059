import { describe, expect, test } from 'vitest';
import { dataKey, jobId, parseLogKey, pendingChangeSetKey } from '../../functions/core/jobs.js';

const app = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';

describe('dataKey', () => {
  test('puts a log hour under app_uuid, dt and hour partitions', () => {
    expect(dataKey({ kind: 'log_hour', appUuid: app, hour: Date.UTC(2017, 3, 1, 4) })).toBe(
      `raw_logs/app_uuid=${app}/dt=2017-04-01/hour=04/${app}_2017-04-01_04.json.gz`,
    );
  });

  test('puts an audience generation under audience_id, identifier_type and the UTC date it was generated', () => {
    const generatedAt = Date.parse('2017-02-13T23:30:43Z');
    expect(dataKey({ kind: 'audience', audienceId: '45644', identifierType: 'idfa', generatedAt })).toBe(
      'audiences/audience_id=45644/identifier_type=idfa/dt=2017-02-13/audience_45644_idfa_20170213T233043Z.json.gz',
    );
  });

  test('separates profile snapshots from profile change sets', () => {
    const generatedAt = Date.parse('2017-02-13T12:30:48Z');
    expect(dataKey({ kind: 'profile', profileDbId: '209478', generatedAt })).toBe(
      'profiles/profiledb_id=209478/dt=2017-02-13/profile_209478_20170213T123048Z.json.gz',
    );
    expect(dataKey({ kind: 'profile_changes', profileDbId: '13724', generatedAt })).toBe(
      'profile_changes/profiledb_id=13724/dt=2017-02-13/profile_changes_13724_20170213T123048Z.json.gz',
    );
  });

  test('is deterministic: the same job always has the same key', () => {
    const job = { kind: 'log_hour', appUuid: app, hour: Date.UTC(2020, 5, 6, 7) } as const;
    expect(dataKey({ ...job })).toBe(dataKey(job));
  });
});

test('parseLogKey reads a log key back', () => {
  const hour = Date.UTC(2021, 11, 31, 23);
  expect(parseLogKey(dataKey({ kind: 'log_hour', appUuid: app, hour }))).toEqual({ appUuid: app, hour });
  expect(parseLogKey(`raw_logs/app_uuid=${app}/dt=2021-12-31/hour=23/.tmp`)).toBeUndefined();
});

test('metadata keys start with an underscore so that Athena ignores them', () => {
  const key = pendingChangeSetKey({ kind: 'profile_changes', profileDbId: '1', generatedAt: 0 });
  expect(key.startsWith('_')).toBe(true);
  expect(jobId({ kind: 'profile_changes', profileDbId: '1', generatedAt: 0 })).toBe(
    'profile_changes/1/19700101T000000Z',
  );
});
