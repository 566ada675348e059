import { ConfigError } from '../core/errors.js';
import { redact, redactUrl } from '../core/redact.js';
import { isLoopbackHost } from './location-policy.js';

/**
 * The one rule for the Localytics API's base URL, enforced by the client itself and checked early by every entry
 * point (CLI option, Lambda environment, stack context, construct props): HTTPS, or plain HTTP on loopback only (the
 * simulator), and no user info. The Basic credentials go with every request, so plain HTTP would send them in clear.
 * Undefined when the URL is acceptable; otherwise what is wrong with it, as a phrase (`must use https ...`).
 */
export function apiUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    return 'must use https (plain http is allowed only on loopback: the API key and secret go with every request)';
  }
  if (url.username || url.password) return 'must not carry credentials (user info); they come from the secret';
  return undefined;
}

/** `text` without trailing slashes, or a `ConfigError` naming `subject` and what is wrong (never the user info). */
export function checkApiUrl(text: string, subject = 'API URL'): string {
  const problem = apiUrlProblem(text);
  if (problem) {
    const shown = problem === 'is not a URL' ? `"${redact(text)}"` : redactUrl(text);
    throw new ConfigError(`${subject} ${problem}: ${shown}`);
  }
  return text.replace(/\/+$/, '');
}
