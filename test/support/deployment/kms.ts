import type { RecordedAction } from './action-recorder.js';
import { TEST_REGION } from './cfn.js';
import type { AwsAction } from './iam.js';

/** The customer-managed keys a deployment may be given: the bucket's, and a shared budget table's. */
export interface KeyArns {
  readonly bucket: string;
  readonly budgetTable: string;
}

/** Which of the recorded resources each key protects. */
export interface KeyedResources {
  readonly bucketArn: string;
  readonly budgetTableArn: string;
}

/**
 * What S3 does with the bucket's key for each operation under SSE-KMS (S3 API reference, "Permissions"): writing an
 * object generates a data key; reading one, and each part of a multipart upload, decrypts it. Listing, deleting,
 * HEAD (metadata only), completing and aborting an upload use no key.
 */
const S3_KEY_ACTIONS: Readonly<Record<string, readonly string[]>> = {
  PutObject: ['kms:GenerateDataKey'],
  CreateMultipartUpload: ['kms:GenerateDataKey'],
  CopyObject: ['kms:GenerateDataKey'],
  UploadPart: ['kms:Decrypt'],
  UploadPartCopy: ['kms:Decrypt'],
  GetObject: ['kms:Decrypt'],
  'GetObject (copy source)': ['kms:Decrypt'],
};

/**
 * The KMS actions `call` makes S3 or DynamoDB perform on the caller's behalf, on the keys `keys` names, with the
 * `kms:ViaService` they carry. A GET that found no object decrypts nothing. DynamoDB decrypts the table key for every
 * call to a table under a customer-managed key (DynamoDB developer guide, "Encryption at rest: how it works").
 */
export function keyUsesOf(call: RecordedAction, resources: KeyedResources, keys: Partial<KeyArns>): AwsAction[] {
  const use = (key: string, service: string, actions: readonly string[]): AwsAction[] =>
    actions.map((action) => ({
      action,
      resource: key,
      context: { 'kms:ViaService': `${service}.${TEST_REGION}.amazonaws.com` },
    }));
  if (keys.bucket && call.action.startsWith('s3:') && call.resource.startsWith(`${resources.bucketArn}/`)) {
    const missing = call.operation.startsWith('GetObject') && call.status === 404;
    return missing ? [] : use(keys.bucket, 's3', S3_KEY_ACTIONS[call.operation] ?? []);
  }
  if (keys.budgetTable && call.action.startsWith('dynamodb:') && call.resource === resources.budgetTableArn) {
    return use(keys.budgetTable, 'dynamodb', ['kms:Decrypt']);
  }
  return [];
}
