import { createHash } from 'node:crypto';

/** Deterministic app IDs in Localytics' format (23 hex digits, then four dash-separated hex groups). */
export function syntheticApps(count: number): string[] {
  return Array.from({ length: count }, (_, index) => {
    const hex = createHash('sha256').update(`bench-app-${index}`).digest('hex');
    return `${hex.slice(0, 23)}-${hex.slice(23, 31)}-${hex.slice(31, 35)}-${hex.slice(35, 39)}-${hex.slice(39, 51)}`;
  });
}
