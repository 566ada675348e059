/**
 * The one redaction helper: everything that is logged, thrown or printed and may carry a presigned URL or a
 * credential passes through here.
 */

const registeredSecrets = new Set<string>();

/** Remember a secret value so that `redact` removes it from any text. Values shorter than 4 chars are ignored. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) registeredSecrets.add(value);
}

/** Keep scheme, host and path of a URL; drop its query (signatures, tokens) and any user info. */
export function redactUrl(url: string | URL): string {
  try {
    const parsed = typeof url === 'string' ? new URL(url) : url;
    const query = parsed.search ? '?[redacted]' : '';
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}${query}`;
  } catch {
    return '[unparseable url]';
  }
}

const URL_IN_TEXT = /\bhttps?:\/\/[^\s"'<>]+/gi;
const SIGNATURE_PARAMS =
  /\b(Signature|X-Amz-Signature|X-Amz-Security-Token|x-amz-security-token|X-Amz-Credential|AWSAccessKeyId)=[^&\s"']+/gi;
const AUTH_HEADER = /\b(Basic|Bearer)\s+[A-Za-z0-9+/=._-]{8,}/g;

/**
 * Remove URLs' queries, signature parameters, Authorization values and registered secrets from free text. Secrets go
 * first (a URL's normalization would otherwise percent-encode one that follows its path) and again last (lower-casing
 * a host or decoding it could spell one).
 */
export function redact(text: string): string {
  let out = removeSecrets(text);
  out = out.replace(URL_IN_TEXT, (match) => redactUrl(match));
  out = out.replace(SIGNATURE_PARAMS, '$1=[redacted]');
  out = out.replace(AUTH_HEADER, '$1 [redacted]');
  return removeSecrets(out);
}

function removeSecrets(text: string): string {
  let out = text;
  for (const secret of registeredSecrets) {
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
    const encoded = Buffer.from(secret).toString('base64');
    if (out.includes(encoded)) out = out.split(encoded).join('[redacted]');
  }
  return out;
}

/** Nesting deeper than this is not logged (the code's fields are a few levels deep). */
const MAX_FIELD_DEPTH = 8;

/**
 * A copy of log fields with every string (keys too) passed through `redact`: values are redacted before they are
 * serialized, never the serialized text, so that a quote or a backslash in a value can neither hide a secret from
 * the patterns nor let a pattern break the JSON line.
 */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  return redactValue(fields, 0, new Set()) as Record<string, unknown>;
}

function redactValue(value: unknown, depth: number, ancestors: Set<object>): unknown {
  if (typeof value === 'string') return redact(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (value instanceof URL) return redactUrl(value);
  if (value instanceof Error) return { name: redact(value.name), message: describeError(value) };
  if (ancestors.has(value)) return '[circular]';
  if (depth >= MAX_FIELD_DEPTH) return '[nested too deep]';
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1, ancestors));
    // fromEntries defines each key as an own property, `__proto__` included.
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [redact(key), redactValue(item, depth + 1, ancestors)]),
    );
  } finally {
    ancestors.delete(value);
  }
}

/** A redacted one-line description of any thrown value, with its cause chain. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 4; depth++) {
    if (current instanceof Error) {
      parts.push(current.message);
      current = (current as { cause?: unknown }).cause;
    } else {
      parts.push(String(current));
      current = undefined;
    }
  }
  const unique = parts.filter((part, index) => part && parts.indexOf(part) === index);
  return redact(unique.join(': ').replace(/\s+/g, ' ').trim());
}
