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

/** Remove URLs' queries, signature parameters, Authorization values and registered secrets from free text. */
export function redact(text: string): string {
  let out = text.replace(URL_IN_TEXT, (match) => redactUrl(match));
  out = out.replace(SIGNATURE_PARAMS, '$1=[redacted]');
  out = out.replace(AUTH_HEADER, '$1 [redacted]');
  for (const secret of registeredSecrets) {
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
    const encoded = Buffer.from(secret).toString('base64');
    if (out.includes(encoded)) out = out.split(encoded).join('[redacted]');
  }
  return out;
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
