import { randomBytes } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';

/** The dynalite endpoint the suite shares (started by global setup). */
export function dynamoDbEndpoint(): string {
  return inject('dynamoDbEndpoint');
}

export function createDynamoDbClient(endpoint = dynamoDbEndpoint()): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
}

/** A fresh table with a string partition key `pk` (the shape the construct creates), named uniquely. */
export async function createTestTable(client: DynamoDBClient, partitionKey = 'pk'): Promise<string> {
  const name = `test-${randomBytes(6).toString('hex')}`;
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: partitionKey, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: partitionKey, KeyType: 'HASH' }],
    }),
  );
  // dynalite answers CREATING first (like DynamoDB): wait until the table is usable.
  await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 0.05, maxDelay: 0.2 }, { TableName: name });
  return name;
}
