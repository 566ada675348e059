import { randomBytes } from 'node:crypto';
import {
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
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
  // dynalite answers CreateTable while the table is still CREATING (for a tick): wait until it is ACTIVE.
  for (let attempt = 0; attempt < 100; attempt++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return name;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`test table ${name} did not become ACTIVE`);
}

/** Delete every item of a test table (a job ledger whose entries have all expired, as a day later). */
export async function clearTable(client: DynamoDBClient, table: string): Promise<void> {
  const { Items = [] } = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
  for (const item of Items) {
    await client.send(new DeleteItemCommand({ TableName: table, Key: { pk: item.pk as { S: string } } }));
  }
}
