import { describe, expect, test } from 'vitest';
import { parseHour } from '../../functions/core/hours.js';
import type { Plan } from '../../functions/core/planner.js';
import { hourRanges, previewSync } from '../../functions/core/sync-preview.js';

const APP = '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8';
const h = (text: string) => parseHour(text) as number;

function plan(jobs: Plan['jobs']): Plan {
  return {
    jobs,
    present: { logs: 4, audiences: 1, profiles: 0 },
    beyondRetention: [{ appUuid: APP, hour: h('2026-10-01T00') }],
    skipped: [],
    listFailures: [],
    newestLogHour: new Map(),
    exportConcerns: [],
  };
}

describe('previewSync', () => {
  test('counts files per dataset, one request per file plus a confirming list per snapshot, and the floor', () => {
    const generatedAt = h('2026-12-01T13');
    const preview = previewSync(
      plan([
        { kind: 'audience', audienceId: '153829', identifierType: 'idfa', generatedAt },
        { kind: 'profile', profileDbId: '6012', generatedAt },
        { kind: 'profile_changes', profileDbId: '6012', generatedAt },
        { kind: 'log_hour', appUuid: APP, hour: h('2026-12-01T00') },
        { kind: 'log_hour', appUuid: APP, hour: h('2026-12-01T01') },
        { kind: 'log_hour', appUuid: APP, hour: h('2026-12-01T05') },
      ]),
      { destination: 'demo', from: h('2026-12-01T00'), to: h('2026-12-01T06'), rate: 50, listRequests: 2 },
    );
    expect(preview.files).toEqual({ logs: 3, audiences: 1, profiles: 1, profileChanges: 1 });
    expect(preview.apiRequests).toEqual({ lists: 2, files: 6, confirmations: 2, total: 10 });
    expect(preview.floorMs).toBe(12_000);
    expect(preview.beyondRetention).toBe(1);
    expect(preview.logWindows).toEqual([
      {
        app: APP,
        hours: 3,
        ranges: [
          { from: '2026-12-01T00', to: '2026-12-01T02' },
          { from: '2026-12-01T05', to: '2026-12-01T06' },
        ],
      },
    ]);
    expect(preview.exports).toHaveLength(3);
  });
});

describe('hourRanges', () => {
  test('merges contiguous hours in any order into ranges with an exclusive end', () => {
    const hours = ['2026-12-01T03', '2026-12-01T01', '2026-12-01T02', '2026-12-02T00'].map(h);
    expect(hourRanges(hours)).toEqual([
      { from: '2026-12-01T01', to: '2026-12-01T04' },
      { from: '2026-12-02T00', to: '2026-12-02T01' },
    ]);
    expect(hourRanges([])).toEqual([]);
    expect(hourRanges([h('2026-12-01T23')])).toEqual([{ from: '2026-12-01T23', to: '2026-12-02T00' }]);
  });
});
