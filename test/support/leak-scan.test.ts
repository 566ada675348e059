import { expect, test } from 'vitest';
import { findLeaks, TEST_CREDENTIALS } from './leak-scan.js';

test('the leak scan finds credentials, Authorization values and signatures, and names them without the value', () => {
  const { apiKey, apiSecret } = TEST_CREDENTIALS[0];
  const basic = Buffer.from(`${apiKey}:${apiSecret}`).toString('base64');
  const text = `key ${apiKey} secret ${apiSecret} auth Basic ${basic} url https://h/p?X-Amz-Signature=0123456789abcdef0123`;
  const leaks = findLeaks(text, 'sample');
  expect(leaks.map((leak) => leak.what)).toEqual(
    expect.arrayContaining([
      'an API key',
      'an API secret',
      'an Authorization header value',
      'a presigned signature or token (X-Amz-Signature)',
    ]),
  );
  expect(JSON.stringify(leaks)).not.toContain(apiSecret);
});

test('redacted output passes the scan', () => {
  expect(
    findLeaks('GET https://h/p?[redacted] Signature=[redacted] Authorization: Basic [redacted]', 'sample'),
  ).toEqual([]);
});
