/**
 * Validation of every value that comes from the API or the user and becomes a URL path segment or a key segment.
 * Nothing outside these shapes may reach a key, so no value can escape the destination prefix.
 */

/**
 * Localytics app IDs are not RFC 4122 UUIDs: the documented ones are 23 hex digits followed by four dash-separated
 * hex groups. Accept hex groups separated by single dashes (which also admits standard UUIDs), nothing else.
 */
const APP_UUID = /^[0-9a-f]{1,40}(?:-[0-9a-f]{1,40}){0,7}$/;
const POSITIVE_INTEGER = /^[1-9][0-9]{0,17}$/;

export const IDENTIFIER_TYPES = ['idfa', 'gaid', 'email', 'customer_id'] as const;
export type IdentifierType = (typeof IDENTIFIER_TYPES)[number];

export const DATASETS = ['logs', 'audiences', 'profiles'] as const;
export type Dataset = (typeof DATASETS)[number];

export function isAppUuid(value: string): boolean {
  return value.length <= 100 && APP_UUID.test(value);
}

/** Normalise an app ID (lower case) or return undefined when it is not one. */
export function parseAppUuid(value: string): string | undefined {
  const lower = value.trim().toLowerCase();
  return isAppUuid(lower) ? lower : undefined;
}

export function isPositiveIntegerId(value: string): boolean {
  return POSITIVE_INTEGER.test(value);
}

export function isIdentifierType(value: string): value is IdentifierType {
  return (IDENTIFIER_TYPES as readonly string[]).includes(value);
}

export function isDataset(value: string): value is Dataset {
  return (DATASETS as readonly string[]).includes(value);
}
