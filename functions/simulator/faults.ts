/**
 * Switchable faults of the simulator. Each rule fires for the next `count` matching requests.
 * API faults: `throttle` (429), `server_error` (500), `unauthorized` (401), `html` (200 with an HTML page on lists),
 * `malformed_list` (a list whose shape is wrong), `wrong_types` (a list whose fields have the wrong types),
 * `oversized_list` (a list of more than 5 MiB), `refresh` (Localytics regenerates every audience and profile export
 * at this request, as its daily refresh does: lists and files show the new generation from now on). File faults: `reset` (connection reset mid-body), `truncate`
 * (the body stops early, gzip left incomplete), `expire` (403 as an expired URL), `file_server_error` (503),
 * `slow` (body trickles: `delayMs` per 64 KiB, default 50), `corrupt` (bytes flipped in the middle of the file),
 * `empty` (a 200 with no body).
 */
export const API_FAULTS = [
  'throttle',
  'server_error',
  'unauthorized',
  'html',
  'malformed_list',
  'wrong_types',
  'oversized_list',
  'refresh',
] as const;
export const FILE_FAULTS = ['reset', 'truncate', 'expire', 'file_server_error', 'slow', 'corrupt', 'empty'] as const;
export type ApiFaultKind = (typeof API_FAULTS)[number];
export type FileFaultKind = (typeof FILE_FAULTS)[number];
export type FaultKind = ApiFaultKind | FileFaultKind;

export interface FaultRule {
  readonly kind: FaultKind;
  /** How many matching requests it hits. Default 1. */
  count?: number;
  /** Only requests whose path (API) or file name (file host) contains this text. */
  readonly match?: string;
  /** `throttle`: the Retry-After seconds to send; omit to send none. */
  readonly retryAfterSeconds?: number;
  /** `slow`: pause before each 64 KiB of the body, ms. Default 50. */
  readonly delayMs?: number;
}

export class FaultPlan {
  private rules: FaultRule[] = [];

  add(rule: FaultRule): void {
    this.rules.push({ ...rule, count: rule.count ?? 1 });
  }

  clear(): void {
    this.rules = [];
  }

  get pending(): readonly FaultRule[] {
    return this.rules;
  }

  /** The first rule among `kinds` that matches `target`, consumed by one. */
  take(kinds: readonly FaultKind[], target: string): FaultRule | undefined {
    const rule = this.rules.find(
      (candidate) => kinds.includes(candidate.kind) && (!candidate.match || target.includes(candidate.match)),
    );
    if (!rule) return undefined;
    rule.count = (rule.count ?? 1) - 1;
    if (rule.count <= 0) this.rules = this.rules.filter((candidate) => candidate !== rule);
    return rule;
  }
}

export function isFaultKind(value: unknown): value is FaultKind {
  return (
    typeof value === 'string' &&
    ((API_FAULTS as readonly string[]).includes(value) || (FILE_FAULTS as readonly string[]).includes(value))
  );
}
