import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SynthesizedDeployment } from '../support/deployment/synth.js';
import { createDynamoDbClient, createTestTable } from '../support/dynamodb.js';
import { S3RVER_CHECKSUMS, S3RVER_CREDENTIALS } from '../support/s3.js';
import { createJobQueues } from '../support/sqs.js';
import type { CampaignServers } from './campaign.js';

/**
 * Clients and resource factories for the campaign, over already running s3rver, fauxqs and dynalite endpoints, and
 * the synthesized stack whose bundled handlers its Lambda path runs.
 */
export function campaignServers(
  endpoints: { s3Endpoint: string; sqsEndpoint: string; dynamoDbEndpoint: string },
  deployment: () => Promise<SynthesizedDeployment>,
): CampaignServers {
  const dynamo = createDynamoDbClient(endpoints.dynamoDbEndpoint);
  return {
    ...endpoints,
    dynamoDb: dynamo,
    s3: (endpoint) =>
      new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: S3RVER_CREDENTIALS,
        requestChecksumCalculation: S3RVER_CHECKSUMS,
      }),
    sqs: new SQSClient({
      endpoint: endpoints.sqsEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      useQueueUrlAsEndpoint: false,
    }),
    createQueues: (sqs) => createJobQueues(sqs, { maxReceiveCount: 4, visibilitySeconds: 2 }),
    createBudgetTable: () => createTestTable(dynamo),
    deployment,
  };
}
