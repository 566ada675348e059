import { PolicyStatement } from 'aws-cdk-lib/aws-iam';

/**
 * `s3:PutObject` on `resources` for requests that only create an object, never replace one: a `PutObject` or
 * `CompleteMultipartUpload` must carry `If-None-Match` (S3 then refuses it when the key exists; the functions always
 * send `If-None-Match: *`), and the multipart calls that take no condition header (`CreateMultipartUpload`,
 * `UploadPart`: `s3:ObjectCreationOperation` is false for them) create nothing by themselves. A compromised or buggy
 * function can therefore add objects but not change one that landed. (AWS: "Enforce conditional writes on Amazon S3
 * buckets"; a `CopyObject` would need the header too, and none is made.)
 */
export function createOnlyPutStatements(resources: string[]): PolicyStatement[] {
  return [
    new PolicyStatement({
      actions: ['s3:PutObject'],
      resources,
      conditions: { Null: { 's3:if-none-match': 'false' } },
    }),
    new PolicyStatement({
      actions: ['s3:PutObject'],
      resources,
      conditions: { Bool: { 's3:ObjectCreationOperation': 'false' } },
    }),
  ];
}
