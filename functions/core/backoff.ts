/** Exponential backoff with full jitter: a random wait in [base/2, base * 2^attempt], capped. */
export function backoffMs(attempt: number, options: { baseMs?: number; maxMs?: number; random?: () => number } = {}) {
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(base / 2 + random() * Math.max(0, ceiling - base / 2));
}
