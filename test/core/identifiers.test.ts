import { expect, test } from 'vitest';
import { isPositiveIntegerId, parseAppUuid } from '../../functions/core/identifiers.js';

test('accepts the documented Localytics app ID format, which is not an RFC 4122 UUID', () => {
  expect(parseAppUuid('1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8')).toBe(
    '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8',
  );
});

test('accepts a standard UUID and normalises case', () => {
  expect(parseAppUuid('2EEDF7D6-FD41-11E3-4735-00A426B17DD8')).toBe('2eedf7d6-fd41-11e3-4735-00a426b17dd8');
});

test.each(['not-a-uuid', '../etc', 'abc/def', 'abc--def', '-abc', 'abc-', '', 'abc def', 'ab%2fcd'])(
  'rejects app ID %j, which could not be a safe path or key segment',
  (value) => {
    expect(parseAppUuid(value)).toBeUndefined();
  },
);

test.each([
  ['153829', true],
  ['0', false],
  ['012', false],
  ['-1', false],
  ['1e5', false],
  ['12/..', false],
])('positive integer id %j → %s', (value, expected) => {
  expect(isPositiveIntegerId(value)).toBe(expected);
});
