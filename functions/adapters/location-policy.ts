import { PermanentJobError } from '../core/errors.js';
import { redactUrl } from '../core/redact.js';

/** Which hosts a `Location` may point to. Credentials never go there; this guards against being sent elsewhere. */
export interface LocationPolicy {
  /** The API's own host: its redirects to itself are allowed (the simulator, a proxy). */
  readonly apiHost: string;
  /** More allowed host names (exact, or `.suffix`). */
  readonly extraHosts: readonly string[];
  /** Allow any host (still HTTPS, or HTTP on loopback). */
  readonly allowAnyHost: boolean;
}

const S3_HOST = /(^|\.)s3([.-][a-z0-9-]+)*\.amazonaws\.com(\.cn)?$/;

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

export function assertAllowedLocation(url: URL, policy: LocationPolicy): void {
  const host = url.hostname.toLowerCase();
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(host))) {
    throw new PermanentJobError(`refusing to download ${redactUrl(url)}: only HTTPS (or HTTP on loopback) is allowed`);
  }
  if (url.username || url.password) {
    throw new PermanentJobError(`refusing to download ${redactUrl(url)}: the URL carries user info`);
  }
  if (policy.allowAnyHost) return;
  const allowed =
    host === policy.apiHost.toLowerCase() ||
    S3_HOST.test(host) ||
    policy.extraHosts.some((extra) =>
      extra.startsWith('.') ? host.endsWith(extra.toLowerCase()) : host === extra.toLowerCase(),
    );
  if (!allowed) {
    throw new PermanentJobError(
      `refusing to download from ${host}: not Amazon S3 nor the API host (allow it with --allow-file-host)`,
    );
  }
}
