import { expect, test } from 'vitest';
import { describeError, redact, redactUrl, registerSecret } from '../../functions/core/redact.js';

test('redactUrl keeps host and path but drops the signature query', () => {
  const url =
    'https://auditorium-cache-prodprimary.s3.amazonaws.com/queries/abc?AWSAccessKeyId=AKIAIT2WF7LISGBN23SQ&Expires=1480689996&Signature=0e6QA2ec8wEf%2FxAo6iYM47RinYk%3D';
  expect(redactUrl(url)).toBe('https://auditorium-cache-prodprimary.s3.amazonaws.com/queries/abc?[redacted]');
});

test('redact removes URLs queries, tokens, Basic credentials and registered secrets from text', () => {
  registerSecret('very-secret-value-123');
  const text =
    'GET https://s3.amazonaws.com/x/14.log.gz?x-amz-security-token=TOKEN123 failed; Authorization: Basic dXNlcjpwYXNzd29yZA== very-secret-value-123 X-Amz-Signature=abcdef';
  const out = redact(text);
  expect(out).not.toContain('TOKEN123');
  expect(out).not.toContain('dXNlcjpwYXNzd29yZA==');
  expect(out).not.toContain('very-secret-value-123');
  expect(out).not.toContain('abcdef');
  expect(out).toContain('https://s3.amazonaws.com/x/14.log.gz?[redacted]');
});

test('describeError joins the cause chain once and redacts it', () => {
  const inner = new Error('connect ECONNREFUSED https://h/p?Signature=SIG');
  const outer = new Error('download failed', { cause: inner });
  expect(describeError(outer)).toBe('download failed: connect ECONNREFUSED https://h/p?[redacted]');
});
