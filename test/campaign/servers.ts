import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createDynamoDbClient } from '../support/dynamodb.js';
import { S3RVER_CHECKSUMS, S3RVER_CREDENTIALS } from '../support/s3.js';
import { createJobQueues } from '../support/sqs.js';
import type { CampaignServers } from './campaign.js';

/** Clients and queue factory for the campaign, over already running s3rver, fauxqs and dynalite endpoints. */
export function campaignServers(s3Endpoint: string, sqsEndpoint: string, dynamoDbEndpoint: string): CampaignServers {
  return {
    s3Endpoint,
    sqsEndpoint,
    dynamoDbEndpoint,
    dynamoDb: createDynamoDbClient(dynamoDbEndpoint),
    s3: (endpoint) =>
      new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: S3RVER_CREDENTIALS,
        requestChecksumCalculation: S3RVER_CHECKSUMS,
      }),
    sqs: new SQSClient({
      endpoint: sqsEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      useQueueUrlAsEndpoint: false,
    }),
    createQueues: (sqs) => createJobQueues(sqs, { maxReceiveCount: 4, visibilitySeconds: 2 }),
  };
}
