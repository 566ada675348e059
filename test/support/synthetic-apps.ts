import { createHash } from 'node:crypto';

/**
 * Deterministic app IDs in Localytics' format, as long as the documented ones (60 characters): 23 hex digits, then
 * a UUID's five dash-separated hex groups (`1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8`).
 */
export function syntheticApps(count: number): string[] {
  return Array.from({ length: count }, (_, index) => {
    const hex = createHash('sha256').update(`bench-app-${index}`).digest('hex');
    return [
      hex.slice(0, 23),
      hex.slice(23, 31),
      hex.slice(31, 35),
      hex.slice(35, 39),
      hex.slice(39, 43),
      hex.slice(43, 55),
    ].join('-');
  });
}
