import { expect, test } from 'vitest';
import { type AwsAction, isAllowed, type PolicyStatement } from './iam.js';

// Statements shaped like the synthesized planner policy (resolved), before and after it was allowed to delete.
const read: PolicyStatement[] = [
  {
    Effect: 'Allow',
    Action: 's3:ListBucket',
    Resource: 'arn:aws:s3:::lake-bucket',
    Condition: { StringLike: { 's3:prefix': ['lake/*'] } },
  },
  { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::lake-bucket/lake/*' },
  {
    Effect: 'Allow',
    Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
    Resource: 'arn:aws:dynamodb:us-east-1:123456789012:table/budget',
    Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['apikey#*'] } },
  },
];
const deleteRecord: AwsAction = {
  action: 's3:DeleteObject',
  resource: 'arn:aws:s3:::lake-bucket/lake/_state/profile_changes/profiledb_id=1/20261202T130000Z.json',
  context: {},
};

test('a call no statement allows is denied (the planner deleting a change-set record with a read-only role)', () => {
  expect(isAllowed(read, deleteRecord)).toBe(false);
  const withDelete: PolicyStatement[] = [
    ...read,
    { Effect: 'Allow', Action: 's3:DeleteObject', Resource: 'arn:aws:s3:::lake-bucket/lake/_state/profile_changes/*' },
  ];
  expect(isAllowed(withDelete, deleteRecord)).toBe(true);
  expect(isAllowed(withDelete, { ...deleteRecord, resource: 'arn:aws:s3:::lake-bucket/lake/raw_logs/x.json.gz' })).toBe(
    false,
  );
});

test('conditions must hold: a listing outside the prefix, or without one, is denied', () => {
  const list = (context: Record<string, string>): AwsAction => ({
    action: 's3:ListBucket',
    resource: 'arn:aws:s3:::lake-bucket',
    context,
  });
  expect(isAllowed(read, list({ 's3:prefix': 'lake/raw_logs/' }))).toBe(true);
  expect(isAllowed(read, list({ 's3:prefix': 'other/' }))).toBe(false);
  expect(isAllowed(read, list({}))).toBe(false);
});

test('budget items only: a write to an item of another key space is denied', () => {
  const put = (pk: string): AwsAction => ({
    action: 'dynamodb:PutItem',
    resource: 'arn:aws:dynamodb:us-east-1:123456789012:table/budget',
    context: { 'dynamodb:LeadingKeys': [pk] },
  });
  expect(isAllowed(read, put('apikey#0123'))).toBe(true);
  expect(isAllowed(read, put('job#0123'))).toBe(false);
});

test('an explicit Deny wins, and what the evaluator cannot judge throws instead of passing', () => {
  const denied: PolicyStatement[] = [...read, { Effect: 'Deny', Action: 's3:*', Resource: '*' }];
  expect(isAllowed(denied, { action: 's3:GetObject', resource: 'arn:aws:s3:::lake-bucket/lake/a', context: {} })).toBe(
    false,
  );
  const unknown: PolicyStatement[] = [
    { Effect: 'Allow', Action: 's3:GetObject', Resource: '*', Condition: { IpAddress: { 'aws:SourceIp': '1.2.3.4' } } },
  ];
  expect(() => isAllowed(unknown, { action: 's3:GetObject', resource: 'x', context: {} })).toThrow(
    /condition operator IpAddress is not supported/,
  );
});

test('create-only writes: PutObject and CompleteMultipartUpload need If-None-Match, the part calls need none', () => {
  // The statements of lib/create-only-writes.ts, resolved.
  const createOnly: PolicyStatement[] = [
    {
      Effect: 'Allow',
      Action: 's3:PutObject',
      Resource: 'arn:aws:s3:::lake-bucket/lake/raw_logs/*',
      Condition: { Null: { 's3:if-none-match': 'false' } },
    },
    {
      Effect: 'Allow',
      Action: 's3:PutObject',
      Resource: 'arn:aws:s3:::lake-bucket/lake/raw_logs/*',
      Condition: { Bool: { 's3:ObjectCreationOperation': 'false' } },
    },
  ];
  const put = (context: Record<string, string>): AwsAction => ({
    action: 's3:PutObject',
    resource: 'arn:aws:s3:::lake-bucket/lake/raw_logs/a.json.gz',
    context,
  });
  // PutObject or CompleteMultipartUpload, with and without If-None-Match.
  expect(isAllowed(createOnly, put({ 's3:ObjectCreationOperation': 'true', 's3:if-none-match': '*' }))).toBe(true);
  expect(isAllowed(createOnly, put({ 's3:ObjectCreationOperation': 'true' }))).toBe(false);
  expect(isAllowed(createOnly, put({ 's3:ObjectCreationOperation': 'true', 's3:if-match': '"etag"' }))).toBe(false);
  // CreateMultipartUpload and UploadPart carry no condition header and create nothing.
  expect(isAllowed(createOnly, put({ 's3:ObjectCreationOperation': 'false' }))).toBe(true);
});
