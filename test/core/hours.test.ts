import { describe, expect, test } from 'vitest';
import {
  compactTimestamp,
  formatHour,
  hourParts,
  hoursBetween,
  parseCompactTimestamp,
  parseHour,
} from '../../functions/core/hours.js';

describe('parseHour', () => {
  test('reads a UTC hour written YYYY-MM-DDTHH', () => {
    expect(parseHour('2017-04-01T14')).toBe(Date.UTC(2017, 3, 1, 14));
  });

  test.each([
    '2017-04-01',
    '2017-4-01T14',
    '2017-04-01T24',
    '2017-02-30T00',
    '2017-13-01T00',
    'yesterday',
    '2017-04-01T14:00',
  ])('rejects %s', (text) => {
    expect(parseHour(text)).toBeUndefined();
  });
});

test('hourParts are zero-padded, as sent to the API', () => {
  expect(hourParts(Date.UTC(2018, 0, 2, 3))).toEqual({ year: '2018', month: '01', day: '02', hour: '03' });
});

test('hoursBetween yields every hour of [from, to)', () => {
  const from = Date.UTC(2020, 0, 1, 22);
  expect([...hoursBetween(from, from + 3 * 3_600_000)].map(formatHour)).toEqual([
    '2020-01-01T22',
    '2020-01-01T23',
    '2020-01-02T00',
  ]);
});

test('compactTimestamp is key-safe and sortable', () => {
  expect(compactTimestamp(Date.parse('2017-02-13T12:30:43Z'))).toBe('20170213T123043Z');
});

test('parseCompactTimestamp reads compactTimestamp back', () => {
  const ms = Date.parse('2017-02-13T12:30:43Z');
  expect(parseCompactTimestamp(compactTimestamp(ms))).toBe(ms);
});

test('parseHour refuses years before 1970 (Date.UTC would read 0000 as 1900; issue 21, item 10)', () => {
  expect(parseHour('0000-01-01T00')).toBeUndefined();
  expect(parseHour('0099-06-01T00')).toBeUndefined();
  expect(parseHour('1969-12-31T23')).toBeUndefined();
  expect(parseHour('1970-01-01T00')).toBe(0);
});
