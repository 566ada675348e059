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

  // Issue 21, item 7: only the documented Amazon S3 endpoint shapes (AWS General Reference, "Amazon S3 endpoints";
  // S3 User Guide, "Virtual hosting of buckets" and its legacy endpoints; "Transfer Acceleration"), commercial
  // partition. Before, any label starting with s3 anywhere under amazonaws.com passed.
  test.each([
    'https://exports.s3.amazonaws.com/k',
    'https://s3.amazonaws.com/exports.localytics.i-m/k',
    'https://s3.eu-central-1.amazonaws.com/bucket/k',
    'https://bucket.s3-ap-southeast-2.amazonaws.com/k',
    'https://s3-external-1.amazonaws.com/bucket/k',
    'https://s3.dualstack.us-east-1.amazonaws.com/bucket/k',
    'https://bucket.s3-fips.us-east-2.amazonaws.com/k',
    'https://s3-fips.dualstack.us-west-2.amazonaws.com/bucket/k',
    'https://bucket.s3-accelerate.amazonaws.com/k',
    'https://bucket.s3-accelerate.dualstack.amazonaws.com/k',
    'https://Bucket.S3.MX-Central-1.amazonaws.com/k',
  ])('allows the S3 endpoint %s', (url) => {
    expect(check(url)).not.toThrow();
  });

  test.each([
    // Hosts any AWS customer can name: a load balancer, an API Gateway stage, an EC2 instance.
    'https://s3-x.us-east-1.elb.amazonaws.com/x',
    'https://s3-attacker-123.us-east-1.elb.amazonaws.com/x',
    'https://s3.abc123.execute-api.us-east-1.amazonaws.com/x',
    'https://s3-203-0-113-5.compute-1.amazonaws.com/x',
    'https://bucket.s3.us-east-1.elb.amazonaws.com/x',
    // S3, but not a shape presigned export files use: access points, website hosting, S3 Express, Object Lambda.
    'https://ap-123456789012.s3-accesspoint.us-east-1.amazonaws.com/x',
    'https://bucket.s3-website-us-east-1.amazonaws.com/x',
    'https://bucket--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com/x',
    'https://ol-123.s3-object-lambda.us-east-1.amazonaws.com/x',
    // Other partitions: Localytics serves its exports from the commercial partition (see location-policy.ts).
    'https://bucket.s3.us-gov-west-1.amazonaws.com/x',
    'https://bucket.s3.cn-north-1.amazonaws.com.cn/x',
    'https://s3.amazonaws.com.cn/x',
    // Accelerate needs a bucket in the host; a region that is not a region; a trailing dot.
    'https://s3-accelerate.amazonaws.com/bucket/x',
    'https://s3.not-a-region.amazonaws.com/x',
    'https://s3.amazonaws.com./x',
  ])('refuses %s', (url) => {
    expect(check(url)).toThrow(/not Amazon S3 nor the API host/);
  });

  test('the error never shows the URL query (a presigned signature)', () => {
    expect(check('https://evil.example.com/x?Signature=SECRETSIG')).toThrow(/^(?!.*SECRETSIG)/);
  });

  test('allowAnyHost still requires HTTPS off loopback', () => {
    expect(check('https://anything.example/x', { allowAnyHost: true })).not.toThrow();
    expect(check('http://anything.example/x', { allowAnyHost: true })).toThrow(/only HTTPS/);
  });
});
