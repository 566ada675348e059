import { SIMULATOR_DEFAULT_CREDENTIALS } from '../../functions/simulator/server.js';

/** Every credential pair the test suite uses. None may appear in any output. */
export const TEST_CREDENTIALS = [
  SIMULATOR_DEFAULT_CREDENTIALS,
  { apiKey: 'scan-key-7d2e3219e6f93bececb44b6', apiSecret: 'scan-secret-19c2aac0000a23803e9676a' },
] as const;

/** Presigned-URL signatures and tokens, whatever their value. */
const SIGNATURE_PATTERNS = [
  /Signature=[A-Za-z0-9_%-]{16,}/,
  /X-Amz-Signature=[0-9a-f]{16,}/i,
  /x-amz-security-token=(?!\[redacted\])[^&\s"']{8,}/i,
];

export interface Leak {
  readonly what: string;
  readonly where: string;
}

/** Find secrets in captured output. The report names what leaked and where, never the value itself. */
export function findLeaks(text: string, where: string): Leak[] {
  const leaks: Leak[] = [];
  for (const { apiKey, apiSecret } of TEST_CREDENTIALS) {
    const basic = Buffer.from(`${apiKey}:${apiSecret}`).toString('base64');
    if (text.includes(apiKey)) leaks.push({ what: 'an API key', where });
    if (text.includes(apiSecret)) leaks.push({ what: 'an API secret', where });
    if (text.includes(basic)) leaks.push({ what: 'an Authorization header value', where });
  }
  for (const pattern of SIGNATURE_PATTERNS) {
    if (pattern.test(text))
      leaks.push({ what: `a presigned signature or token (${pattern.source.split('=')[0]})`, where });
  }
  return leaks;
}
