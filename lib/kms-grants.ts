import { Arn, ArnFormat } from 'aws-cdk-lib';
import { type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';

/**
 * What a function's calls make a service do with a customer-managed key on its behalf (AWS docs):
 * - S3 under SSE-KMS: PutObject and CreateMultipartUpload need kms:GenerateDataKey; GetObject, UploadPart and
 *   UploadPartCopy need kms:Decrypt (S3 decrypts the upload's data key for each part).
 * - DynamoDB: every data-plane call needs kms:Decrypt of the table key (DynamoDB caches it five minutes per caller);
 *   the table key is generated once, by DynamoDB itself, when the table is encrypted.
 */
export type KeyAction = 'kms:Decrypt' | 'kms:GenerateDataKey';

/**
 * Let `grantee` use `key` for `actions`, only through `service` in the key's region (`kms:ViaService`): the grant
 * cannot be used to call KMS directly, or through another service.
 */
export function grantKeyUseVia(
  key: IKey,
  grantee: IGrantable,
  service: 's3' | 'dynamodb',
  actions: readonly KeyAction[],
): void {
  // A key and the bucket or table it encrypts live in the same region.
  const region = Arn.split(key.keyArn, ArnFormat.SLASH_RESOURCE_NAME).region;
  grantee.grantPrincipal.addToPrincipalPolicy(
    new PolicyStatement({
      actions: [...actions],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `${service}.${region}.amazonaws.com` } },
    }),
  );
}
