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

/**
 * A region of the commercial partition: the AWS SDK's own pattern for it (`^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$`),
 * which leaves out GovCloud (`us-gov-west-1`), the ISO regions and China (`cn-north-1`, under amazonaws.com.cn).
 * Localytics serves its exports from buckets in the commercial partition; the others need accounts of their own and
 * are refused, like any host, unless `--allow-file-host` names them.
 */
const REGION = '(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\\d{1,2}';
/** A bucket as the first labels of a virtual-hosted-style host (DNS-compatible names, dots allowed). */
const BUCKET = '[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]';
/**
 * The documented Amazon S3 endpoint shapes (AWS General Reference, "Amazon S3 endpoints"; S3 User Guide, "Virtual
 * hosting of buckets" with its legacy endpoints, and "Transfer Acceleration"), each path-style or virtual-hosted:
 * `s3` (legacy global), `s3-external-1`, `s3.<region>`, `s3-<region>` (legacy), `s3.dualstack.<region>`,
 * `s3-fips.<region>`, `s3-fips.dualstack.<region>`; and, virtual-hosted only, `s3-accelerate` and
 * `s3-accelerate.dualstack`. Nothing else under amazonaws.com: other services give customers names there
 * (`s3-x.us-east-1.elb.amazonaws.com` is anyone's load balancer).
 */
const S3_HOST = new RegExp(
  `^(?:(?:${BUCKET}\\.)?s3(?:-external-1|[.-]${REGION}|\\.dualstack\\.${REGION}|-fips(?:\\.dualstack)?\\.${REGION})?` +
    `|${BUCKET}\\.s3-accelerate(?:\\.dualstack)?)\\.amazonaws\\.com$`,
);

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
