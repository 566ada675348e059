import { describe, expect, test } from 'vitest';
import { assertAllowedLocation, type LocationPolicy } from '../../functions/adapters/location-policy.js';

const policy: LocationPolicy = {
  apiHost: 'api.localytics.com',
  extraHosts: ['files.example.net', '.cdn.example.org'],
  allowAnyHost: false,
};
const check =
  (url: string, overrides: Partial<LocationPolicy> = {}) =>
  () =>
    assertAllowedLocation(new URL(url), { ...policy, ...overrides });

describe('a Location is followed only to allowed hosts', () => {
  test.each([
    'https://auditorium-cache-prodprimary.s3.amazonaws.com/queries/x?Signature=s',
    'https://s3.amazonaws.com/exports.localytics.i-m/localytics/2017/04/01/app/14.log.gz?x-amz-security-token=t',
    'https://bucket.s3.us-west-2.amazonaws.com/k',
    'https://s3-eu-west-1.amazonaws.com/b/k',
    'https://bucket.s3.dualstack.eu-central-1.amazonaws.com/k',
    'https://api.localytics.com/files/x',
    'https://files.example.net/x',
    'https://a.cdn.example.org/x',
    'http://127.0.0.1:9000/_files/x',
    'http://localhost:9000/x',
  ])('allows %s', (url) => {
    expect(
      check(url, url.includes('localhost') || url.includes('127.0.0.1') ? { apiHost: new URL(url).hostname } : {}),
    ).not.toThrow();
  });

  test.each([
    ['https://evil.example.com/x', /not Amazon S3 nor the API host/],
    ['https://s3.amazonaws.com.evil.com/x', /not Amazon S3 nor the API host/],
    ['https://amazonaws.com.attacker.net/s3.amazonaws.com', /not Amazon S3 nor the API host/],
    ['http://bucket.s3.amazonaws.com/x', /only HTTPS/],
    ['http://10.0.0.5/x', /only HTTPS/],
    ['ftp://s3.amazonaws.com/x', /only HTTPS/],
    ['https://user:pass@s3.amazonaws.com/x', /user info/],
  ])('refuses %s', (url, message) => {
    expect(check(url)).toThrow(message);
  });

  test('the error never shows the URL query (a presigned signature)', () => {
    expect(check('https://evil.example.com/x?Signature=SECRETSIG')).toThrow(/^(?!.*SECRETSIG)/);
  });

  test('allowAnyHost still requires HTTPS off loopback', () => {
    expect(check('https://anything.example/x', { allowAnyHost: true })).not.toThrow();
    expect(check('http://anything.example/x', { allowAnyHost: true })).toThrow(/only HTTPS/);
  });
});
